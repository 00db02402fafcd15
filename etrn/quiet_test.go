package etrn

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// seqCounter returns the counts in order, then zeros, and records how
// many times it was asked.
type seqCounter struct {
	mu    sync.Mutex
	seq   []int
	calls int
}

func (s *seqCounter) count([]int, bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if len(s.seq) == 0 {
		return 0, nil
	}
	n := s.seq[0]
	s.seq = s.seq[1:]
	return n, nil
}

// TestWaitQuietAfterSessions: the wait lasts until the sessions are gone
// (every count was consumed) and reports the peak.
func TestWaitQuietAfterSessions(t *testing.T) {
	c := &seqCounter{seq: []int{0, 1, 2, 2, 1, 0, 3, 0}}
	res := WaitQuiet(context.Background(), QuietOptions{Quiet: 20 * time.Millisecond, Max: time.Minute, Poll: time.Millisecond, Counter: c.count}, nil)
	if !res.WentQuiet || res.MaxSessions != 3 {
		t.Errorf("result = %+v, want quiet with a peak of 3", res)
	}
	if len(c.seq) != 0 {
		t.Errorf("wait ended with sessions still to come: %v", c.seq)
	}
}

// TestWaitQuietMax: sessions that never end stop the wait at Max, which
// is reported, not hidden.
func TestWaitQuietMax(t *testing.T) {
	busy := func([]int, bool) (int, error) { return 1, nil }
	res := WaitQuiet(context.Background(), QuietOptions{Quiet: 5 * time.Millisecond, Max: 30 * time.Millisecond, Poll: time.Millisecond, Counter: busy}, nil)
	if res.WentQuiet || res.MaxSessions != 1 || res.Elapsed < 30*time.Millisecond {
		t.Errorf("result = %+v, want not quiet, stopped at Max", res)
	}
	s := Result{Servers: []ServerResult{{}}, Quiet: res}.Summary()
	if !strings.Contains(s, "still busy at quiet_max") {
		t.Errorf("summary %q", s)
	}
}

// TestWaitQuietCountFails: a counter error is reported and quiet is not
// claimed.
func TestWaitQuietCountFails(t *testing.T) {
	bad := func([]int, bool) (int, error) { return 0, errors.New("no sock_diag") }
	var notes []string
	res := WaitQuiet(context.Background(), QuietOptions{Quiet: time.Millisecond, Counter: bad}, func(e event.Event) { notes = append(notes, e.Text) })
	if res.WentQuiet || res.Err == nil || len(notes) != 1 || !strings.Contains(notes[0], "no sock_diag") {
		t.Errorf("result = %+v, notes %q", res, notes)
	}
}

// TestWaitQuietCancel: cancelling ends the wait.
func TestWaitQuietCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	busy := func([]int, bool) (int, error) {
		if calls++; calls == 3 {
			cancel()
		}
		return 1, nil
	}
	res := WaitQuiet(ctx, QuietOptions{Quiet: time.Hour, Max: time.Hour, Poll: time.Millisecond, Counter: busy}, nil)
	if res.WentQuiet {
		t.Errorf("result = %+v", res)
	}
}

func stageServer(addr string, domains ...string) Server {
	return Server{Addr: addr, Domains: domains, TLS: netconn.TLSNone, Helo: "client.test", Timeout: 2 * time.Second}
}

// TestRunStageAll251 skips the quiet wait when nothing is waiting.
func TestRunStageAll251(t *testing.T) {
	a := testpeer.ETRNRelay(t, map[string]string{"a.test": "251 nothing", "b.test": "251 nothing"})
	b := testpeer.ETRNRelay(t, map[string]string{"c.test": "251 nothing"})
	c := &seqCounter{}
	var mu sync.Mutex
	var notes []string
	res, err := RunStage(context.Background(), StageOptions{
		Servers: []Server{stageServer(a, "a.test", "b.test"), stageServer(b, "c.test")},
		Counter: c.count,
	}, func(e event.Event) { mu.Lock(); notes = append(notes, e.Account+" "+e.Text); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	if !res.NothingWaiting || res.Quiet.Waited || c.calls != 0 || !res.WentQuiet() || res.Counts()["inbound_quiet"] != 1 {
		t.Errorf("result = %+v, counter asked %d times; want nothing waiting and no wait", res, c.calls)
	}
	if !strings.Contains(res.Summary(), "251") || len(notes) != 3 {
		t.Errorf("summary %q, notes %q", res.Summary(), notes)
	}
}

// TestRunStageWaitsAndReportsRefusal: one relay starts delivery, another
// refuses; the wait runs for the one that started, and the error is the
// refusal (exit 7).
func TestRunStageWaitsAndReportsRefusal(t *testing.T) {
	a := testpeer.ETRNRelay(t, nil)
	b := testpeer.ETRNRelay(t, map[string]string{"x.test": "459 4.7.1 <x.test>: service unavailable"})
	c := &seqCounter{seq: []int{1, 1, 0}}
	res, err := RunStage(context.Background(), StageOptions{
		Servers: []Server{stageServer(a, "a.test"), stageServer(b, "x.test")},
		Counter: c.count, Quiet: 10 * time.Millisecond, QuietMax: time.Minute, Parallel: 1,
	}, nil)
	if err == nil || !IsRefused(err) || !strings.Contains(err.Error(), "1 of 2 relays failed") {
		t.Errorf("err = %v, want the 459 refusal", err)
	}
	if !res.Quiet.WentQuiet || res.Quiet.MaxSessions != 1 || len(c.seq) != 0 {
		t.Errorf("quiet = %+v (left %v)", res.Quiet, c.seq)
	}
	if s := res.Summary(); !strings.Contains(s, "1 started") || !strings.Contains(s, "1 not accepted") || !strings.Contains(s, "inbound quiet") {
		t.Errorf("summary %q", s)
	}
}

// TestAskCancel: cancelling the context ends a session blocked on a
// silent server at once, not after the timeout.
func TestAskCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			c.Read(make([]byte, 1)) // never greet
		}
	}()
	ctx, cancel := context.WithCancelCause(context.Background())
	srv := stageServer(ln.Addr().String(), "a.test")
	srv.Timeout = time.Hour // only the cancel can end it
	go func() { time.Sleep(20 * time.Millisecond); cancel(errors.New("link went down")) }()
	res := Ask(ctx, srv, nil, nil)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "link went down") {
		t.Errorf("err = %v, want the cancel cause", res.Err)
	}
}
