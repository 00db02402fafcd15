package flush

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/linkctl/linkctl/internal/testpeer"
)

// relayHome is the SMTP server at the relay port: a bare go-smtp server
// that counts the messages it accepts.
type relayHome struct {
	mu   sync.Mutex
	msgs int
}

func (h *relayHome) NewSession(*smtp.Conn) (smtp.Session, error) { return &homeSession{h: h}, nil }

type homeSession struct{ h *relayHome }

func (s *homeSession) AuthPlain(string, string) error       { return nil }
func (s *homeSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *homeSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *homeSession) Reset()                               {}
func (s *homeSession) Logout() error                        { return nil }
func (s *homeSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.h.mu.Lock()
	s.h.msgs++
	s.h.mu.Unlock()
	return nil
}

func (h *relayHome) count() int { h.mu.Lock(); defer h.mu.Unlock(); return h.msgs }

func startHome(t *testing.T, addr string) *relayHome {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on the relay port %s: %v", addr, err)
	}
	h := &relayHome{}
	srv := smtp.NewServer(h)
	srv.Domain = "home.test"
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return h
}

// queueDeferred starts a Postfix whose relay.test mail goes to relay (down
// for now) and queues n messages there, waiting until all are deferred.
func queueDeferred(t *testing.T, relay string, n int) *testpeer.Postfix {
	t.Helper()
	pf := testpeer.StartPostfix(t, testpeer.PostfixOptions{RelayDomains: []string{"relay.test"}, RelayAddr: relay})
	for i := 0; i < n; i++ {
		if err := pf.Send("me@home.test", []string{fmt.Sprintf("r%d@relay.test", i)}, fmt.Sprintf("Subject: out %d\n\nhello\n", i)); err != nil {
			t.Fatal(err)
		}
	}
	pf.WaitQueue(20*time.Second, fmt.Sprintf("%d deferred", n), func(q []testpeer.PostfixQueued) bool {
		if len(q) != n {
			return false
		}
		for _, m := range q {
			if m.Queue != "deferred" {
				return false
			}
		}
		return true
	})
	return pf
}

// TestPostfixFlushDrains: N messages wait deferred for a relay that was
// down; the relay comes up; the flush stage returns only after the relay
// got all N, and reports the queue drained.
func TestPostfixFlushDrains(t *testing.T) {
	testpeer.Short(t)
	t.Parallel() // its own Postfix
	const n = 5
	relay := testpeer.ReservePort(t)
	pf := queueDeferred(t, relay, n)
	home := startHome(t, relay)
	res, err := Run(context.Background(), Options{MTA: Postfix, Env: pf.Env(), Timeout: time.Minute, Poll: 200 * time.Millisecond, Settle: time.Second}, nil)
	got := home.count() // read at once: the stage claims it is all out
	if err != nil {
		t.Fatalf("flush: %v\nmaillog:\n%s", err, pf.Log())
	}
	if got != n {
		t.Errorf("relay had %d of %d messages when the stage returned", got, n)
	}
	if !res.Drained || res.Before != n || res.Delivered != n || len(res.Deferred) != 0 || res.MTA != Postfix {
		t.Errorf("result = %+v", res)
	}
	t.Log(res.Summary())
	if q := pf.Queue(); len(q) != 0 {
		t.Errorf("queue after the flush: %+v", q)
	}
}

// TestPostfixFlushRelayDown: with the relay still down the stage returns
// within its timeout, reporting the messages deferred: connection refused.
func TestPostfixFlushRelayDown(t *testing.T) {
	testpeer.Short(t)
	t.Parallel() // its own Postfix
	const n = 3
	relay := testpeer.ReservePort(t)
	pf := queueDeferred(t, relay, n)
	res, err := Run(context.Background(), Options{MTA: Postfix, Env: pf.Env(), Timeout: 30 * time.Second, Poll: 200 * time.Millisecond, Settle: time.Second}, nil)
	wantDeferred(t, err)
	if !res.Drained || res.Delivered != 0 || len(res.Deferred) != n {
		t.Errorf("result = %+v", res)
	}
	if s := res.Summary(); !strings.Contains(s, "3 deferred") || !strings.Contains(strings.ToLower(s), "connection refused") {
		t.Errorf("summary %q, want 3 deferred: connection refused", s)
	}
	t.Log(res.Summary())
}
