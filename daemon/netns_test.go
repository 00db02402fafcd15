package daemon

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/linkwatch"
	"github.com/linkctl/linkctl/linkwatch/nstest"
	"github.com/linkctl/linkctl/pipeline"
)

// startNS starts a daemon whose watcher watches up0 in a namespace of the
// test's own.
func startNS(t *testing.T, ns *nstest.NS, settle time.Duration, steps []pipeline.Step, mod func(*Options)) *harness {
	t.Helper()
	w, err := linkwatch.NewWatcher(linkwatch.Options{Watch: []string{"up0"}, Settle: settle, Namespace: &ns.Handle,
		ClockJumps: make(chan struct{})})
	if err != nil {
		t.Fatal(err)
	}
	return start(t, steps, func(o *Options) {
		o.Watcher = w
		if mod != nil {
			mod(o)
		}
	})
}

// linkIs waits until the daemon has seen the link go up or down.
func (h *harness) linkIs(up bool) {
	h.t.Helper()
	for range 2000 {
		if h.d.Snapshot().Link.Up == up {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatalf("the daemon never saw the link up=%v", up)
}

func (h *harness) runs() uint64 {
	if lr := h.d.runner.Status().LastRun; lr != nil {
		return lr.ID
	}
	return 0
}

func TestNetnsLinkUpStartsExactlyOneRun(t *testing.T) {
	ns := nstest.New(t)
	g := newGate("fetch")
	h := startNS(t, ns, 50*time.Millisecond, []pipeline.Step{{Stage: g.stage()}}, nil)
	ns.Set(true)
	req := wait(t, g.started, "the run")
	if req.Iface != "up0" {
		t.Errorf("iface %q", req.Iface)
	}
	finishOneRun(t, h, ns, g)
}

func TestNetnsFlapsWithinSettleStartOneRun(t *testing.T) {
	ns := nstest.New(t)
	g := newGate("fetch")
	h := startNS(t, ns, time.Second, []pipeline.Step{{Stage: g.stage()}}, nil)
	for range 5 {
		ns.Set(true)
		ns.Set(false)
	}
	ns.Set(true)
	wait(t, g.started, "the run")
	finishOneRun(t, h, ns, g)
}

func TestNetnsAlreadyUpAtStartOneRun(t *testing.T) {
	ns := nstest.New(t)
	ns.Set(true)
	r := linkwatch.NetlinkReader{Handle: ns.NL}
	for i := 0; ; i++ { // wait for the carrier before the daemon starts
		st, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := linkwatch.Up(st, []string{"up0"}); ok {
			break
		}
		if i > 1000 {
			t.Fatal("veth never came up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	g := newGate("fetch")
	h := startNS(t, ns, 20*time.Millisecond, []pipeline.Step{{Stage: g.stage()}}, nil)
	req := wait(t, g.started, "the run")
	if req.Cause != "up edge (start)" {
		t.Errorf("cause %q", req.Cause)
	}
	finishOneRun(t, h, ns, g)
}

func TestNetnsLinkDownMidRunCancelsExec(t *testing.T) {
	ns := nstest.New(t)
	marker := filepath.Join(t.TempDir(), "term")
	lines := make(chan string, 16)
	script := `trap 'echo cancelled > "$0"; exit 1' TERM; echo started; while :; do sleep 0.02; done`
	h := startNS(t, ns, 20*time.Millisecond,
		[]pipeline.Step{{Stage: pipeline.Exec{StageName: "after", Argv: []string{"sh", "-c", script, marker}}}},
		func(o *Options) {
			o.Sink = func(e event.Event) {
				if e.Type == event.Note {
					lines <- e.Text
				}
			}
		})
	ns.Set(true)
	if l := wait(t, lines, "the command to start"); l != "started" {
		t.Fatalf("line %q", l)
	}
	ns.Set(false)
	rep := h.lastRun(1)
	if rep.Stages[0].Result != event.Cancelled || rep.Stages[0].Err != "link down" {
		t.Errorf("stage %+v, want cancelled by link down", rep.Stages[0])
	}
	if b, _ := os.ReadFile(marker); strings.TrimSpace(string(b)) != "cancelled" {
		t.Errorf("the command did not see SIGTERM: %q", b)
	}
}

// BenchmarkNetnsEdgeToStageStart measures, over 100 flaps of a veth link in
// a namespace, the time from the netlink call that brings the link up to
// the start of the pipeline's first stage, beyond Settle.
func BenchmarkNetnsEdgeToStageStart(b *testing.B) {
	ns := nstest.New(b)
	const settle = 20 * time.Millisecond
	started := make(chan time.Time, 4)
	stage := pipeline.Func{StageName: "first", Fn: func(ctx context.Context, sink event.Sink) (pipeline.Report, error) {
		started <- time.Now()
		return pipeline.Report{}, nil
	}}
	w, err := linkwatch.NewWatcher(linkwatch.Options{Watch: []string{"up0"}, Settle: settle, Namespace: &ns.Handle,
		ClockJumps: make(chan struct{})})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	d, err := New(Options{StateDir: dir, Steps: []pipeline.Step{{Stage: stage}}, Watcher: w, Signals: make(chan os.Signal), Notify: func(string) {}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	var lat []time.Duration
	flap := func() time.Duration {
		t0 := time.Now()
		ns.Set(true)
		var l time.Duration
		select {
		case t1 := <-started:
			l = t1.Sub(t0) - settle
		case <-time.After(10 * time.Second):
			b.Fatal("no run started")
		}
		ns.Set(false)
		for d.Snapshot().Link.Up || d.Snapshot().Runner.Running {
			time.Sleep(time.Millisecond)
		}
		return l
	}
	flap() // warm up: the watcher's first read races the first flap
	for b.Loop() {
		for range 100 {
			lat = append(lat, flap())
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "ms-p99")
}

// finishOneRun lets the run g holds end, takes the link down, and checks
// that this was the only run: no second one ran or is starting.
func finishOneRun(t *testing.T, h *harness, ns *nstest.NS, g *gate) {
	t.Helper()
	g.release <- struct{}{}
	h.lastRun(1)
	ns.Set(false)
	h.linkIs(false)
	if n := h.runs(); n != 1 || len(g.started) != 0 {
		t.Errorf("%d runs (+%d starting), want exactly 1", n, len(g.started))
	}
}
