package imap

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/linkctl/linkctl/internal/logx"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// memServer is go-imap's in-memory server on a loopback port.
type memServer struct {
	addr string
	user *imapmemserver.User
	tls  *tls.Config // client config trusting the server, when TLS is on
}

type memOpts struct {
	caps     []imap.Cap // beyond IMAP4rev1
	tls      bool       // STARTTLS on the plain port
	implicit bool       // the listener speaks TLS from the first octet
}

func startMem(t testing.TB, o memOpts, msgs ...string) *memServer {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser("alice", "secret")
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(user)
	caps := imap.CapSet{imap.CapIMAP4rev1: {}}
	for _, c := range o.caps {
		caps[c] = struct{}{}
	}
	so := &imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
		Logger:       discardLogger{},
	}
	s := &memServer{user: user}
	var srvTLS *tls.Config
	if o.tls || o.implicit {
		srvTLS, s.tls = testCert(t)
		if o.tls {
			so.TLSConfig = srvTLS
		}
	}
	srv := imapserver.New(so)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.implicit {
		ln = tls.NewListener(ln, srvTLS)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	s.addr = ln.Addr().String()
	for _, m := range msgs {
		s.add(t, m)
	}
	return s
}

func (s *memServer) add(t testing.TB, m string) {
	t.Helper()
	if _, err := s.user.Append("INBOX", literal(m), &imap.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
}

type lit struct {
	*strings.Reader
	n int64
}

func (l lit) Size() int64 { return l.n }

func literal(s string) imap.LiteralReader { return lit{strings.NewReader(s), int64(len(s))} }

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

func testCert(t testing.TB) (server, client *tls.Config) {
	cert, pool := testpeer.SelfSigned(t, "127.0.0.1")
	return &tls.Config{Certificates: []tls.Certificate{cert}}, &tls.Config{RootCAs: pool}
}

func pass(p string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return p, nil }
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: logx.LevelTrace}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (s *memServer) opts(t testing.TB) Options {
	return Options{Addr: s.addr, TLS: netconn.TLSNone, User: "alice", Password: pass("secret"),
		Timeout: 10 * time.Second, Logger: testLogger(t)}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fetchAll fetches uids and returns the bodies by UID.
func fetchAll(t testing.TB, cl *Client, uids []uint32) map[uint32]string {
	t.Helper()
	got := map[uint32]string{}
	err := cl.Fetch(ctxT(t), uids, func(uid uint32, r io.Reader) error {
		var b bytes.Buffer
		_, err := b.ReadFrom(r)
		got[uid] = b.String()
		return err
	})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return got
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: logx.LevelTrace}))
}
