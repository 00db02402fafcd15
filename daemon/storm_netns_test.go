package daemon

import (
	"testing"
	"time"

	"github.com/linkctl/linkctl/linkwatch"
	"github.com/linkctl/linkctl/linkwatch/nstest"
	"github.com/linkctl/linkctl/pipeline"
)

// TestNetnsTwoDaemonsSideBySideStayIdle: two daemons in one network
// namespace (per-user daemons, or a test next to a daemon), the link up.
// Each runs its pipeline once on the up edge; then, for a few seconds of
// nothing happening, neither wakes the other: no resubscription, no
// re-read of the link state, no second run. (Each daemon used to take the
// other's netlink requests for a dead socket and resubscribe, ~400 times a
// second.)
func TestNetnsTwoDaemonsSideBySideStayIdle(t *testing.T) {
	ns := nstest.New(t)
	ns.Set(true)
	ns.WaitQuiet(300 * time.Millisecond)
	type one struct {
		h *harness
		w *linkwatch.Watcher
		g *gate
	}
	var ds []one
	for range 2 {
		w, err := linkwatch.NewWatcher(linkwatch.Options{Watch: []string{"up0"}, Settle: 20 * time.Millisecond,
			Namespace: &ns.Handle, ClockJumps: make(chan struct{})})
		if err != nil {
			t.Fatal(err)
		}
		g := newGate("fetch")
		h := start(t, []pipeline.Step{{Stage: g.stage()}}, func(o *Options) { o.Watcher = w })
		wait(t, g.started, "the run")
		g.release <- struct{}{}
		h.lastRun(1)
		ds = append(ds, one{h, w, g})
	}
	before := []linkwatch.Counters{ds[0].w.Counters(), ds[1].w.Counters()}
	time.Sleep(3 * time.Second)
	for i, d := range ds {
		c := d.w.Counters()
		if c.Subscriptions != 1 || c.Deaths != 0 || c.Reads != before[i].Reads {
			t.Errorf("daemon %d: %d subscriptions, %d deaths, %d re-reads while idle (%d errors noted); want 1, 0, 0",
				i+1, c.Subscriptions, c.Deaths, c.Reads-before[i].Reads, c.Noted)
		}
		if n := d.h.runs(); n != 1 || len(d.g.started) != 0 {
			t.Errorf("daemon %d: %d runs (+%d starting), want exactly 1", i+1, n, len(d.g.started))
		}
	}
}
