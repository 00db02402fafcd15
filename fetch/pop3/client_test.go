package pop3

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linkctl/linkctl/fetch/pop3/pop3test"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/logx"
	"github.com/linkctl/linkctl/internal/scripted"
)

var update = flag.Bool("update", false, "rewrite golden files")

// logBuf is a concurrency-safe buffer for a trace logger.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func traceLogger() (*slog.Logger, *logBuf) {
	var b logBuf
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: logx.LevelTrace})), &b
}

func opts() Options { return Options{Timeout: 2 * time.Second} }

// start plays script and returns a client that has read the greeting.
func start(t *testing.T, script []string, o Options) (*Client, *scripted.Server) {
	t.Helper()
	srv := scripted.Start(t, script)
	c, err := New(srv.Conn, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, srv
}

func wantKind(t *testing.T, err error, kind errkind.Kind, temp bool) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v (temporary=%v)", kind, temp)
	}
	if k := errkind.KindOf(err); k != kind {
		t.Errorf("error %q: kind %v, want %v", err, k, kind)
	}
	if tmp := errkind.IsTemporary(err); tmp != temp {
		t.Errorf("error %q: temporary %v, want %v", err, tmp, temp)
	}
}

func TestGreeting(t *testing.T) {
	c, srv := start(t, []string{"S: +OK POP3 ready <1896.697170952@dbc.mtview.ca.us>"}, opts())
	srv.Wait(t)
	if !c.HasAPOP() || c.timestamp != "<1896.697170952@dbc.mtview.ca.us>" {
		t.Errorf("timestamp %q", c.timestamp)
	}
}

func TestGreetingErrors(t *testing.T) {
	cases := []struct {
		name   string
		script []string
		kind   errkind.Kind
		temp   bool
	}{
		{"in-use", []string{"S: -ERR [IN-USE] maildrop locked"}, errkind.Refused, true},
		{"sys-temp", []string{"S: -ERR [SYS/TEMP] try later"}, errkind.Refused, true},
		{"sys-perm", []string{"S: -ERR [SYS/PERM] account disabled"}, errkind.Refused, false},
		{"plain-err", []string{"S: -ERR too many connections"}, errkind.Refused, true},
		{"garbage", []string{"S: 220 smtp.example.net ESMTP"}, errkind.Protocol, false},
		{"closed", []string{"CLOSE"}, errkind.Network, true},
		{"overlong", []string{"RAW: +OK " + strings.Repeat("x", 600) + "\r\n"}, errkind.Protocol, false},
		{"no-newline", []string{"RAW: +OK ready", "CLOSE"}, errkind.Network, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := scripted.Start(t, tc.script)
			_, err := New(srv.Conn, opts())
			wantKind(t, err, tc.kind, tc.temp)
		})
	}
}

func TestGreetingTimeout(t *testing.T) {
	srv := scripted.Start(t, []string{"HANG"})
	_, err := New(srv.Conn, Options{Timeout: 50 * time.Millisecond})
	wantKind(t, err, errkind.Network, true)
	if !strings.Contains(err.Error(), "no data from the server") {
		t.Errorf("error does not say what happened: %v", err)
	}
}

func TestCapa(t *testing.T) {
	c, srv := start(t, []string{
		"S: +OK ready",
		"C: CAPA",
		"S: +OK Capability list follows",
		"S: TOP", "S: UIDL", "S: SASL PLAIN login XOAUTH2", "S: PIPELINING", "S: RESP-CODES",
		"S: .",
		"C: CAPA",
		"S: -ERR unknown command",
	}, opts())
	caps, err := c.Capa()
	if err != nil {
		t.Fatal(err)
	}
	if !caps.Has("pipelining") || !caps.Has("UIDL") || caps.Has("STLS") {
		t.Errorf("caps %v", caps)
	}
	if !caps.HasSASL("LOGIN") || !caps.HasSASL("xoauth2") || caps.HasSASL("CRAM-MD5") {
		t.Errorf("SASL %v", caps.SASL())
	}
	// A server without CAPA: no error, no capabilities.
	caps, err = c.Capa()
	if err != nil || len(caps) != 0 {
		t.Errorf("CAPA -ERR: caps %v err %v", caps, err)
	}
	srv.Wait(t)
}

func TestCapaEndless(t *testing.T) {
	script := []string{"S: +OK", "C: CAPA", "S: +OK"}
	for i := 0; i < maxCapaLines+1; i++ {
		script = append(script, fmt.Sprintf("S: X-CAP-%d", i))
	}
	script = append(script, "HANG")
	c, _ := start(t, script, opts())
	_, err := c.Capa()
	wantKind(t, err, errkind.Protocol, false)
}

func TestStartTLSNotOffered(t *testing.T) {
	c, srv := start(t, []string{"S: +OK", "C: CAPA", "S: +OK", "S: USER", "S: .", "C: never"}, opts())
	if _, err := c.Capa(); err != nil {
		t.Fatal(err)
	}
	err := c.StartTLS(&tls.Config{ServerName: "pop.test"})
	wantKind(t, err, errkind.Protocol, false)
	if err := c.Login("u", "p"); err == nil {
		t.Error("Login after a refused STLS succeeded")
	}
	if serr := srv.Err(); serr == nil || !strings.Contains(serr.Error(), "got error") {
		t.Errorf("script: %v", serr)
	}
	if got := srv.Lines(); len(got) != 1 {
		t.Errorf("client sent %q after CAPA, want nothing", got)
	}
}

func TestStartTLSRefused(t *testing.T) {
	c, srv := start(t, []string{"S: +OK", "C: CAPA", "S: +OK", "S: STLS", "S: .", "C: STLS", "S: -ERR [SYS/TEMP] no TLS now", "C: never"}, opts())
	c.Capa()
	err := c.StartTLS(&tls.Config{ServerName: "pop.test"})
	wantKind(t, err, errkind.Refused, true)
	if c.Err() == nil {
		t.Error("session still usable in plaintext after STLS was refused")
	}
	srv.Err()
	if got := srv.Lines(); len(got) != 2 {
		t.Errorf("client sent %q, want CAPA, STLS and nothing else", got)
	}
}

func TestStartTLSInjection(t *testing.T) {
	// CVE-2011-0411 style: a reply smuggled in with the +OK must not be
	// read as if it came over TLS.
	c, _ := start(t, []string{"S: +OK", "C: CAPA", "S: +OK", "S: STLS", "S: .", "C: STLS", "RAW: +OK go\r\n+OK injected\r\n", "HANG"}, opts())
	c.Capa()
	err := c.StartTLS(&tls.Config{ServerName: "pop.test"})
	wantKind(t, err, errkind.Protocol, false)
}

// testCert makes a CA and a leaf for "pop.test" signed by it.
func testCert(t testing.TB) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "linkctl test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "pop.test"}, DNSNames: []string{"pop.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return pool, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestStartTLS(t *testing.T) {
	pool, cert := testCert(t)
	srv := &pop3test.Server{User: "u", Pass: "p", TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}
	srv.Add([]byte("Subject: hi\n\nbody\n"))

	t.Run("verified", func(t *testing.T) {
		c, err := New(srv.Pipe(), opts())
		if err != nil {
			t.Fatal(err)
		}
		if caps, _ := c.Capa(); !caps.Has("STLS") {
			t.Fatalf("caps %v", caps)
		}
		if err := c.StartTLS(&tls.Config{ServerName: "pop.test", RootCAs: pool}); err != nil {
			t.Fatal(err)
		}
		if c.Caps() != nil {
			t.Error("capabilities from before TLS kept")
		}
		caps, err := c.Capa()
		if err != nil || caps.Has("STLS") {
			t.Fatalf("CAPA over TLS: %v %v", caps, err)
		}
		if err := c.Login("u", "p"); err != nil {
			t.Fatal(err)
		}
		if !c.TLS() {
			t.Error("TLS() false")
		}
		c.Quit()
	})
	// Loopback TCP rather than net.Pipe: without kernel buffers the
	// client's alert after a failed verification would wait for the server
	// to finish writing its flight, until the timeout.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go srv.ServeListener(l)
	dial := func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	short := opts()
	t.Run("unknown-ca", func(t *testing.T) {
		c, err := New(dial(t), short)
		if err != nil {
			t.Fatal(err)
		}
		c.Capa()
		err = c.StartTLS(&tls.Config{ServerName: "pop.test", RootCAs: x509.NewCertPool()})
		wantKind(t, err, errkind.Network, false)
		if c.Login("u", "p") == nil {
			t.Error("session usable after a failed handshake")
		}
	})
	t.Run("wrong-name", func(t *testing.T) {
		c, _ := New(dial(t), short)
		c.Capa()
		err := c.StartTLS(&tls.Config{ServerName: "other.test", RootCAs: pool})
		wantKind(t, err, errkind.Network, false)
	})
}

func TestLogin(t *testing.T) {
	cases := []struct {
		name  string
		reply string
		kind  errkind.Kind
		temp  bool
	}{
		{"ok", "+OK logged in", errkind.OK, false},
		{"auth", "-ERR [AUTH] invalid credentials", errkind.Auth, false},
		{"plain-err", "-ERR invalid password", errkind.Auth, false},
		{"in-use", "-ERR [IN-USE] mailbox locked by another session", errkind.Refused, true},
		{"login-delay", "-ERR [LOGIN-DELAY] wait 5 minutes", errkind.Refused, true},
		{"sys-temp", "-ERR [SYS/TEMP] backend down", errkind.Refused, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log, buf := traceLogger()
			o := opts()
			o.Logger = log
			c, srv := start(t, []string{"S: +OK", "C: USER alice", "S: +OK", "C: PASS s3cret pass", "S: " + tc.reply}, o)
			err := c.Login("alice", "s3cret pass")
			srv.Wait(t)
			if tc.kind == errkind.OK {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				wantKind(t, err, tc.kind, tc.temp)
				var se *ServerError
				if !errors.As(err, &se) || se.Command != "PASS ***" {
					t.Errorf("ServerError %+v", se)
				}
			}
			if strings.Contains(buf.String(), "s3cret") || (err != nil && strings.Contains(err.Error(), "s3cret")) {
				t.Errorf("password leaked: %s / %v", buf.String(), err)
			}
			if !strings.Contains(buf.String(), "PASS ***") {
				t.Errorf("transcript lacks the redacted PASS: %s", buf.String())
			}
		})
	}
}

func TestLoginUserRejected(t *testing.T) {
	c, srv := start(t, []string{"S: +OK", "C: USER bob", "S: -ERR [AUTH] no such user"}, opts())
	err := c.Login("bob", "x")
	srv.Wait(t)
	wantKind(t, err, errkind.Auth, false)
}

func TestLoginInjection(t *testing.T) {
	c, srv := start(t, []string{"S: +OK", "C: never"}, opts())
	err := c.Login("bob\r\nDELE 1", "x")
	wantKind(t, err, errkind.Usage, false)
	c.Close()
	srv.Err()
	if len(srv.Lines()) != 0 {
		t.Errorf("sent %q", srv.Lines())
	}
}

func TestAPOP(t *testing.T) {
	// The example of RFC 1939 section 7.
	c, srv := start(t, []string{
		"S: +OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>",
		"C: APOP mrose c4c9334bac560ecc979e58001b3e22fb",
		"S: +OK maildrop has 1 message (369 octets)",
	}, opts())
	if err := c.APOP("mrose", "tanstaaf"); err != nil {
		t.Fatal(err)
	}
	srv.Wait(t)
}

func TestAPOPNoTimestamp(t *testing.T) {
	c, _ := start(t, []string{"S: +OK POP3 ready", "HANG"}, opts())
	err := c.APOP("mrose", "tanstaaf")
	wantKind(t, err, errkind.Auth, false)
}

func TestAuth(t *testing.T) {
	long := strings.Repeat("t", 300) // an OAuth token: too long for the AUTH line
	b := func(s string) string { return b64.EncodeToString([]byte(s)) }
	cases := []struct {
		name    string
		mech    SASL
		initial bool
		script  []string
		kind    errkind.Kind
	}{
		{"plain-ir", PlainAuth("u", "p"), true, []string{"C: AUTH PLAIN " + b("\x00u\x00p"), "S: +OK"}, errkind.OK},
		{"plain-2step", PlainAuth("u", "p"), false, []string{"C: AUTH PLAIN", "S: + ", "C: " + b("\x00u\x00p"), "S: +OK"}, errkind.OK},
		{"plain-2step-bare-plus", PlainAuth("u", "p"), false, []string{"C: AUTH PLAIN", "S: +", "C: " + b("\x00u\x00p"), "S: +OK"}, errkind.OK},
		{"plain-fail", PlainAuth("u", "p"), true, []string{"C: AUTH PLAIN " + b("\x00u\x00p"), "S: -ERR [AUTH] Authentication failed"}, errkind.Auth},
		{"plain-in-use", PlainAuth("u", "p"), true, []string{"C: AUTH PLAIN " + b("\x00u\x00p"), "S: -ERR [IN-USE] locked"}, errkind.Refused},
		{"login-ir", LoginAuth("u", "p"), true, []string{"C: AUTH LOGIN " + b("u"), "S: + " + b("Password:"), "C: " + b("p"), "S: +OK"}, errkind.OK},
		{"login-2step", LoginAuth("u", "p"), false, []string{"C: AUTH LOGIN", "S: + " + b("Username:"), "C: " + b("u"), "S: + " + b("Password:"), "C: " + b("p"), "S: +OK"}, errkind.OK},
		{"xoauth2-ir", XOAuth2Auth("u", "Tk9zecret"), true, []string{"C: AUTH XOAUTH2 " + b("user=u\x01auth=Bearer Tk9zecret\x01\x01"), "S: +OK"}, errkind.OK},
		{"xoauth2-2step", XOAuth2Auth("u", "Tk9zecret"), false, []string{"C: AUTH XOAUTH2", "S: + ", "C: " + b("user=u\x01auth=Bearer Tk9zecret\x01\x01"), "S: +OK"}, errkind.OK},
		{"xoauth2-fail", XOAuth2Auth("u", "Tk9zecret"), true, []string{"C: AUTH XOAUTH2 " + b("user=u\x01auth=Bearer Tk9zecret\x01\x01"), "S: + " + b(`{"status":"401"}`), "C: ", "S: -ERR invalid token"}, errkind.Auth},
		{"xoauth2-long", XOAuth2Auth("u", long), true, []string{"C: AUTH XOAUTH2", "S: + ", "C: " + b("user=u\x01auth=Bearer "+long+"\x01\x01"), "S: +OK"}, errkind.OK},
		{"oauthbearer-fail", OAuthBearerAuth("u", "Tk9zecret"), true, []string{"C: AUTH OAUTHBEARER " + b("n,a=u,\x01auth=Bearer Tk9zecret\x01\x01"), "S: + " + b(`{"status":"invalid_token"}`), "C: AQ==", "S: -ERR [AUTH] denied"}, errkind.Auth},
		{"oauthbearer-2step", OAuthBearerAuth("u", "Tk9zecret"), false, []string{"C: AUTH OAUTHBEARER", "S: + ", "C: " + b("n,a=u,\x01auth=Bearer Tk9zecret\x01\x01"), "S: +OK"}, errkind.OK},
		{"login-fail", LoginAuth("u", "p"), true, []string{"C: AUTH LOGIN " + b("u"), "S: + " + b("Password:"), "C: " + b("p"), "S: -ERR [AUTH] Authentication failed"}, errkind.Auth},
		{"bad-challenge", PlainAuth("u", "p"), false, []string{"C: AUTH PLAIN", "S: + !!notbase64!!", "C: *", "S: -ERR cancelled"}, errkind.Protocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log, buf := traceLogger()
			o := opts()
			o.Logger = log
			c, srv := start(t, append([]string{"S: +OK"}, tc.script...), o)
			err := c.Auth(tc.mech, tc.initial)
			srv.Wait(t)
			if tc.kind == errkind.OK {
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil || errkind.KindOf(err) != tc.kind {
				t.Fatalf("err %v, want kind %v", err, tc.kind)
			}
			for _, secret := range []string{b("\x00u\x00p"), b("p"), "Tk9zecret"} {
				if strings.Contains(buf.String(), secret) {
					t.Errorf("transcript leaks %q:\n%s", secret, buf.String())
				}
			}
		})
	}
}

// scan runs STAT/UIDL/LIST against a script that answers them in order.
func scan(t *testing.T, stat string, uidl, list []string) ([]Msg, error) {
	t.Helper()
	script := []string{"S: +OK", "C: STAT", "S: " + stat, "C: UIDL", "S: +OK"}
	for _, l := range uidl {
		script = append(script, "S: "+l)
	}
	script = append(script, "S: .", "C: LIST", "S: +OK")
	for _, l := range list {
		script = append(script, "S: "+l)
	}
	script = append(script, "S: .", "HANG")
	c, _ := start(t, script, opts())
	return c.Scan()
}

func TestScan(t *testing.T) {
	msgs, err := scan(t, "+OK 2 300", []string{"1 whqtswO00WBw418f9t5JxYwZ", "2 QhdPYR:00WBw1Ph7x7"}, []string{"1 120", "2 180"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Msg{{1, "whqtswO00WBw418f9t5JxYwZ", 120}, {2, "QhdPYR:00WBw1Ph7x7", 180}}
	if fmt.Sprint(msgs) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", msgs, want)
	}
	msgs, err = scan(t, "+OK 0 0", nil, nil)
	if err != nil || len(msgs) != 0 {
		t.Errorf("empty maildrop: %v %v", msgs, err)
	}
}

func TestScanHostile(t *testing.T) {
	ok2 := []string{"1 a", "2 b"}
	sizes2 := []string{"1 10", "2 20"}
	cases := []struct {
		name       string
		stat       string
		uidl, list []string
	}{
		{"uid-with-space", "+OK 2 30", []string{"1 a b", "2 c"}, sizes2},
		{"uid-overlong", "+OK 2 30", []string{"1 " + strings.Repeat("u", 71), "2 c"}, sizes2},
		{"uid-control", "+OK 2 30", []string{"1 a\x01b", "2 c"}, sizes2},
		{"uid-8bit", "+OK 2 30", []string{"1 caf\xe9", "2 c"}, sizes2},
		{"uid-empty", "+OK 2 30", []string{"1 ", "2 c"}, sizes2},
		{"uid-duplicate", "+OK 2 30", []string{"1 same", "2 same"}, sizes2},
		{"num-duplicate", "+OK 2 30", []string{"1 a", "1 b"}, sizes2},
		{"num-zero", "+OK 2 30", []string{"0 a", "2 b"}, sizes2},
		{"num-beyond-stat", "+OK 2 30", []string{"1 a", "3 b"}, sizes2},
		{"uidl-endless", "+OK 2 30", []string{"1 a", "2 b", "3 c", "4 d"}, sizes2},
		{"uidl-overlong-line", "+OK 2 30", []string{"1 a", "2 " + strings.Repeat("b", 600)}, sizes2},
		{"size-negative", "+OK 2 30", ok2, []string{"1 -10", "2 20"}},
		{"size-text", "+OK 2 30", ok2, []string{"1 ten", "2 20"}},
		{"size-huge", "+OK 2 30", ok2, []string{"1 99999999999999999999999", "2 20"}},
		{"size-missing", "+OK 2 30", ok2, []string{"1", "2 20"}},
		{"list-short", "+OK 2 30", ok2, []string{"1 10"}},
		{"list-other-nums", "+OK 2 30", ok2, []string{"1 10", "2 20", "2 20"}},
		{"stat-garbage", "+OK many", ok2, sizes2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := scan(t, tc.stat, tc.uidl, tc.list)
			wantKind(t, err, errkind.Protocol, false)
			if msgs != nil {
				t.Errorf("got messages %v with an error", msgs)
			}
		})
	}
}

func TestScanNoUIDL(t *testing.T) {
	c, _ := start(t, []string{"S: +OK", "C: STAT", "S: +OK 1 10", "C: UIDL", "S: -ERR unknown command", "HANG"}, opts())
	_, err := c.Scan()
	wantKind(t, err, errkind.Protocol, false)
	if !strings.Contains(err.Error(), "does not support UIDL") {
		t.Errorf("unclear error: %v", err)
	}
}

func TestScanEndlessListingNoHang(t *testing.T) {
	// A listing that keeps coming: ended by the line bound, not the clock.
	c1, s1 := net.Pipe()
	t.Cleanup(func() { c1.Close(); s1.Close() })
	go func() {
		s1.Write([]byte("+OK\r\n"))
		buf := make([]byte, 64)
		s1.Read(buf) // STAT
		s1.Write([]byte("+OK 3 30\r\n"))
		s1.Read(buf) // UIDL
		s1.Write([]byte("+OK\r\n"))
		for i := 1; ; i++ {
			if _, err := fmt.Fprintf(s1, "%d u%d\r\n", i, i); err != nil {
				return
			}
		}
	}()
	c, err := New(c1, Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Scan()
	wantKind(t, err, errkind.Protocol, false)
}

func TestRetr(t *testing.T) {
	c, srv := start(t, []string{
		"S: +OK",
		"C: RETR 1",
		"S: +OK 60 octets",
		"S: Subject: dots",
		"S: ",
		"S: ..a line starting with a dot",
		"S: ...",
		"S: .. ",
		"S: last line has no newline in the mailbox",
		"S: .",
		"C: RETR 2",
		"S: -ERR [SYS/TEMP] cannot open message",
		"C: NOOP",
		"S: +OK",
	}, opts())
	var got string
	err := c.Retr(1, func(r io.Reader) error {
		b, err := io.ReadAll(r)
		got = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "Subject: dots\n\n.a line starting with a dot\n..\n. \nlast line has no newline in the mailbox\n"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	called := false
	err = c.Retr(2, func(io.Reader) error { called = true; return nil })
	wantKind(t, err, errkind.Refused, true)
	if called {
		t.Error("fn called for a -ERR")
	}
	if err := c.Noop(); err != nil {
		t.Errorf("session not usable after -ERR: %v", err)
	}
	srv.Wait(t)
}

func TestRetrLongLines(t *testing.T) {
	// Message lines are content: far beyond 512 octets is fine.
	long := strings.Repeat("x", 100000)
	c, srv := start(t, []string{"S: +OK", "C: RETR 1", "S: +OK", "S: " + long, "S: .", "C: QUIT", "S: +OK"}, opts())
	var n int64
	if err := c.Retr(1, func(r io.Reader) error { var err error; n, err = io.Copy(io.Discard, r); return err }); err != nil {
		t.Fatal(err)
	}
	if n != int64(len(long)+1) {
		t.Errorf("read %d octets, want %d", n, len(long)+1)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	srv.Wait(t)
}

func TestRetrLinkCut(t *testing.T) {
	c, _ := start(t, []string{"S: +OK", "C: RETR 1", "S: +OK", "RAW: Subject: cut\r\n\r\nhalf a bo", "CLOSE"}, opts())
	var readErr error
	err := c.Retr(1, func(r io.Reader) error {
		_, readErr = io.ReadAll(r)
		return readErr
	})
	wantKind(t, err, errkind.Network, true)
	if !errors.Is(readErr, io.ErrUnexpectedEOF) {
		t.Errorf("fn saw %v, want io.ErrUnexpectedEOF (a cut message must not look complete)", readErr)
	}
	if c.Noop() == nil {
		t.Error("session usable after a cut")
	}
}

func TestRetrUnreadIsDrained(t *testing.T) {
	c, srv := start(t, []string{"S: +OK", "C: RETR 1", "S: +OK", "S: line one", "S: line two", "S: .", "C: NOOP", "S: +OK"}, opts())
	if err := c.Retr(1, func(io.Reader) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := c.Noop(); err != nil {
		t.Fatalf("out of step after an unread message: %v", err)
	}
	srv.Wait(t)
}

func TestOverlongStatus(t *testing.T) {
	c, _ := start(t, []string{"S: +OK", "C: NOOP", "RAW: +OK " + strings.Repeat("y", 100000) + "\r\n", "HANG"}, opts())
	wantKind(t, c.Noop(), errkind.Protocol, false)
}

func TestNoAnswer(t *testing.T) {
	c, _ := start(t, []string{"S: +OK", "C: STAT", "HANG"}, Options{Timeout: 50 * time.Millisecond})
	_, _, err := c.Stat()
	wantKind(t, err, errkind.Network, true)
}

func TestStallMidRetr(t *testing.T) {
	c, _ := start(t, []string{"S: +OK", "C: RETR 1", "S: +OK", "S: Subject: x", "HANG"}, Options{Timeout: 50 * time.Millisecond})
	err := c.Retr(1, func(r io.Reader) error { _, err := io.ReadAll(r); return err })
	wantKind(t, err, errkind.Network, true)
}

func TestDeleRsetQuit(t *testing.T) {
	c, srv := start(t, []string{
		"S: +OK", "C: DELE 1", "S: +OK", "C: DELE 9", "S: -ERR no such message",
		"C: RSET", "S: +OK", "C: QUIT", "S: -ERR [SYS/TEMP] some deleted messages not removed",
	}, opts())
	if err := c.Dele(1); err != nil {
		t.Fatal(err)
	}
	wantKind(t, c.Dele(9), errkind.Refused, false)
	if err := c.Rset(); err != nil {
		t.Fatal(err)
	}
	wantKind(t, c.Quit(), errkind.Refused, true)
	srv.Wait(t)
}

// session logs in to a pop3test server over net.Pipe.
func session(t testing.TB, srv *pop3test.Server, o Options) *Client {
	t.Helper()
	c, err := New(srv.Pipe(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(srv.User, srv.Pass); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Capa(); err != nil {
		t.Fatal(err)
	}
	return c
}

func fill(srv *pop3test.Server, n, size int) {
	for i := 1; i <= n; i++ {
		body := strings.Repeat(fmt.Sprintf(".line %d of a message\n", i), size/24+1)
		srv.Add([]byte(fmt.Sprintf("Subject: %d\n\n%s", i, body)))
	}
}

func TestPipelined2000(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		t.Run(fmt.Sprint("pipelining=", pipelining), func(t *testing.T) {
			srv := &pop3test.Server{User: "u", Pass: "p", Pipelining: pipelining}
			n := 2000
			if !pipelining {
				n = 300 // lock step over net.Pipe is slow under -race
			}
			fill(srv, n, 200)
			c := session(t, srv, Options{Timeout: 5 * time.Second, Window: 8})
			msgs, err := c.Scan()
			if err != nil || len(msgs) != n {
				t.Fatalf("scan: %d %v", len(msgs), err)
			}
			nums := make([]uint32, len(msgs))
			for i, m := range msgs {
				nums[i] = m.Num
			}
			next := 0
			err = c.RetrAll(nums, func(i int, r io.Reader) error {
				if i != next {
					return fmt.Errorf("fn called for %d, want %d", i, next)
				}
				next++
				b, err := io.ReadAll(r)
				if err != nil {
					return err
				}
				if want := fmt.Sprintf("Subject: %d\n\n.line %d", i+1, i+1); !strings.HasPrefix(string(b), want) || int64(len(b)) != msgs[i].Size-int64(bytes.Count(b, []byte("\n"))) {
					return fmt.Errorf("message %d: %q... (%d octets, LIST said %d with CRLF)", i+1, b[:min(40, len(b))], len(b), msgs[i].Size)
				}
				return nil
			})
			if err != nil || next != n {
				t.Fatalf("RetrAll: %d messages, %v", next, err)
			}
			if err := c.DeleAll(nums); err != nil {
				t.Fatal(err)
			}
			if err := c.Quit(); err != nil {
				t.Fatal(err)
			}
			if srv.Count() != 0 {
				t.Errorf("%d messages left after DELE+QUIT", srv.Count())
			}
			if got := srv.Pipelined(); (got == 1) != pipelining {
				t.Errorf("sessions with pipelined commands: %d (server pipelining %v)", got, pipelining)
			}
		})
	}
}

func TestPipelineStopKeepsSessionUsable(t *testing.T) {
	srv := &pop3test.Server{User: "u", Pass: "p", Pipelining: true}
	fill(srv, 50, 5000)
	c := session(t, srv, Options{Timeout: 5 * time.Second, Window: 16})
	msgs, err := c.Scan()
	if err != nil {
		t.Fatal(err)
	}
	nums := make([]uint32, len(msgs))
	for i, m := range msgs {
		nums[i] = m.Num
	}
	stopErr := errors.New("local delivery failed")
	seen := 0
	err = c.RetrAll(nums, func(i int, r io.Reader) error {
		seen++
		if i == 3 {
			return stopErr
		}
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if !errors.Is(err, stopErr) || seen != 4 {
		t.Fatalf("RetrAll: %v after %d messages", err, seen)
	}
	// The session is in step: delete the first three, commit.
	if err := c.DeleAll(nums[:3]); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	if srv.Count() != 47 {
		t.Errorf("%d messages left, want 47", srv.Count())
	}
}

func TestDropRollsBack(t *testing.T) {
	srv := &pop3test.Server{User: "u", Pass: "p", Pipelining: true}
	fill(srv, 3, 100)
	c := session(t, srv, opts())
	if err := c.DeleAll([]uint32{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c = session(t, srv, opts())
	msgs, err := c.Scan()
	if err != nil || len(msgs) != 3 {
		t.Errorf("after a drop without QUIT: %d messages, %v", len(msgs), err)
	}
	c.Quit()
}

// TestGoldenTranscript pins the exact octets the client writes in one full
// session, pipelined.
func TestGoldenTranscript(t *testing.T) {
	srv := &pop3test.Server{User: "alice", Pass: "secret", Pipelining: true}
	fill(srv, 2, 50)
	c, err := New(srv.Pipe(), opts())
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.Capa()
	must(err)
	must(c.Auth(PlainAuth("alice", "secret"), true))
	_, err = c.Capa()
	must(err)
	msgs, err := c.Scan()
	must(err)
	must(c.RetrAll([]uint32{msgs[0].Num, msgs[1].Num}, func(int, io.Reader) error { return nil }))
	must(c.DeleAll([]uint32{1, 2}))
	must(c.Quit())
	got := srv.ClientBytes()
	golden := filepath.Join("testdata", "session.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(golden, got, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("client wrote:\n%q\nwant:\n%q", got, want)
	}
}

func TestRetrEndless(t *testing.T) {
	// A server that streams a message without end: cut off at the
	// ceiling, not read until the disk is full.
	c1, s1 := net.Pipe()
	t.Cleanup(func() { c1.Close(); s1.Close() })
	go func() {
		s1.Write([]byte("+OK\r\n"))
		s1.Read(make([]byte, 64)) // RETR 1
		s1.Write([]byte("+OK\r\n"))
		line := []byte(strings.Repeat("z", 998) + "\r\n")
		for {
			if _, err := s1.Write(line); err != nil {
				return
			}
		}
	}()
	c, err := New(c1, opts())
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	err = c.RetrLimited([]uint32{1}, []int64{100000}, func(_ int, r io.Reader) error {
		n, err = io.Copy(io.Discard, r)
		return err
	})
	wantKind(t, err, errkind.Protocol, false)
	if n > 100000 {
		t.Errorf("fn got %d octets past a ceiling of 100000", n)
	}
}

// TestRetrStreamsLargeMessage: an 8 MB message passes through with a
// bounded amount of memory allocated by the whole process (client and the
// in-memory server): the client never holds a message.
func TestRetrStreamsLargeMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 8 MB")
	}
	srv := &pop3test.Server{User: "u", Pass: "p", Pipelining: true}
	line := strings.Repeat("m", 1000) + "\n"
	srv.Add([]byte("Subject: big\n\n" + strings.Repeat(line, 8<<10)))
	c := session(t, srv, opts())
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var n int64
	err := c.Retr(1, func(r io.Reader) error {
		var err error
		n, err = io.Copy(io.Discard, r)
		return err
	})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(14 + 8<<10*len(line)); n != want {
		t.Errorf("got %d octets, want %d", n, want)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
		t.Errorf("allocated %d bytes to stream a %d-byte message", alloc, n)
	}
	c.Quit()
}

// With PIPELINING announced, USER and PASS go out together, and the CAPA
// after login rides with STAT/UIDL/LIST: the script reads every command
// before answering any, which a lock-step client could not get past.
func TestPipelinedLoginAndScan(t *testing.T) {
	log, buf := traceLogger()
	o := opts()
	o.Logger = log
	c, srv := start(t, []string{
		"S: +OK",
		"C: CAPA", "S: +OK", "S: PIPELINING", "S: USER", "S: .",
		"C: USER alice", "C: PASS s3cret", "S: +OK", "S: +OK logged in",
		"C: CAPA", "C: STAT", "C: UIDL", "C: LIST",
		"S: +OK", "S: PIPELINING", "S: UIDL", "S: IMPLEMENTATION after-login", "S: .",
		"S: +OK 1 10", "S: +OK", "S: 1 u1", "S: .", "S: +OK", "S: 1 10", "S: .",
	}, o)
	if _, err := c.Capa(); err != nil {
		t.Fatal(err)
	}
	if err := c.Login("alice", "s3cret"); err != nil {
		t.Fatal(err)
	}
	if err := c.RefreshCapa(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Scan()
	if err != nil || len(msgs) != 1 || msgs[0].UID != "u1" {
		t.Fatalf("Scan: %v %v", msgs, err)
	}
	if !c.Caps().Has("IMPLEMENTATION") {
		t.Errorf("capabilities after login not learnt: %v", c.Caps())
	}
	srv.Wait(t)
	if strings.Contains(buf.String(), "s3cret") || !strings.Contains(buf.String(), "PASS ***") {
		t.Errorf("transcript:\n%s", buf.String())
	}
}

// failWriter fails every write once armed, like a link reset while the
// commands go out.
type failWriter struct {
	net.Conn
	armed bool
}

func (f *failWriter) Write(p []byte) (int, error) {
	if f.armed {
		return 0, syscall.EPIPE
	}
	return f.Conn.Write(p)
}

func TestPipelineWriteFailure(t *testing.T) {
	srv := scripted.Start(t, []string{"S: +OK", "C: CAPA", "S: +OK", "S: PIPELINING", "S: .", "HANG"})
	fw := &failWriter{Conn: srv.Conn}
	c, err := New(fw, opts())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Capa(); err != nil {
		t.Fatal(err)
	}
	fw.armed = true
	err = c.RetrAll([]uint32{1, 2, 3}, func(int, io.Reader) error { return nil })
	wantKind(t, err, errkind.Network, true)
	if !errors.Is(err, syscall.EPIPE) {
		t.Errorf("error %v does not carry the write failure", err)
	}
}

// DeleQuit sends every DELE and the QUIT in one batch; a DELE refused does
// not hold back the others.
func TestDeleQuit(t *testing.T) {
	c, srv := start(t, []string{
		"S: +OK", "C: CAPA", "S: +OK", "S: PIPELINING", "S: .",
		"C: DELE 1", "C: DELE 2", "C: DELE 3", "C: QUIT",
		"S: +OK", "S: -ERR [SYS/PERM] message 2 is locked", "S: +OK", "S: +OK bye",
	}, opts())
	if _, err := c.Capa(); err != nil {
		t.Fatal(err)
	}
	err := c.DeleQuit([]uint32{1, 2, 3})
	wantKind(t, err, errkind.Refused, false)
	var se *ServerError
	if !errors.As(err, &se) || se.Command != "DELE 2" {
		t.Errorf("error %v does not name DELE 2", err)
	}
	srv.Wait(t)
}

// A pre-authenticated stream (Dovecot's pop3 under doveadm exec) sends no
// greeting: with NoGreeting New reads nothing and the first command's
// reply is read as that.
func TestNoGreeting(t *testing.T) {
	o := opts()
	o.NoGreeting = true
	c, srv := start(t, []string{"C: STAT", "S: +OK 2 320"}, o)
	n, size, err := c.Stat()
	if err != nil || n != 2 || size != 320 {
		t.Fatalf("Stat %d %d %v", n, size, err)
	}
	srv.Wait(t)
}
