package etrn

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
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

// TestCountInboundLive asks the kernel for real loopback sessions, over
// IPv4 and (where the host has it) IPv6.
func TestCountInboundLive(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "tcp6" {
				addr = "[::1]:0"
			}
			ln, err := net.Listen(network, addr)
			if err != nil {
				t.Skipf("no %s loopback here: %v", network, err)
			}
			defer ln.Close()
			port := ln.Addr().(*net.TCPAddr).Port
			c, err := net.Dial(network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			n, err := CountInbound([]int{port}, true)
			if err != nil {
				t.Skipf("sock_diag not available here: %v", err)
			}
			if n != 1 {
				t.Errorf("with loopback: %d sessions, want 1", n)
			}
			if n, _ := CountInbound([]int{port}, false); n != 0 {
				t.Errorf("without loopback: %d sessions, want 0", n)
			}
		})
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

// timeline is a SessionCounter whose sessions are open during the given
// intervals after start, as a relay's deliveries would be.
func timeline(start time.Time, open ...[2]time.Duration) SessionCounter {
	return func([]int, bool) (int, error) {
		t := time.Since(start)
		n := 0
		for _, iv := range open {
			if t >= iv[0] && t < iv[1] {
				n++
			}
		}
		return n, nil
	}
}

const ms = time.Millisecond

// TestWaitQuietSecondBatch: the relay opens its first session 300 ms after
// the ETRN reply, closes it, and reconnects for a second batch 500 ms
// later (Postfix's ETRN delivery does that). A window learned from the
// first gap (2 x 300 ms + round trips) keeps waiting through the pause; a
// fixed short window would end the wait between the batches and the drop
// would cut the second one.
func TestWaitQuietSecondBatch(t *testing.T) {
	start := time.Now()
	c := timeline(start, [2]time.Duration{300 * ms, 600 * ms}, [2]time.Duration{1100 * ms, 1400 * ms})
	res := WaitQuiet(context.Background(), QuietOptions{Quiet: 10 * time.Second, Floor: 100 * ms, Since: start,
		RTT: 20 * ms, Poll: 5 * ms, Counter: c}, nil)
	if !res.WentQuiet || time.Since(start) < 1400*ms {
		t.Fatalf("wait ended after %v (%+v): before the second batch (1.1 s to 1.4 s) was over", time.Since(start), res)
	}
	if res.Gap < 250*ms || res.Gap > 450*ms || res.Reopen < 400*ms || res.Reopen > 650*ms {
		t.Errorf("gap %v, pause %v; want about 300 ms and 500 ms", res.Gap, res.Reopen)
	}
	if res.Learned.Gap != res.Gap || res.Learned.Reopen != res.Reopen || res.Learned.RTT != 20*ms {
		t.Errorf("learned %+v, want this run's gap, pause and RTT", res.Learned)
	}
}

// TestWaitQuietRemembersPause: a pause between batches seen on an earlier
// run (Learned.Reopen, from the state directory) is waited for even when
// this run's relay answered fast.
func TestWaitQuietRemembersPause(t *testing.T) {
	start := time.Now()
	c := timeline(start, [2]time.Duration{20 * ms, 200 * ms}, [2]time.Duration{800 * ms, 900 * ms})
	res := WaitQuiet(context.Background(), QuietOptions{Quiet: 10 * time.Second, Floor: 100 * ms, Since: start,
		Learned: Learned{Gap: 20 * ms, Reopen: 600 * ms}, Poll: 5 * ms, Counter: c}, nil)
	if !res.WentQuiet || time.Since(start) < 900*ms {
		t.Fatalf("wait ended after %v: before the batch a pause learned earlier announced (0.8 s to 0.9 s)", time.Since(start))
	}
}

// TestWaitQuietSessionOpen: a session that stays open longer than any
// window (a big message on a slow line) holds the wait until it closes.
func TestWaitQuietSessionOpen(t *testing.T) {
	start := time.Now()
	c := timeline(start, [2]time.Duration{10 * ms, 700 * ms})
	res := WaitQuiet(context.Background(), QuietOptions{Quiet: 100 * ms, Floor: 50 * ms, Since: start, Poll: 5 * ms, Counter: c}, nil)
	if !res.WentQuiet || time.Since(start) < 700*ms {
		t.Fatalf("wait ended after %v with a session open until 0.7 s", time.Since(start))
	}
}

// TestWaitQuietShortAtDefaults: at default settings, a relay that
// delivered within 200 ms of the ETRN is taken as done about a second
// after its last session closed, not after a fixed 20 s.
func TestWaitQuietShortAtDefaults(t *testing.T) {
	start := time.Now()
	c := timeline(start, [2]time.Duration{50 * ms, 300 * ms})
	res := WaitQuiet(context.Background(), QuietOptions{Since: start, RTT: 150 * ms, Counter: c}, nil)
	if !res.WentQuiet || res.Elapsed > 2*time.Second {
		t.Fatalf("result %+v: want quiet within 2 s at the defaults", res)
	}
	if res.Window < DefaultQuietFloor {
		t.Errorf("window %v below the floor %v", res.Window, DefaultQuietFloor)
	}
}

// TestWaitQuietNoSessionLearned: when the relay sends nothing, the wait
// for a first session is the cap with nothing learned, and a multiple of
// the learned gap once the link is known.
func TestWaitQuietNoSessionLearned(t *testing.T) {
	none := func([]int, bool) (int, error) { return 0, nil }
	res := WaitQuiet(context.Background(), QuietOptions{Quiet: 300 * ms, Floor: 20 * ms, Poll: 5 * ms, Counter: none}, nil)
	if !res.WentQuiet || res.Elapsed < 300*ms {
		t.Errorf("nothing learned: %+v, want the full 300 ms cap", res)
	}
	res = WaitQuiet(context.Background(), QuietOptions{Quiet: 5 * time.Second, Floor: 20 * ms, Poll: 5 * ms,
		Learned: Learned{Gap: 30 * ms}, Counter: none}, nil)
	if !res.WentQuiet || res.Elapsed < 140*ms || res.Elapsed > time.Second {
		t.Errorf("gap 30 ms learned: %+v, want about 4 x 30 ms + the floor", res)
	}
}

func TestLearnedStateDir(t *testing.T) {
	dir := t.TempDir()
	if l, err := LoadLearned(dir); err != nil || l != (Learned{}) {
		t.Fatalf("empty dir: %+v, %v", l, err)
	}
	want := Learned{Gap: 300 * ms, Reopen: 2 * time.Second, RTT: 150 * ms}
	if err := SaveLearned(dir, want); err != nil {
		t.Fatal(err)
	}
	if l, err := LoadLearned(dir); err != nil || l != want {
		t.Fatalf("round trip: %+v, %v; want %+v", l, err, want)
	}
	// A later run that saw a shorter gap and no pause: old figures fade.
	m := want.Merge(Learned{Gap: 100 * ms})
	if m.Gap != 225*ms || m.Reopen != 1500*ms || m.RTT != 150*ms {
		t.Errorf("merge = %+v", m)
	}
	if err := os.WriteFile(filepath.Join(dir, LearnedFile), []byte("{garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err := LoadLearned(dir); err == nil || l != (Learned{}) {
		t.Errorf("corrupt file: %+v, %v; want an error and nothing learned", l, err)
	}
}

func TestRTTProbe(t *testing.T) {
	var p rttProbe
	t0 := time.Unix(1000, 0)
	p.line("S: 220 relay.test ESMTP", t0)
	p.line("C: EHLO client.test", t0.Add(10*ms))
	p.line("S: 250-relay.test", t0.Add(170*ms))
	p.line("S: 250 ETRN", t0.Add(171*ms))
	p.line("C: ETRN home.test", t0.Add(180*ms))
	p.line("S: 250 Queuing started", t0.Add(330*ms))
	p.line("C: QUIT", t0.Add(340*ms))
	p.line("S: 221 Bye", t0.Add(600*ms))
	if p.rtt != 150*ms || !p.reply.Equal(t0.Add(330*ms)) {
		t.Errorf("rtt %v, ETRN reply at %v; want 150ms and +330ms", p.rtt, p.reply.Sub(t0))
	}
}

// TestRunStageRemembers: the stage keeps what the wait learned in the
// state directory and starts the next run from it.
func TestRunStageRemembers(t *testing.T) {
	dir := t.TempDir()
	a := testpeer.ETRNRelay(t, nil)
	start := time.Now()
	res, err := RunStage(context.Background(), StageOptions{
		Servers: []Server{stageServer(a, "a.test")}, StateDir: dir, QuietFloor: 50 * ms,
		Counter: timeline(start, [2]time.Duration{200 * ms, 400 * ms}),
	}, nil)
	if err != nil || !res.Quiet.WentQuiet {
		t.Fatalf("res %+v, err %v", res.Quiet, err)
	}
	l, err := LoadLearned(dir)
	if err != nil || l.Gap < 100*ms || l.Gap > 400*ms || l.RTT <= 0 {
		t.Fatalf("learned %+v, %v; want the gap to the first session (about 200 ms) and an RTT", l, err)
	}
}
