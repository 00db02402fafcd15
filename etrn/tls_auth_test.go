package etrn

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/scripted"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// tlsRelay plays a relay that offers STARTTLS, over a loopback TCP pair
// (net.Pipe has no buffer, and a client that aborts a handshake half-way
// would deadlock against a server still writing its flight): plaintext
// greeting and EHLO, the handshake, then afterTLS as a script on the TLS
// conn ("C: " expects, "S: " sends). It reports the lines the client sent
// after the handshake.
func tlsRelay(t *testing.T, cert tls.Certificate, afterTLS []string) (net.Conn, <-chan []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	got := make(chan []string, 1)
	go func() {
		var lines []string
		defer func() { got <- lines }()
		s.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(s)
		s.Write([]byte("220 relay.test ESMTP\r\n"))
		r.ReadString('\n') // EHLO
		s.Write([]byte("250-relay.test\r\n250-STARTTLS\r\n250 ETRN\r\n"))
		if l, _ := r.ReadString('\n'); l != "STARTTLS\r\n" {
			return
		}
		s.Write([]byte("220 2.0.0 Ready to start TLS\r\n"))
		ts := tls.Server(s, &tls.Config{Certificates: []tls.Certificate{cert}})
		if ts.Handshake() != nil {
			return
		}
		tr := bufio.NewReader(ts)
		for _, step := range afterTLS {
			verb, arg, _ := strings.Cut(step, " ")
			switch verb {
			case "S:":
				ts.Write([]byte(arg + "\r\n"))
			case "C:":
				l, err := tr.ReadString('\n')
				if err != nil {
					return
				}
				lines = append(lines, strings.TrimRight(l, "\r\n"))
			}
		}
		ts.Close()
	}()
	return c, got
}

// TestStartTLSThenETRN: STARTTLS with a trusted certificate, EHLO again
// over TLS, AUTH (allowed now that the session is encrypted), ETRN.
func TestStartTLSThenETRN(t *testing.T) {
	cert, pool := testpeer.SelfSigned(t, "relay.test")
	conn, got := tlsRelay(t, cert, []string{
		"C: EHLO", "S: 250-relay.test", "S: 250-AUTH PLAIN LOGIN", "S: 250 ETRN",
		"C: AUTH", "S: 235 2.7.0 ok", "C: ETRN", "S: 250 Queuing started", "C: QUIT", "S: 221 bye",
	})
	s := plainServer("example.org")
	s.TLS, s.TLSConfig = netconn.TLSStartTLS, &tls.Config{RootCAs: pool}
	s.User, s.Password = "home", func(context.Context) (string, error) { return "s3cret", nil }
	var tr transcript
	res := AskConn(context.Background(), conn, s, tr.add, nil)
	if res.Err != nil {
		t.Fatalf("AskConn: %v\n%s", res.Err, tr.String())
	}
	lines := <-got
	want := []string{"EHLO client.test", "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00home\x00s3cret")), "ETRN example.org", "QUIT"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("client sent over TLS %q, want %q", lines, want)
	}
	if strings.Contains(tr.String(), "s3cret") || strings.Contains(tr.String(), want[1][11:]) || !strings.Contains(tr.String(), "C: AUTH PLAIN ***") {
		t.Errorf("transcript leaks or lacks the redaction:\n%s", tr.String())
	}
}

// TestStartTLSUntrusted: a certificate we do not trust ends the session
// before anything is sent over it, permanently.
func TestStartTLSUntrusted(t *testing.T) {
	cert, _ := testpeer.SelfSigned(t, "relay.test")
	conn, got := tlsRelay(t, cert, []string{"C: EHLO"})
	s := plainServer("example.org")
	s.TLS = netconn.TLSStartTLS // system roots: the test CA is unknown
	res := AskConn(context.Background(), conn, s, nil, nil)
	if res.Err == nil || errkind.KindOf(res.Err) != errkind.Network || errkind.IsTemporary(res.Err) {
		t.Fatalf("err = %v, want a permanent network (certificate) error", res.Err)
	}
	if !strings.Contains(res.Err.Error(), "certificate") {
		t.Errorf("err = %v, want it to name the certificate", res.Err)
	}
	conn.Close()
	if lines := <-got; len(lines) != 0 {
		t.Errorf("client sent %q over an untrusted session", lines)
	}
	if res.Domains[0].Sent {
		t.Error("ETRN sent")
	}
}

// TestAuthMechanisms runs PLAIN, LOGIN and CRAM-MD5 (tls: none written
// out, so plaintext AUTH is allowed) and checks the redaction.
func TestAuthMechanisms(t *testing.T) {
	chal := "<1896.697170952@relay.test>"
	h := hmac.New(md5.New, []byte("pw"))
	h.Write([]byte(chal))
	cram := b64("u " + hex.EncodeToString(h.Sum(nil)))
	cases := []struct {
		name   string
		offer  string
		script []string
	}{
		{"plain", "AUTH PLAIN", []string{"C: AUTH PLAIN " + b64("\x00u\x00pw"), "S: 235 ok"}},
		{"login", "AUTH LOGIN", []string{"C: AUTH LOGIN", "S: 334 VXNlcm5hbWU6", "C: " + b64("u"), "S: 334 UGFzc3dvcmQ6", "C: " + b64("pw"), "S: 235 ok"}},
		// Without TLS CRAM-MD5 is preferred: the password never crosses.
		{"cram-md5", "AUTH PLAIN LOGIN CRAM-MD5", []string{"C: AUTH CRAM-MD5", "S: 334 " + b64(chal), "C: " + cram, "S: 235 ok"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			script := append(greetEHLO(tc.offer, "ETRN"), tc.script...)
			script = append(script, "C: ETRN example.org", "S: 251 nothing", "C: QUIT", "S: 221 bye", "CLOSE")
			srv := scripted.Start(t, script)
			s := plainServer("example.org")
			s.User, s.Password = "u", func(context.Context) (string, error) { return "pw", nil }
			var tr transcript
			res := AskConn(context.Background(), srv.Conn, s, tr.add, nil)
			srv.Wait(t)
			if res.Err != nil {
				t.Fatalf("err = %v", res.Err)
			}
			for _, secret := range []string{b64("\x00u\x00pw"), b64("pw"), cram} {
				if strings.Contains(tr.String(), secret) {
					t.Errorf("transcript holds a secret %q:\n%s", secret, tr.String())
				}
			}
		})
	}
}

// TestAuthFailure: 535 is an authentication error (exit 3), 454 a
// temporary one; no ETRN follows.
func TestAuthFailure(t *testing.T) {
	for _, tc := range []struct {
		reply string
		temp  bool
	}{{"535 5.7.8 Authentication credentials invalid", false}, {"454 4.7.0 Temporary authentication failure", true}} {
		srv := scripted.Start(t, append(greetEHLO("AUTH PLAIN", "ETRN"), "C~ AUTH PLAIN ", "S: "+tc.reply, "C: QUIT", "S: 221 bye", "CLOSE"))
		s := plainServer("example.org")
		s.User, s.Password = "u", func(context.Context) (string, error) { return "wrong", nil }
		res := AskConn(context.Background(), srv.Conn, s, nil, nil)
		srv.Wait(t)
		if errkind.ExitCode(res.Err) != 3 || errkind.IsTemporary(res.Err) != tc.temp {
			t.Errorf("%s: err = %v, exit %d, want 3 (temporary %v)", tc.reply, res.Err, errkind.ExitCode(res.Err), tc.temp)
		}
		if strings.Contains(res.Err.Error(), "wrong") {
			t.Errorf("error holds the password: %v", res.Err)
		}
	}
}

// TestAuthNeedsTLS: without TLS, and without tls: none, credentials are
// never sent.
func TestAuthNeedsTLS(t *testing.T) {
	srv := scripted.Start(t, append(greetEHLO("AUTH PLAIN", "ETRN"), "CLOSE"))
	c, err := NewClient(srv.Conn, ClientOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	err = c.Auth(AuthOptions{User: "u", Password: "pw"})
	if errkind.KindOf(err) != errkind.Auth || !strings.Contains(err.Error(), "unencrypted") {
		t.Errorf("err = %v", err)
	}
	srv.Wait(t)
	if len(srv.Lines()) != 1 {
		t.Errorf("client sent %q", srv.Lines())
	}
}

// TestImplicitTLS: tls: implicit dials TLS from the first byte (port 465
// by default), sends no STARTTLS, and counts as secure for AUTH.
func TestImplicitTLS(t *testing.T) {
	cert, pool := testpeer.SelfSigned(t, "relay.test")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []string, 1)
	go func() {
		var lines []string
		defer func() { got <- lines }()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		c.Write([]byte("220 relay.test ESMTP\r\n"))
		for _, reply := range []string{"250-relay.test\r\n250-AUTH PLAIN\r\n250 ETRN\r\n", "235 ok\r\n", "251 nothing waiting\r\n", "221 bye\r\n"} {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			lines = append(lines, strings.Fields(l)[0])
			c.Write([]byte(reply))
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	// Dial 127.0.0.1 but verify the certificate for relay.test.
	srv := Server{Addr: "127.0.0.1:" + port, Domains: []string{"example.org"}, TLS: netconn.TLSImplicit,
		TLSConfig: &tls.Config{RootCAs: pool, ServerName: "relay.test"}, Helo: "client.test", Timeout: 5 * time.Second,
		User: "u", Password: func(context.Context) (string, error) { return "pw", nil }}
	res := Ask(context.Background(), srv, nil, nil)
	if res.Err != nil || res.Domains[0].Outcome != NothingWaiting {
		t.Fatalf("res = %+v", res)
	}
	if l := <-got; strings.Join(l, " ") != "EHLO AUTH ETRN QUIT" {
		t.Errorf("client sent %v, want EHLO AUTH ETRN QUIT (no STARTTLS)", l)
	}
}

// TestAskTakesResolvedAddress: the config alone defaults ports
// (config.DefaultPort); a relay given as a bare host is the caller's bug
// (errkind.Internal, permanent), reported before any dial, where the stage
// used to pick port 25 or 465 itself.
func TestAskTakesResolvedAddress(t *testing.T) {
	res := Ask(context.Background(), Server{Addr: "127.0.0.1", Domains: []string{"example.org"}, TLS: netconn.TLSImplicit, Timeout: time.Second}, nil, nil)
	if errkind.KindOf(res.Err) != errkind.Internal || errkind.IsTemporary(res.Err) {
		t.Fatalf("bare host: %v (%v), want a permanent internal error", res.Err, errkind.KindOf(res.Err))
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
