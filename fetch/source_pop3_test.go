package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linkctl/linkctl/fetch/pop3/pop3test"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/scripted"
	"github.com/linkctl/linkctl/internal/testpeer"
)

func pw(s string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return s, nil }
}

// plainSource is a POP3Source on srv over net.Pipe, without TLS.
func plainSource(srv *pop3test.Server) POP3Source {
	return POP3Source{
		Addr: "pop.test:110", TLS: netconn.TLSNone, User: srv.User, Password: pw(srv.Pass),
		Timeout: 5 * time.Second,
		Dial:    func(context.Context) (net.Conn, error) { return srv.Pipe(), nil },
	}
}

func fillMsgs(srv *pop3test.Server, n int) {
	for i := 1; i <= n; i++ {
		srv.Add([]byte(fmt.Sprintf("Subject: m%d\r\n\r\n.dot line\r\nbody %d\r\n", i, i)))
	}
}

func retrieveAll(t *testing.T, mb Mailbox, msgs []Message) []string {
	t.Helper()
	var got []string
	err := mb.Retrieve(context.Background(), msgs, func(m Message, r io.Reader) error {
		b, err := io.ReadAll(r)
		got = append(got, string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestPOP3SourceSession(t *testing.T) {
	srv := &pop3test.Server{User: "alice", Pass: "pw", Pipelining: true}
	fillMsgs(srv, 3)
	src := plainSource(srv)
	if got, want := src.Key(), "pop3:alice@pop.test:110"; got != want {
		t.Errorf("Key %q, want %q", got, want)
	}
	ctx := context.Background()
	mb, err := src.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if mb.Key() != src.Key() {
		t.Errorf("Mailbox.Key %q", mb.Key())
	}
	msgs, err := mb.List(ctx)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("List: %v %v", msgs, err)
	}
	if msgs[0].UID != "uid-000001" || msgs[0].Num != 1 || msgs[0].Size == 0 {
		t.Errorf("first message %+v", msgs[0])
	}
	got := retrieveAll(t, mb, []Message{msgs[2], msgs[0]})
	want := []string{"Subject: m3\n\n.dot line\nbody 3\n", "Subject: m1\n\n.dot line\nbody 1\n"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Retrieve: %q, want %q (given order, LF, unstuffed)", got, want)
	}
	if pb, ok := mb.(interface{ MessageBytes() int64 }); !ok || pb.MessageBytes() != int64(len(want[0])+len(want[1])) {
		t.Errorf("MessageBytes not reported")
	}
	if wb, ok := mb.(interface{ WireBytes() (int64, int64) }); !ok {
		t.Error("WireBytes not implemented")
	} else if r, w := wb.WireBytes(); r < int64(len(want[0])+len(want[1])) || w == 0 {
		t.Errorf("WireBytes %d read, %d written", r, w)
	}
	if err := mb.Delete(ctx, msgs[:2]); err != nil {
		t.Fatal(err)
	}
	if err := mb.Close(ctx, true); err != nil {
		t.Fatal(err)
	}
	if srv.Count() != 1 {
		t.Errorf("%d messages left after commit, want 1", srv.Count())
	}
	if !strings.Contains(string(srv.ClientBytes()), "AUTH PLAIN ") {
		t.Errorf("auth auto did not use the advertised SASL PLAIN:\n%s", srv.ClientBytes())
	}
}

func TestPOP3SourceCloseWithoutCommit(t *testing.T) {
	srv := &pop3test.Server{User: "alice", Pass: "pw", Pipelining: true}
	fillMsgs(srv, 2)
	ctx := context.Background()
	mb, err := plainSource(srv).Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := mb.List(ctx)
	if err := mb.Delete(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if err := mb.Close(ctx, false); err != nil {
		t.Fatal(err)
	}
	if srv.Count() != 2 {
		t.Errorf("deletions not rolled back: %d left", srv.Count())
	}
	if strings.Contains(string(srv.ClientBytes()), "QUIT") {
		t.Error("QUIT sent on Close(false)")
	}
}

func TestPOP3SourceAuthFailure(t *testing.T) {
	srv := &pop3test.Server{User: "alice", Pass: "pw"}
	src := plainSource(srv)
	src.Password = pw("wrong-Secret")
	src.Auth = "password"
	_, err := src.Open(context.Background())
	if errkind.ExitCode(err) != 3 || errkind.IsTemporary(err) {
		t.Fatalf("err %v: exit %d, temporary %v; want 3, permanent", err, errkind.ExitCode(err), errkind.IsTemporary(err))
	}
	if strings.Contains(err.Error(), "wrong-Secret") {
		t.Errorf("password in error: %v", err)
	}
}

func TestPOP3SourcePasswordError(t *testing.T) {
	srv := &pop3test.Server{User: "alice", Pass: "pw"}
	src := plainSource(srv)
	src.Password = func(context.Context) (string, error) {
		return "", errkind.Permanent(errkind.Usage, "password_command", "exit 1")
	}
	_, err := src.Open(context.Background())
	if errkind.KindOf(err) != errkind.Usage {
		t.Fatalf("err %v", err)
	}
}

func TestPOP3SourceBadTLSMode(t *testing.T) {
	srv := &pop3test.Server{User: "alice", Pass: "pw"}
	src := plainSource(srv)
	src.TLS = "startls" // a typo must not mean plaintext
	dialed := false
	src.Dial = func(context.Context) (net.Conn, error) { dialed = true; return srv.Pipe(), nil }
	_, err := src.Open(context.Background())
	// The config validates tls: into a netconn.TLSMode: another value is
	// a bug, not the user's config error.
	if errkind.KindOf(err) != errkind.Internal || dialed {
		t.Fatalf("err %v, dialed %v", err, dialed)
	}
}

// TestPOP3SourceBadAuthName: auth reaches the source as the config
// validated it (authmech.Mech); a value outside authmech.All is a bug
// reported as such, where it used to be a run-time "unknown auth" usage
// error (exit 5) that `linkctl check` had not shown. Nothing is sent.
func TestPOP3SourceBadAuthName(t *testing.T) {
	srv := &pop3test.Server{User: "alice", Pass: "pw"}
	src := plainSource(srv)
	src.Auth = "kerberos"
	_, err := src.Open(context.Background())
	if errkind.KindOf(err) != errkind.Internal {
		t.Fatalf("err %v (%v), want an internal error", err, errkind.KindOf(err))
	}
	if b := string(srv.ClientBytes()); strings.Contains(b, "USER") || strings.Contains(b, "AUTH ") || strings.Contains(b, "pw") {
		t.Errorf("client sent a login with an unknown mechanism: %q", b)
	}
}

// The default TLS mode is STARTTLS; a server that does not offer STLS gets
// an error and never sees the user name or password.
func TestPOP3SourceSTLSMissing(t *testing.T) {
	s := scripted.Start(t, []string{"S: +OK ready", "C: CAPA", "S: +OK", "S: USER", "S: SASL PLAIN", "S: .", "C: never"})
	src := POP3Source{Addr: "pop.example.net:110", User: "alice", Password: pw("pw"), Timeout: time.Second,
		Dial: func(context.Context) (net.Conn, error) { return s.Conn, nil }}
	_, err := src.Open(context.Background())
	if errkind.KindOf(err) != errkind.Protocol || !strings.Contains(err.Error(), "STLS") {
		t.Fatalf("err %v", err)
	}
	s.Err()
	if got := s.Lines(); len(got) != 1 {
		t.Errorf("client sent %q; want only CAPA", got)
	}
}

func testCA(t *testing.T) (*x509.CertPool, tls.Certificate) {
	cert, pool := testpeer.SelfSigned(t, "pop.test")
	return pool, cert
}

func loopback(t *testing.T, srv *pop3test.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go srv.ServeListener(l)
	return l.Addr().String()
}

func TestPOP3SourceSTARTTLS(t *testing.T) {
	pool, cert := testCA(t)
	srv := &pop3test.Server{User: "alice", Pass: "pw", Pipelining: true, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}
	fillMsgs(srv, 2)
	addr := loopback(t, srv)
	src := POP3Source{Addr: addr, TLS: netconn.TLSStartTLS, TLSConfig: &tls.Config{RootCAs: pool, ServerName: "pop.test"},
		User: "alice", Password: pw("pw"), Timeout: 5 * time.Second}
	ctx := context.Background()
	mb, err := src.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := mb.List(ctx)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("List %v %v", msgs, err)
	}
	if got := retrieveAll(t, mb, msgs); len(got) != 2 || got[1] != "Subject: m2\n\n.dot line\nbody 2\n" {
		t.Errorf("got %q", got)
	}
	if err := mb.Close(ctx, true); err != nil {
		t.Fatal(err)
	}

	// The same server with a CA we do not trust: a permanent error.
	src.TLSConfig = &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "pop.test"}
	_, err = src.Open(ctx)
	if err == nil || errkind.IsTemporary(err) || errkind.KindOf(err) != errkind.Network {
		t.Fatalf("untrusted certificate: %v (temporary %v)", err, errkind.IsTemporary(err))
	}
}

func TestPOP3SourceCancel(t *testing.T) {
	srv := &pop3test.Server{User: "alice", Pass: "pw", Pipelining: true}
	fillMsgs(srv, 20)
	ctx, cancel := context.WithCancelCause(context.Background())
	mb, err := plainSource(srv).Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := mb.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	linkDown := errors.New("link went down")
	n := 0
	err = mb.Retrieve(ctx, msgs, func(m Message, r io.Reader) error {
		n++
		if n == 2 {
			cancel(linkDown) // closes the connection under the session
		}
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if !errors.Is(err, linkDown) || !errkind.IsTemporary(err) {
		t.Fatalf("Retrieve after cancel: %v", err)
	}
	if err := mb.Close(context.Background(), true); err == nil {
		t.Error("Close(commit) on a broken session reported success")
	}
	if srv.Count() != 20 {
		t.Errorf("messages removed by a cancelled session: %d left", srv.Count())
	}
}

// cutConn delivers the first n octets the server sends, then fails like a
// link that went down.
type cutConn struct {
	net.Conn
	n int
}

func (c *cutConn) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.Conn.Close()
		return 0, syscall.ECONNRESET
	}
	if len(p) > c.n {
		p = p[:c.n]
	}
	k, err := c.Conn.Read(p)
	c.n -= k
	return k, err
}

// TestPOP3SourceCutEverywhere cuts the link at every offset of a whole
// session (list, retrieve, delete, commit) and checks what a user relies
// on: a message the engine was handed complete is exactly the message (a
// cut one always ends in an error), nothing is deleted unless QUIT reached
// the server, and a Close that reports success really committed.
func TestPOP3SourceCutEverywhere(t *testing.T) {
	bodies := []string{"Subject: a\n\nfirst\n.dotted\n", "Subject: b\n\n" + strings.Repeat("second line\n", 20), "Subject: c\n\nthird\n"}
	full := -1
	for cut := 0; full < 0 || cut <= full; cut += 3 {
		srv := &pop3test.Server{User: "u", Pass: "p", Pipelining: true}
		for _, b := range bodies {
			srv.Add([]byte(b))
		}
		cc := &cutConn{n: cut}
		if full < 0 {
			cc.n = 1 << 30 // first round: measure the session
		}
		src := POP3Source{Addr: "pop.test:110", TLS: netconn.TLSNone, User: "u", Password: pw("p"), Timeout: 5 * time.Second,
			Dial: func(context.Context) (net.Conn, error) { cc.Conn = srv.Pipe(); return cc, nil }}
		ctx := context.Background()
		committed := false
		func() {
			mb, err := src.Open(ctx)
			if err != nil {
				return
			}
			msgs, err := mb.List(ctx)
			if err != nil {
				mb.Close(ctx, false)
				return
			}
			err = mb.Retrieve(ctx, msgs, func(m Message, r io.Reader) error {
				b, err := io.ReadAll(r)
				if err == nil && string(b) != bodies[m.Num-1] {
					t.Errorf("cut at %d: message %d handed over complete but wrong: %q", cut, m.Num, b)
				}
				return err
			})
			if err != nil {
				mb.Close(ctx, false)
				return
			}
			if err := mb.Delete(ctx, msgs); err != nil {
				mb.Close(ctx, false)
				return
			}
			committed = mb.Close(ctx, true) == nil
		}()
		if full < 0 {
			if !committed {
				t.Fatal("uncut session failed")
			}
			full = 1<<30 - cc.n
			cut = -3
			continue
		}
		n := srv.Count()
		if committed && n != 0 {
			t.Errorf("cut at %d: Close reported a commit but %d messages remain", cut, n)
		}
		if n != 0 && n != 3 {
			t.Errorf("cut at %d: %d messages remain; deletion must be all (QUIT) or nothing", cut, n)
		}
	}
}
