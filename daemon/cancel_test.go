package daemon

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linkctl/linkctl/control"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/pipeline"
)

// stuckStage ignores its context (the IMAP deadlock of issue 15): it
// never returns. (Its goroutine outlives the test, as it would outlive
// the run: were it released, the runner's log line about it would reach
// a test that has ended.)
func stuckStage(name string) (pipeline.Stage, chan struct{}) {
	started := make(chan struct{}, 8)
	return pipeline.Func{StageName: name, Fn: func(ctx context.Context, sink event.Sink) (pipeline.Report, error) {
		started <- struct{}{}
		select {}
	}}, started
}

// status asks the daemon over the control socket, as `linkctl status`
// does, and fails if the answer takes more than a second.
func (h *harness) statusNow() Status {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	t0 := time.Now()
	r, err := control.Do(ctx, filepath.Join(h.dir, "control.sock"), control.Request{Op: control.OpStatus}, nil)
	if err != nil {
		h.t.Fatalf("status did not answer within 1s (after %s): %v", time.Since(t0).Round(time.Millisecond), err)
	}
	var st Status
	if err := json.Unmarshal(r.Status, &st); err != nil {
		h.t.Fatalf("status %s: %v", r.Status, err)
	}
	return st
}

// waitExit waits for the daemon to exit and returns how long it took.
func (h *harness) waitExit(from time.Time, limit time.Duration) time.Duration {
	h.t.Helper()
	select {
	case <-h.done:
		return time.Since(from)
	case <-time.After(limit):
		h.t.Fatalf("the daemon did not exit within %s: a stage that ignores its context holds it", limit)
	}
	return 0
}

// TestTermEndsARunWhoseStageIgnoresCancel: at the default Grace and
// AbandonAfter, SIGTERM ends the daemon within 10 s although its stage
// never returns, and `status` answers all along, naming the stage it
// waits for.
func TestTermEndsARunWhoseStageIgnoresCancel(t *testing.T) {
	st, started := stuckStage("fetch")
	h := start(t, []pipeline.Step{{Stage: st}}, func(o *Options) { o.Grace = 0 }) // the defaults
	h.edge(up("ppp0"))
	wait(t, started, "the stage to start")
	t0 := time.Now()
	h.sigs <- syscall.SIGTERM
	sawCancelling := false
	for {
		select {
		case <-h.done:
			took := time.Since(t0)
			t.Logf("SIGTERM to exit: %s", took.Round(time.Millisecond))
			if took > 10*time.Second {
				t.Errorf("SIGTERM to exit took %s, want under 10 s", took)
			}
			if !sawCancelling {
				t.Error("status never said the run was being cancelled and what it waited for")
			}
			rep := h.d.runner.Status().LastRun
			if rep == nil || len(rep.Stages) == 0 || rep.Stages[0].Err != "stage fetch did not return within 6s after cancel (cause: shutdown)" {
				t.Errorf("last run %+v does not name the stage that did not return", rep)
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
		if time.Since(t0) > 15*time.Second {
			t.Fatal("the daemon did not exit within 15 s of SIGTERM")
		}
		s := h.statusNow()
		if c := s.Runner.Cancelling; c != nil && c.Cause == "shutdown" && strings.Join(s.Runner.Current, ",") == "fetch" && s.Stopping {
			sawCancelling = true
		}
	}
}

// TestQuitEndsARunWhoseStageIgnoresCancel: `linkctl quit` answers and
// ends the daemon although its stage never returns.
func TestQuitEndsARunWhoseStageIgnoresCancel(t *testing.T) {
	st, started := stuckStage("fetch")
	h := start(t, []pipeline.Step{{Stage: st}}, func(o *Options) {
		o.Grace, o.AbandonAfter = 100*time.Millisecond, 500*time.Millisecond
	})
	h.edge(up("ppp0"))
	wait(t, started, "the stage to start")
	t0 := time.Now()
	if r := h.ctl(control.Request{Op: control.OpQuit}, nil); r.Exit != 0 {
		t.Fatalf("quit: %+v", r)
	}
	if took := h.waitExit(t0, 10*time.Second); took > 3*time.Second {
		t.Errorf("quit to exit took %s with Grace 100ms and AbandonAfter 500ms", took)
	}
}

// TestDownEdgeAbandonsAStuckStageAndStaysReady: a down edge ends a run
// whose stage ignores the cancel; status answers during the cancellation
// and names the stuck stage after it; the next up edge starts a run at
// once (the stuck stage is not started beside its stuck instance, the
// others run), and quit still ends the daemon at once.
func TestDownEdgeAbandonsAStuckStageAndStaysReady(t *testing.T) {
	st, started := stuckStage("fetch")
	g := newGate("drop")
	h := start(t, []pipeline.Step{{Stage: st, OnError: pipeline.Continue}, {Stage: g.stage(), Always: true}},
		func(o *Options) { o.AbandonAfter = 2 * time.Second })
	h.edge(up("ppp0"))
	wait(t, started, "the stage to start")
	h.edge(down())
	// The edge is handled in the daemon's loop: ask until it shows.
	s := h.statusNow()
	for i := 0; s.Runner.Cancelling == nil && i < 20; i++ {
		time.Sleep(20 * time.Millisecond)
		s = h.statusNow()
	}
	if c := s.Runner.Cancelling; c == nil || c.Cause != "link down" || strings.Join(s.Runner.Current, ",") != "fetch" {
		t.Errorf("status during the cancellation: cancelling %+v, current %v", c, s.Runner.Current)
	}
	rep := h.lastRun(1)
	want := "stage fetch did not return within 2s after cancel (cause: link down)"
	if rep.Result != event.Cancelled || rep.Stages[0].Err != want {
		t.Fatalf("run 1: %+v, want the fetch stage named: %q", rep, want)
	}
	s = h.statusNow()
	if s.Runner.Running || len(s.Runner.Stuck) != 1 || s.Runner.Stuck[0].Stage != "fetch" || s.Runner.Last["fetch"].Err != want {
		t.Errorf("status after the abandonment: running %v, stuck %+v, last fetch %+v", s.Runner.Running, s.Runner.Stuck, s.Runner.Last["fetch"])
	}

	h.edge(up("ppp0"))
	wait(t, g.started, "the next run's drop stage")
	g.release <- struct{}{}
	rep = h.lastRun(2)
	if !strings.Contains(rep.Stages[0].Err, "stage fetch not started") || rep.Stages[1].Result != event.OK {
		t.Errorf("run 2: %+v", rep.Stages)
	}
	select {
	case <-started:
		t.Error("the stuck stage was started a second time")
	default:
	}

	t0 := time.Now()
	h.ctl(control.Request{Op: control.OpQuit}, nil)
	if took := h.waitExit(t0, 10*time.Second); took > 2*time.Second {
		t.Errorf("quit with only a stuck goroutine left took %s", took)
	}
}

// TestQuitDuringALinkDownCancel: `linkctl quit` while a down edge's
// cancellation waits for a stuck stage answers at once, and the daemon is
// gone when the stage is abandoned.
func TestQuitDuringALinkDownCancel(t *testing.T) {
	st, started := stuckStage("fetch")
	h := start(t, []pipeline.Step{{Stage: st}}, func(o *Options) { o.AbandonAfter = 2 * time.Second })
	h.edge(up("ppp0"))
	wait(t, started, "the stage to start")
	h.edge(down())
	for i := 0; h.statusNow().Runner.Cancelling == nil; i++ {
		if i > 50 {
			t.Fatal("the down edge did not cancel the run")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if r, err := control.Do(ctx, filepath.Join(h.dir, "control.sock"), control.Request{Op: control.OpQuit}, nil); err != nil || r.Exit != 0 {
		t.Fatalf("quit during the cancellation: %+v, %v", r, err)
	}
	if took := h.waitExit(t0, 10*time.Second); took > 3*time.Second {
		t.Errorf("quit during a cancel with AbandonAfter 2s took %s", took)
	}
}
