package dial

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeHost struct {
	mu   sync.Mutex
	busy string
}

func (h *fakeHost) Busy() string { h.mu.Lock(); defer h.mu.Unlock(); return h.busy }

type fakeGate struct{ spent atomic.Bool }

func (g *fakeGate) Spent(iface string) (string, bool) {
	return "day budget of " + iface + " used up", g.spent.Load()
}

// wallAt is a clock that reads like local time-of-day hhmm but runs at
// real speed: windows are decided on it, timers sleep real time.
func wallAt(hh, mm int) func() time.Time {
	now := time.Now()
	base := time.Date(2026, 12, 6, hh, mm, 0, 0, time.Local)
	return func() time.Time { return base.Add(time.Since(now)) }
}

// linkOnMarker is a dial command that creates a marker file, and a
// goroutine that tells the policy the link is up when it appears (the
// daemon does that on the watcher's up edge).
func linkOnMarker(t *testing.T, p **Policy) []string {
	t.Helper()
	marker := filepath.Join(t.TempDir(), "dialed")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for ctx.Err() == nil {
			if _, err := os.Stat(marker); err == nil {
				os.Remove(marker)
				(*p).Link(true)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return []string{"sh", "-c", `touch "$0"`, marker}
}

func logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func runPolicy(t *testing.T, p *Policy) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// oldMail is a queue listing with one message queued an hour ago (policy
// clock) and one a minute ago.
func oldMail(now func() time.Time) func(context.Context) (Queue, error) {
	return func(context.Context) (Queue, error) {
		n := now()
		return Queue{Arrivals: []time.Time{n.Add(-time.Hour), n.Add(-time.Minute)}}, nil
	}
}

func TestOldMailDialsOnceInsideWindow(t *testing.T) {
	var p *Policy
	now := wallAt(23, 0)
	p = New(Options{QueueAge: 30 * time.Minute, CheckEvery: 20 * time.Millisecond, ListQueue: oldMail(now),
		Windows: []Window{{22 * 60, 6 * 60}}, Now: now, Logger: logger(t), Busy: (&fakeHost{}).Busy})
	p.opts.Command = linkOnMarker(t, &p)
	runPolicy(t, p)
	waitFor(t, "a dial", func() bool { return p.Status().Dials > 0 && !p.Status().Dialing })
	st := p.Status()
	if !strings.HasPrefix(st.LastResult, "link up after") || !strings.Contains(st.LastCause, "outbound mail waiting 1h0m0s") {
		t.Errorf("status %+v", st)
	}
	// The link went up and down again (run, drop): the same old mail, which
	// that link saw, does not dial again.
	p.Link(false)
	time.Sleep(200 * time.Millisecond) // ten queue checks
	if n := p.Status().Dials; n != 1 {
		t.Errorf("%d dials, want exactly 1: %+v", n, p.Status())
	}
}

func TestOldMailOutsideWindowNoDial(t *testing.T) {
	var p *Policy
	now := wallAt(12, 0)
	listed := make(chan struct{}, 100)
	list := oldMail(now)
	p = New(Options{QueueAge: 30 * time.Minute, CheckEvery: 20 * time.Millisecond,
		ListQueue: func(ctx context.Context) (Queue, error) { listed <- struct{}{}; return list(ctx) },
		Windows:   []Window{{22 * 60, 6 * 60}}, Now: now, Logger: logger(t), Busy: (&fakeHost{}).Busy})
	p.opts.Command = linkOnMarker(t, &p)
	runPolicy(t, p)
	time.Sleep(200 * time.Millisecond)
	st := p.Status()
	if st.Dials != 0 {
		t.Errorf("%d dials outside the window", st.Dials)
	}
	if !strings.Contains(st.Holding, "outside the dial windows 22:00-06:00") {
		t.Errorf("holding %q", st.Holding)
	}
	if len(listed) != 0 {
		t.Errorf("the queue was listed %d times outside the window: nothing to list for", len(listed))
	}
}

func TestYoungOrFewMailNoDial(t *testing.T) {
	var p *Policy
	now := wallAt(23, 0)
	p = New(Options{QueueAge: 2 * time.Hour, QueueCount: 2, CheckEvery: 20 * time.Millisecond, ListQueue: oldMail(now),
		Now: now, Logger: logger(t), Busy: (&fakeHost{}).Busy})
	p.opts.Command = linkOnMarker(t, &p)
	runPolicy(t, p)
	time.Sleep(150 * time.Millisecond)
	if n := p.Status().Dials; n != 0 {
		t.Errorf("%d dials for 2 messages younger than 2h", n)
	}
}

func TestQueueCountDials(t *testing.T) {
	var p *Policy
	now := wallAt(23, 0)
	p = New(Options{QueueCount: 1, CheckEvery: 20 * time.Millisecond, ListQueue: oldMail(now),
		Now: now, Logger: logger(t), Busy: (&fakeHost{}).Busy})
	p.opts.Command = linkOnMarker(t, &p)
	runPolicy(t, p)
	waitFor(t, "a dial", func() bool { return p.Status().Dials > 0 })
	if c := p.Status().LastCause; !strings.Contains(c, "2 outbound messages waiting (more than 1)") {
		t.Errorf("cause %q", c)
	}
}

func TestNoDialWhileBusyOrBudgetSpent(t *testing.T) {
	for _, c := range []struct {
		name string
		host *fakeHost
		gate *fakeGate
		want string
	}{
		{"run", &fakeHost{busy: "a run is in flight"}, nil, "a run is in flight"},
		{"up", &fakeHost{busy: "ppp0 is already up"}, nil, "ppp0 is already up"},
		{"budget", &fakeHost{}, &fakeGate{}, "budget spent: day budget of ppp0 used up"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.gate != nil {
				c.gate.spent.Store(true)
			}
			var p *Policy
			now := wallAt(23, 0)
			opts := Options{Iface: "ppp0", QueueAge: time.Minute, CheckEvery: 20 * time.Millisecond, ListQueue: oldMail(now), Now: now, Logger: logger(t)}
			if c.gate != nil {
				opts.Gate = c.gate
			}
			opts.Busy = c.host.Busy
			p = New(opts)
			p.opts.Command = linkOnMarker(t, &p)
			runPolicy(t, p)
			time.Sleep(150 * time.Millisecond)
			st := p.Status()
			if st.Dials != 0 || st.Holding != c.want {
				t.Errorf("dials %d, holding %q; want 0 and %q", st.Dials, st.Holding, c.want)
			}
			if _, err := p.DialNow(context.Background()); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("DialNow: %v, want refused: %s", err, c.want)
			}
		})
	}
}

func TestFailedDialRetriesWithBackoffThenGivesUp(t *testing.T) {
	var starts []time.Time
	var mu sync.Mutex
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	now := wallAt(23, 0)
	p := New(Options{
		Command:  []string{"sh", "-c", `date +%s.%N >> "$0"; echo "no carrier" >&2; exit 3`, log},
		QueueAge: time.Minute, CheckEvery: 10 * time.Millisecond, ListQueue: oldMail(now), Now: now,
		Retries: 2, Backoff: 100 * time.Millisecond, BackoffMax: 150 * time.Millisecond, Logger: logger(t),
		Busy: (&fakeHost{}).Busy,
	})
	runPolicy(t, p)
	waitFor(t, "giving up", func() bool { return !p.Status().GaveUp.IsZero() })
	st := p.Status()
	if st.Dials != 3 {
		t.Errorf("%d attempts, want 3 (1 + 2 retries)", st.Dials)
	}
	if !strings.Contains(st.LastResult, `exit status 3: "no carrier"`) {
		t.Errorf("last result %q", st.LastResult)
	}
	b, _ := os.ReadFile(log)
	for _, l := range strings.Fields(string(b)) {
		var sec, nsec int64
		s, ns, _ := strings.Cut(l, ".")
		for _, ch := range s {
			sec = sec*10 + int64(ch-'0')
		}
		for _, ch := range ns {
			nsec = nsec*10 + int64(ch-'0')
		}
		mu.Lock()
		starts = append(starts, time.Unix(sec, nsec))
		mu.Unlock()
	}
	if len(starts) != 3 {
		t.Fatalf("%d starts logged", len(starts))
	}
	// Backoff: 100ms, then 200ms capped at 150ms.
	if g := starts[1].Sub(starts[0]); g < 100*time.Millisecond {
		t.Errorf("first retry after %s, want >= 100ms", g)
	}
	if g := starts[2].Sub(starts[1]); g < 150*time.Millisecond {
		t.Errorf("second retry after %s, want >= 150ms (capped)", g)
	}
	// Given up: the old mail does not dial again within BackoffMax.
	time.Sleep(100 * time.Millisecond)
	if n := p.Status().Dials; n != 3 {
		t.Errorf("%d dials after giving up", n)
	}
}

func TestLinkThatNeverAppearsTimesOut(t *testing.T) {
	p := New(Options{Command: []string{"true"}, AppearTimeout: 100 * time.Millisecond, Logger: logger(t), Busy: (&fakeHost{}).Busy})
	start := time.Now()
	_, err := p.DialNow(context.Background())
	if err == nil || !strings.Contains(err.Error(), "did not come up within 100ms") {
		t.Fatalf("err %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %s", el)
	}
	if st := p.Status(); !strings.HasPrefix(st.LastResult, "failed: ") || st.Failures != 1 {
		t.Errorf("status %+v", st)
	}
}

func TestHungDialCommandIsKilledAtTimeout(t *testing.T) {
	p := New(Options{Command: []string{"sleep", "60"}, AppearTimeout: 100 * time.Millisecond, Busy: (&fakeHost{}).Busy})
	start := time.Now()
	if _, err := p.DialNow(context.Background()); err == nil {
		t.Fatal("no error")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("a hung dial command held the dial %s", el)
	}
}

func TestFixedTimeDialsOutsideQueueTriggers(t *testing.T) {
	var p *Policy
	// 05:59:59.8 local: "at 06:00" comes in 200ms.
	now0 := time.Now()
	base := time.Date(2026, 12, 6, 5, 59, 59, 800e6, time.Local)
	now := func() time.Time { return base.Add(time.Since(now0)) }
	p = New(Options{At: []Clock{6 * 60}, Now: now, Logger: logger(t), Busy: (&fakeHost{}).Busy})
	p.opts.Command = linkOnMarker(t, &p)
	runPolicy(t, p)
	waitFor(t, "the 06:00 dial", func() bool { return p.Status().Dials > 0 })
	time.Sleep(100 * time.Millisecond)
	st := p.Status()
	if st.Dials != 1 || st.LastCause != "at 06:00" {
		t.Errorf("status %+v", st)
	}
	if st.NextWhy != "at 06:00" || st.Next.Sub(base) < 23*time.Hour {
		t.Errorf("next %s %s, want tomorrow 06:00", st.Next, st.NextWhy)
	}
}

// A reloaded config (SIGHUP) reaches a running policy: a dial section
// added, changed and removed again takes effect without a restart, and
// the status carries over.
func TestUpdateReplacesTheSchedule(t *testing.T) {
	var p *Policy
	now := wallAt(23, 0)
	host := &fakeHost{}
	p = New(Options{Now: now, Logger: logger(t), Busy: host.Busy}) // no dial section yet
	cmd := linkOnMarker(t, &p)
	runPolicy(t, p)
	time.Sleep(50 * time.Millisecond)
	if p.Enabled() || p.Status().Dials != 0 || p.Status().NextWhy != "" {
		t.Fatalf("a policy without a command: enabled %v, %+v", p.Enabled(), p.Status())
	}
	// Added: every hour. Nothing is due for an hour.
	p.Update(Options{Command: cmd, Every: time.Hour, Now: now, Logger: logger(t), Busy: host.Busy})
	waitFor(t, "the new schedule", func() bool { return p.Status().NextWhy == "every 1h0m0s" })
	if !p.Enabled() || p.Status().Dials != 0 || !slices.Equal(p.Status().Command, cmd) {
		t.Fatalf("after the update: enabled %v, %+v", p.Enabled(), p.Status())
	}
	// Changed: every 30ms. The running policy dials on the new schedule.
	p.Update(Options{Command: cmd, Every: 30 * time.Millisecond, Now: now, Logger: logger(t), Busy: host.Busy})
	waitFor(t, "a dial on the new schedule", func() bool { return p.Status().Dials > 0 && !p.Status().Dialing })
	if st := p.Status(); st.LastCause != "every 30ms" || !strings.HasPrefix(st.LastResult, "link up after") {
		t.Errorf("status %+v", st)
	}
	// Removed: no more dials, whatever the link does.
	p.Update(Options{Now: now, Logger: logger(t), Busy: host.Busy})
	waitFor(t, "an empty schedule", func() bool { return p.Status().NextWhy == "" })
	dials := p.Status().Dials
	p.Link(false)
	time.Sleep(150 * time.Millisecond) // five periods of the old schedule
	if st := p.Status(); st.Dials != dials || p.Enabled() {
		t.Errorf("dials went on after the dial section was removed: %d -> %d (%+v)", dials, st.Dials, st)
	}
	if _, err := p.DialNow(context.Background()); err == nil || !strings.Contains(err.Error(), "no dial command") {
		t.Errorf("DialNow without a command: %v", err)
	}
}
