package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linkctl/linkctl/control"
	"github.com/linkctl/linkctl/dial"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/linkwatch"
	"github.com/linkctl/linkctl/pipeline"
)

type fakeWatcher struct{ edges chan linkwatch.Edge }

func (f *fakeWatcher) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (f *fakeWatcher) Edges() <-chan linkwatch.Edge  { return f.edges }

func up(iface string) linkwatch.Edge {
	return linkwatch.Edge{Up: true, Iface: iface, Reason: iface + " is up with 192.0.2.7/32", Cause: "netlink", Time: time.Now()}
}
func down() linkwatch.Edge {
	return linkwatch.Edge{Up: false, Reason: "ppp0 is down", Cause: "netlink", Time: time.Now()}
}

// gate is a stage that reports its start and runs until released or
// cancelled.
type gate struct {
	name    string
	started chan pipeline.Request
	release chan struct{}
	cause   chan error
}

func newGate(name string) *gate {
	return &gate{name: name, started: make(chan pipeline.Request, 16), release: make(chan struct{}, 16), cause: make(chan error, 16)}
}

func (g *gate) stage() pipeline.Stage {
	return pipeline.Func{StageName: g.name, Fn: func(ctx context.Context, sink event.Sink) (pipeline.Report, error) {
		g.started <- pipeline.RequestFrom(ctx)
		select {
		case <-g.release:
			return pipeline.Report{Summary: "done", Counts: map[string]int64{"messages": 2, "bytes": 300}}, nil
		case <-ctx.Done():
			g.cause <- context.Cause(ctx)
			return pipeline.Report{}, errkind.WrapTemporary(errkind.Network, g.name, context.Cause(ctx))
		}
	}}
}

type harness struct {
	t       *testing.T
	d       *Daemon
	w       *fakeWatcher
	sigs    chan os.Signal
	notes   chan string
	dir     string
	done    chan error
	reports chan pipeline.RunReport
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second): // a hang guard, not a speed assertion
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

func start(t *testing.T, steps []pipeline.Step, mod func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, w: &fakeWatcher{edges: make(chan linkwatch.Edge)}, sigs: make(chan os.Signal, 4),
		notes: make(chan string, 256), dir: t.TempDir(), done: make(chan error, 1), reports: make(chan pipeline.RunReport, 16)}
	opts := Options{
		StateDir: h.dir, ControlSocket: filepath.Join(h.dir, "control.sock"), MetricsFile: filepath.Join(h.dir, "linkctl.prom"),
		LockPath: filepath.Join(h.dir, "run.lock"), Steps: steps, Grace: time.Hour, Watcher: h.w, Signals: h.sigs,
		Notify: func(s string) {
			select {
			case h.notes <- s:
			default:
			}
		},
		Sink: func(e event.Event) {
			if e.Type == event.RunEnd {
				// the report follows through Status
			}
		},
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&opts)
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.d = d
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	go func() {
		err := d.Run(ctx)
		h.done <- err
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Error("daemon did not exit")
		}
	})
	if n := wait(t, h.notes, "READY"); !strings.HasPrefix(n, "READY=1") {
		t.Fatalf("first notification %q, want READY=1", n)
	}
	return h
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (h *harness) edge(e linkwatch.Edge) { h.w.edges <- e }

func (h *harness) ctl(req control.Request, onEvent func(event.Event)) control.Response {
	h.t.Helper()
	r, err := control.Do(context.Background(), filepath.Join(h.dir, "control.sock"), req, onEvent)
	if err != nil {
		h.t.Fatalf("control %s: %v", req.Op, err)
	}
	return r
}

// lastRun waits until the runner's last run has the given id.
func (h *harness) lastRun(id uint64) pipeline.RunReport {
	h.t.Helper()
	for range 2000 {
		if lr := h.d.runner.Status().LastRun; lr != nil && lr.ID >= id {
			return *lr
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatalf("run %d never ended", id)
	return pipeline.RunReport{}
}

func TestUpEdgeRunsAndDownEdgeCancelsWithCause(t *testing.T) {
	g := newGate("fetch")
	h := start(t, []pipeline.Step{{Stage: g.stage()}}, nil)
	h.edge(up("ppp0"))
	req := wait(t, g.started, "the stage to start")
	if req.Iface != "ppp0" || !strings.HasPrefix(req.Cause, "up edge") {
		t.Errorf("request %+v", req)
	}
	h.edge(down())
	if cause := wait(t, g.cause, "the stage to be cancelled"); cause == nil || cause.Error() != "link down" {
		t.Errorf("cause = %v, want link down", cause)
	}
	rep := h.lastRun(1)
	if rep.Result != event.Cancelled || rep.Stages[0].Result != event.Cancelled || rep.Stages[0].Err != "link down" {
		t.Errorf("report %+v", rep)
	}
}

// TestExecStageSeesLinkDown: a real command learns of the cancellation
// (SIGTERM) and its run reports the cause.
func TestExecStageSeesLinkDown(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "term")
	lines := make(chan string, 16)
	script := `trap 'echo "$LINKCTL_IFACE" > "$0"; exit 1' TERM; echo started; while :; do sleep 0.02; done`
	h := start(t, []pipeline.Step{{Stage: pipeline.Exec{StageName: "after", Argv: []string{"sh", "-c", script, marker}, Grace: 5 * time.Second}}},
		func(o *Options) {
			o.Sink = func(e event.Event) {
				if e.Type == event.Note {
					lines <- e.Text
				}
			}
		})
	h.edge(up("wwan0"))
	if l := wait(t, lines, "the command to start"); l != "started" {
		t.Fatalf("first line %q", l)
	}
	h.edge(down())
	rep := h.lastRun(1)
	b, err := os.ReadFile(marker)
	if err != nil || strings.TrimSpace(string(b)) != "wwan0" {
		t.Errorf("the command did not see SIGTERM (marker %q, %v)", b, err)
	}
	if rep.Stages[0].Result != event.Cancelled || rep.Stages[0].Err != "link down" {
		t.Errorf("stage report %+v", rep.Stages[0])
	}
}

func TestTriggersCoalesceIntoOneFollowUp(t *testing.T) {
	g := newGate("fetch")
	h := start(t, []pipeline.Step{{Stage: g.stage()}}, nil)
	h.edge(up("ppp0"))
	wait(t, g.started, "run 1")
	// Requests over the socket are queued before their reply: no race
	// with the release below (signals reach the loop in their own time).
	for _, iface := range []string{"ppp0", "ppp1", "wwan0"} {
		r := h.ctl(control.Request{Op: control.OpUp, Iface: iface}, nil) // --no-wait
		if r.Exit != 0 || r.Text != "run requested" {
			t.Errorf("up --no-wait: %+v", r)
		}
	}
	if st := h.ctl(control.Request{Op: control.OpStatus}, nil); !strings.Contains(string(st.Status), `"pending":true`) {
		t.Errorf("status while a follow-up waits: %s", st.Status)
	}
	g.release <- struct{}{}
	req := wait(t, g.started, "the follow-up run")
	if req.Cause != "linkctl up (+2 coalesced)" || req.Iface != "ppp0" {
		t.Errorf("follow-up cause %q", req.Cause)
	}
	g.release <- struct{}{}
	if rep := h.lastRun(2); rep.Result != event.OK {
		t.Errorf("run 2: %+v", rep)
	}
	select {
	case r := <-g.started:
		t.Fatalf("a third run started: %+v", r)
	default:
	}
}

func TestUpWaitStreamsTheRunAndExitsWithItsStatus(t *testing.T) {
	g := newGate("fetch")
	failing := pipeline.Func{StageName: "etrn", Fn: func(ctx context.Context, sink event.Sink) (pipeline.Report, error) {
		return pipeline.Report{}, errkind.Permanent(errkind.Refused, "etrn mail.example.net", "458 unable to queue")
	}}
	h := start(t, []pipeline.Step{{Stage: g.stage(), OnError: pipeline.Continue}, {Stage: failing}}, nil)
	go func() { wait(t, g.started, "run"); g.release <- struct{}{} }()
	var types []string
	r := h.ctl(control.Request{Op: control.OpUp, Iface: "ppp0", Wait: true}, func(e event.Event) {
		types = append(types, string(e.Type)+":"+e.Stage)
	})
	want := "run.start:|stage.start:fetch|stage.end:fetch|stage.start:etrn|stage.end:etrn|run.end:"
	if strings.Join(types, "|") != want {
		t.Errorf("events %q, want %q", strings.Join(types, "|"), want)
	}
	if r.Exit != int(errkind.Partial) || !strings.Contains(r.Error, "458") {
		t.Errorf("reply %+v, want exit %d (partial) with the refusal", r, errkind.Partial)
	}
	// The metrics file was rewritten after the run.
	b, err := os.ReadFile(filepath.Join(h.dir, "linkctl.prom"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`linkctl_runs_total{result="permanent"} 1`, `linkctl_stage_runs_total{stage="etrn",result="permanent"} 1`,
		`linkctl_fetched_messages_total 2`, `linkctl_fetched_bytes_total 300`, `linkctl_link_up 0`} {
		if !strings.Contains(string(b), line+"\n") {
			t.Errorf("metrics file lacks %q:\n%s", line, b)
		}
	}
}

func TestDownRequestCancelsTheRun(t *testing.T) {
	g := newGate("fetch")
	h := start(t, []pipeline.Step{{Stage: g.stage()}}, nil)
	h.edge(up("ppp0"))
	wait(t, g.started, "run")
	if r := h.ctl(control.Request{Op: control.OpDown, Iface: "ppp0"}, nil); r.Text != "the run in flight was cancelled" {
		t.Errorf("down: %+v", r)
	}
	if c := wait(t, g.cause, "cancellation"); c.Error() != "link down" {
		t.Errorf("cause %v", c)
	}
}

func TestReloadKeepsOldConfigWhenInvalid(t *testing.T) {
	g1, g2 := newGate("old"), newGate("new")
	var mu sync.Mutex
	fail := true
	h := start(t, []pipeline.Step{{Stage: g1.stage()}}, func(o *Options) {
		o.Reload = func() (Reloaded, error) {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				return Reloaded{}, errors.New("linkctl.yaml:3: pipeline: unknown stage fecth")
			}
			return Reloaded{Steps: []pipeline.Step{{Stage: g2.stage()}}}, nil
		}
	})
	h.sigs <- syscall.SIGHUP
	h.sigs <- syscall.SIGUSR1
	wait(t, g1.started, "a run with the old steps")
	g1.release <- struct{}{}
	h.lastRun(1)
	mu.Lock()
	fail = false
	mu.Unlock()
	h.sigs <- syscall.SIGHUP
	h.sigs <- syscall.SIGUSR1
	wait(t, g2.started, "a run with the new steps")
	g2.release <- struct{}{}
}

func TestTermLetsTheRunFinishAndStartsNothingNew(t *testing.T) {
	g := newGate("fetch")
	h := start(t, []pipeline.Step{{Stage: g.stage()}}, nil)
	h.edge(up("ppp0"))
	wait(t, g.started, "run")
	h.sigs <- syscall.SIGUSR1 // a follow-up is pending...
	h.sigs <- syscall.SIGTERM // ...and dropped by the shutdown
	for n := wait(t, h.notes, "STOPPING"); !strings.HasPrefix(n, "STOPPING=1"); n = wait(t, h.notes, "STOPPING") {
	}
	if r, err := control.Do(context.Background(), filepath.Join(h.dir, "control.sock"), control.Request{Op: control.OpUp}, nil); err == nil && r.Exit == 0 {
		t.Errorf("up accepted while stopping: %+v", r)
	}
	g.release <- struct{}{}
	if err := wait(t, h.done, "the daemon to exit"); err != nil {
		t.Fatal(err)
	}
	if rep := h.d.runner.Status().LastRun; rep == nil || rep.Result != event.OK {
		t.Errorf("the run in flight did not finish: %+v", rep)
	}
	select {
	case r := <-g.started:
		t.Errorf("a new run started while stopping: %+v", r)
	default:
	}
	if _, err := os.Stat(filepath.Join(h.dir, "control.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket left behind: %v", err)
	}
}

func TestTermGraceThenCancel(t *testing.T) {
	g := newGate("fetch")
	h := start(t, []pipeline.Step{{Stage: g.stage()}}, func(o *Options) { o.Grace = time.Millisecond })
	h.edge(up("ppp0"))
	wait(t, g.started, "run")
	h.sigs <- syscall.SIGTERM
	if c := wait(t, g.cause, "cancellation after the grace period"); c.Error() != "shutdown" {
		t.Errorf("cause %v", c)
	}
	wait(t, h.done, "the daemon to exit")
}

func TestSecondSignalExitsAtOnce(t *testing.T) {
	g := newGate("fetch")
	h := start(t, []pipeline.Step{{Stage: g.stage()}}, nil) // grace: an hour
	h.edge(up("ppp0"))
	wait(t, g.started, "run")
	h.sigs <- syscall.SIGTERM
	h.sigs <- syscall.SIGINT
	wait(t, h.done, "the daemon to exit on the second signal")
	if c := wait(t, g.cause, "cancellation"); c.Error() != "shutdown" {
		t.Errorf("cause %v", c)
	}
}

func TestQuitWhenIdle(t *testing.T) {
	h := start(t, nil, nil)
	if r := h.ctl(control.Request{Op: control.OpQuit}, nil); r.Exit != 0 {
		t.Errorf("quit: %+v", r)
	}
	wait(t, h.done, "the daemon to exit")
}

func TestOneDaemonPerStateDir(t *testing.T) {
	h := start(t, nil, nil)
	_, err := New(Options{StateDir: h.dir, Watcher: &fakeWatcher{}})
	if errkind.KindOf(err) != errkind.Locked || !strings.Contains(err.Error(), "another linkctl daemon") {
		t.Fatalf("second daemon: err = %v, want Locked", err)
	}
}

func TestNotifyStatusNamesTheStage(t *testing.T) {
	g := newGate("fetch")
	h := start(t, []pipeline.Step{{Stage: g.stage()}}, nil)
	h.edge(up("ppp0"))
	wait(t, g.started, "run")
	for n := wait(t, h.notes, "STATUS"); n != "STATUS=run 1: fetch"; n = wait(t, h.notes, "STATUS") {
	}
	g.release <- struct{}{}
	for n := wait(t, h.notes, "STATUS"); n != "STATUS=idle: ppp0 is up with 192.0.2.7/32"; n = wait(t, h.notes, "STATUS") {
	}
}

func TestIntervalWhileUp(t *testing.T) {
	g := newGate("fetch")
	h := start(t, []pipeline.Step{{Stage: g.stage()}}, func(o *Options) { o.Interval = 10 * time.Millisecond })
	h.edge(up("ppp0"))
	wait(t, g.started, "the up-edge run")
	g.release <- struct{}{}
	req := wait(t, g.started, "an interval run")
	if !strings.HasPrefix(req.Cause, "interval") {
		t.Errorf("cause %q", req.Cause)
	}
	g.release <- struct{}{}
	h.edge(down())
	// After the down edge no interval run comes: the next run is from
	// the next trigger.
	for len(g.started) > 0 {
		<-g.started
		g.release <- struct{}{}
	}
	h.sigs <- syscall.SIGUSR1
	for {
		r := wait(t, g.started, "the SIGUSR1 run")
		g.release <- struct{}{}
		if r.Cause == "SIGUSR1" {
			break
		}
		if !strings.HasPrefix(r.Cause, "interval") {
			t.Fatalf("unexpected run %q", r.Cause)
		}
	}
}

func TestSdNotifyDatagrams(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := SdNotify(path)
	n("READY=1\nSTATUS=waiting for the link")
	buf := make([]byte, 512)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, err := c.Read(buf)
	if err != nil || string(buf[:k]) != "READY=1\nSTATUS=waiting for the link" {
		t.Fatalf("got %q, %v", buf[:k], err)
	}
	SdNotify("")("READY=1") // no socket: nothing happens
}

func TestDropHooks(t *testing.T) {
	g := newGate("fetch")
	h := start(t, []pipeline.Step{{Stage: g.stage()}}, nil)
	if b, s := h.d.Busy("drop"), h.d.Superseded(); b != "" || s != "" {
		t.Errorf("idle daemon: busy %q superseded %q", b, s)
	}
	h.sigs <- syscall.SIGUSR1
	wait(t, g.started, "run")
	if b := h.d.Busy("drop"); b != "stage fetch still running" {
		t.Errorf("busy = %q", b)
	}
	if b := h.d.Busy("fetch"); b != "" {
		t.Errorf("a stage is busy because of itself: %q", b)
	}
	h.sigs <- syscall.SIGUSR1
	for i := 0; !h.d.Snapshot().Pending; i++ {
		if i > 2000 {
			t.Fatal("the second trigger never queued")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s := h.d.Superseded(); s != "a follow-up run is already requested (SIGUSR1)" {
		t.Errorf("superseded = %q", s)
	}
	g.release <- struct{}{}
	wait(t, g.started, "follow-up")
	g.release <- struct{}{}
}

// TestReloadArmsANewInterval: an interval added by SIGHUP while the link
// is up runs without waiting for the next up edge (issue 16).
func TestReloadArmsANewInterval(t *testing.T) {
	g := newGate("fetch")
	steps := []pipeline.Step{{Stage: g.stage()}}
	h := start(t, steps, func(o *Options) {
		o.Reload = func() (Reloaded, error) { return Reloaded{Steps: steps, Interval: 200 * time.Millisecond}, nil }
	})
	h.edge(up("ppp0"))
	wait(t, g.started, "the up-edge run")
	g.release <- struct{}{}
	h.lastRun(1)
	if st := h.d.Snapshot(); !st.NextInterval.IsZero() {
		t.Fatalf("an interval run is due before the reload: %v", st.NextInterval)
	}
	h.sigs <- syscall.SIGHUP
	select {
	case req := <-g.started:
		if req.Cause != "interval" || req.Iface != "ppp0" {
			t.Errorf("run after the reload: %+v", req)
		}
		g.release <- struct{}{}
	case <-time.After(5 * time.Second): // 25 intervals
		t.Fatal("no interval run within 5s of a reload that set interval: 200ms")
	}
	if st := h.d.Snapshot(); st.NextInterval.IsZero() {
		t.Error("status shows no next interval run after the reload")
	}
}

// TestReloadWhileDownArmsNothing: the new interval waits for the link.
func TestReloadWhileDownArmsNothing(t *testing.T) {
	g := newGate("fetch")
	steps := []pipeline.Step{{Stage: g.stage()}}
	h := start(t, steps, func(o *Options) {
		o.Reload = func() (Reloaded, error) { return Reloaded{Steps: steps, Interval: 50 * time.Millisecond}, nil }
	})
	h.sigs <- syscall.SIGHUP
	select {
	case req := <-g.started:
		t.Fatalf("a run started while the link is down: %+v", req)
	case <-time.After(300 * time.Millisecond):
	}
	h.edge(up("ppp0"))
	wait(t, g.started, "the up-edge run")
	g.release <- struct{}{}
	if req := wait(t, g.started, "an interval run"); req.Cause != "interval" {
		t.Errorf("cause %q", req.Cause)
	}
	g.release <- struct{}{}
	h.edge(down())
}

// TestReloadAddsADialSection: a dial section added to the config reaches
// the running daemon on SIGHUP (status shows it, `linkctl dial` works
// and the new schedule dials), and one removed stops dialing.
func TestReloadAddsADialSection(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "dialed")
	var dialOpts *dial.Options
	var mu sync.Mutex
	h := start(t, nil, func(o *Options) {
		o.Reload = func() (Reloaded, error) {
			mu.Lock()
			defer mu.Unlock()
			return Reloaded{Dial: dialOpts}, nil
		}
	})
	if st := h.d.Snapshot(); st.Dial != nil {
		t.Fatalf("status shows a dial policy without a dial section: %+v", st.Dial)
	}
	if rep := h.d.handle(context.Background(), control.Request{Op: control.OpDial}, func(event.Event) {}); rep.Exit != int(errkind.Usage) {
		t.Fatalf("linkctl dial without a dial section: %+v", rep)
	}
	mu.Lock()
	dialOpts = &dial.Options{Command: []string{"touch", marker}, Every: 100 * time.Millisecond, AppearTimeout: 20 * time.Millisecond}
	mu.Unlock()
	h.sigs <- syscall.SIGHUP
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := h.d.Snapshot()
		if st.Dial != nil && st.Dial.LastResult != "" { // a dial has ended
			if !slices.Equal(st.Dial.Command, []string{"touch", marker}) || st.Dial.LastCause != "every 100ms" {
				t.Errorf("dial status after the reload: %+v", st.Dial)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dial within 5s of a reload that added dial every 100ms: %+v", st.Dial)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the dial command did not run: %v", err)
	}
	mu.Lock()
	dialOpts = nil
	mu.Unlock()
	h.sigs <- syscall.SIGHUP
	deadline = time.Now().Add(5 * time.Second)
	for h.d.Snapshot().Dial != nil {
		if time.Now().After(deadline) {
			t.Fatal("status still shows the dial policy 5s after a reload removed it")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A dial in flight at the reload finishes with its command.
	for h.d.dialer.Status().Dialing {
		if time.Now().After(deadline) {
			t.Fatal("a dial still in progress 5s after the reload")
		}
		time.Sleep(10 * time.Millisecond)
	}
	os.Remove(marker)
	time.Sleep(500 * time.Millisecond) // five periods of the removed schedule
	if _, err := os.Stat(marker); err == nil {
		t.Error("the daemon still dials after a reload removed the dial section")
	}
}
