package meter

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeLink is a link whose counters the test moves.
type fakeLink struct {
	mu   sync.Mutex
	c    Counters
	gone bool
}

func (l *fakeLink) move(rx, tx uint64) {
	l.mu.Lock()
	l.c.Rx += rx
	l.c.Tx += tx
	l.mu.Unlock()
}

func (l *fakeLink) read(string) (Counters, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone {
		return Counters{}, errors.New("no such device")
	}
	return l.c, nil
}

// clock is a settable clock in a zone of its own (UTC+5), so that the
// calendar periods are seen to follow local time, not UTC.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

var zone = time.FixedZone("test+5", 5*3600)

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type env struct {
	dir  string
	link *fakeLink
	clk  *clock
	pols []Policy
	nm   func(context.Context, string) (NMMetered, error)
}

func newEnv(t *testing.T, pols ...Policy) *env {
	return &env{dir: t.TempDir(), link: &fakeLink{c: Counters{Rx: 1e9, Tx: 5e8}},
		clk: &clock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, zone)}, pols: pols}
}

// meter is a new Meter on the env's state_dir: each call is what a new
// process would see.
func (e *env) meter(t *testing.T) *Meter {
	nm := e.nm
	if nm == nil {
		nm = func(context.Context, string) (NMMetered, error) { return 0, errors.New("no NetworkManager here") }
	}
	return New(Options{StateDir: e.dir, Policies: e.pols, Now: e.clk.now, LinkCounters: e.link.read,
		NetworkManager: nm, Checkpoint: -1, Logger: nil})
}

func (e *env) begin(t *testing.T, iface string) *Run {
	t.Helper()
	r, err := e.meter(t).Begin(context.Background(), iface, "test")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func status(t *testing.T, m *Meter) PolicyStatus {
	t.Helper()
	st, err := m.Status(context.Background())
	if err != nil || len(st) == 0 {
		t.Fatalf("status: %v, %v", st, err)
	}
	return st[0]
}

// The run budget admits messages while they fit and says which budget
// refused and what it has left; a message bigger than max_message is
// refused whatever the budget.
func TestAdmitRunBudget(t *testing.T) {
	e := newEnv(t, Policy{Match: "wwan*", Metered: MeteredYes, Run: 10 << 10, MaxMessage: 6 << 10})
	r := e.begin(t, "wwan0")
	for _, size := range []int64{2048, 3072} {
		if ok, why := r.Admit(size); !ok {
			t.Fatalf("Admit(%d) refused: %s", size, why)
		}
	}
	if ok, why := r.Admit(7000); ok || why != "bigger than max_message (6.0 KiB) on wwan0" {
		t.Errorf("Admit(7000) = %v, %q; want refused by max_message", ok, why)
	}
	if ok, why := r.Admit(5121); ok || why != "the run budget has 5.0 KiB left" {
		t.Errorf("Admit(5121) = %v, %q; want refused: the run budget has 5.0 KiB left", ok, why)
	}
	// The link moved more than linkctl admitted (the flush before the
	// fetch, protocol overhead): the counters count.
	e.link.move(7168, 1024)
	if ok, why := r.Admit(4000); ok || why != "the run budget has 2.0 KiB left" {
		t.Errorf("after 8 KiB on the link: Admit(4000) = %v, %q", ok, why)
	}
	rec, err := r.End()
	if err != nil {
		t.Fatal(err)
	}
	if rec.Bytes != 8192 || !rec.LinkOK || rec.Held != 3 {
		t.Errorf("record %+v: want 8192 bytes from the link counters, 3 held", rec)
	}
}

// An unmetered link admits everything: no budget, no max_message.
func TestUnmeteredAdmitsAll(t *testing.T) {
	e := newEnv(t, Policy{Match: "eth0", Metered: MeteredNo, Run: 10, MaxMessage: 10})
	r := e.begin(t, "eth0")
	if ok, _ := r.Admit(1 << 30); !ok {
		t.Fatal("unmetered link refused a message")
	}
	if r := e.begin(t, "ppp0"); r != nil {
		t.Errorf("a link no policy matches got a Run")
	}
}

// A restart mid-period keeps the spent figure: a new Meter on the same
// state_dir (a new process) sees the day and month spending and counts
// the next run against what is left.
func TestRestartKeepsSpending(t *testing.T) {
	e := newEnv(t, Policy{Match: "wwan0", Metered: MeteredYes, Day: 50_000})
	r := e.begin(t, "wwan0")
	r.Admit(30_000)
	e.link.move(30_500, 500)
	if _, err := r.End(); err != nil {
		t.Fatal(err)
	}
	st := status(t, e.meter(t))
	if st.Spent.Day != 31_000 || st.Spent.Month != 31_000 || st.Spent.Run != 31_000 {
		t.Fatalf("after a restart: spent %+v, want 31000 today and this month", st.Spent)
	}
	e.clk.set(e.clk.now().Add(3 * time.Hour))
	r = e.begin(t, "wwan0")
	if ok, why := r.Admit(20_000); ok || why != "the day budget has 18.6 KiB left" {
		t.Errorf("second run: Admit(20000) = %v, %q; want the day budget to refuse", ok, why)
	}
}

// A process that dies mid-run: what its run admitted before its last
// checkpoint is counted by the next process.
func TestCrashMidRunCounts(t *testing.T) {
	e := newEnv(t, Policy{Match: "wwan0", Metered: MeteredYes, Month: 1 << 20})
	r := e.begin(t, "wwan0")
	r.Admit(100_000)
	e.link.move(40_000, 0) // half of it moved when the process dies
	r.Checkpoint()
	// No End: the process is gone. A new one:
	st := status(t, e.meter(t))
	if !st.InProgress || st.Spent.Month != 100_000 {
		t.Fatalf("after a crash: %+v, want the run in progress with its 100000 bytes admitted", st)
	}
	r2 := e.begin(t, "wwan0")
	r2.End()
	st = status(t, e.meter(t))
	if st.InProgress || st.Spent.Month != 100_000 {
		t.Fatalf("next run: %+v, want the crashed run's 100000 kept in the month", st.Spent)
	}
}

// The day and the month roll over at local midnight, also in the middle
// of a run; the month is kept across days.
func TestRollover(t *testing.T) {
	e := newEnv(t, Policy{Match: "wwan0", Metered: MeteredYes, Day: 1 << 30})
	// 23:30 local on 30 November is 18:30 UTC: same day either way. A run
	// that goes on past local midnight (19:00 UTC, still 30 November in
	// UTC) splits its bytes between the days.
	e.clk.set(time.Date(2026, 11, 30, 23, 30, 0, 0, zone))
	r := e.begin(t, "wwan0")
	e.link.move(1000, 0)
	r.Checkpoint()
	e.clk.set(time.Date(2026, 12, 1, 0, 10, 0, 0, zone))
	e.link.move(500, 0)
	if _, err := r.End(); err != nil {
		t.Fatal(err)
	}
	st := status(t, e.meter(t))
	if st.Spent.Day != 500 || st.Spent.Month != 500 || st.Spent.Run != 1500 {
		t.Fatalf("after midnight on 1 December (local): spent %+v, want 500 today and this month, 1500 in the run", st.Spent)
	}
	// Next day, same month.
	e.clk.set(time.Date(2026, 12, 2, 8, 0, 0, 0, zone))
	r = e.begin(t, "wwan0")
	e.link.move(200, 0)
	r.End()
	st = status(t, e.meter(t))
	if st.Spent.Day != 200 || st.Spent.Month != 700 {
		t.Fatalf("2 December: spent %+v, want 200 today and 700 this month", st.Spent)
	}
	// Status on a later day, without a run: today's figure is 0.
	e.clk.set(time.Date(2027, 1, 1, 0, 0, 1, 0, zone))
	st = status(t, e.meter(t))
	if st.Spent.Day != 0 || st.Spent.Month != 0 {
		t.Fatalf("on 1 January: spent %+v, want nothing in the new periods", st.Spent)
	}
}

// metered: auto follows NetworkManager; without one it is unmetered and
// says why.
func TestAutoMetered(t *testing.T) {
	e := newEnv(t, Policy{Match: "wwan*", Metered: MeteredAuto, Run: 100})
	r := e.begin(t, "wwan0")
	if m, why := r.Metered(); m || !strings.Contains(why, "no answer from NetworkManager") {
		t.Errorf("without NetworkManager: metered %v (%s), want unmetered", m, why)
	}
	e.nm = func(_ context.Context, iface string) (NMMetered, error) {
		if iface != "wwan0" {
			return 0, errors.New("no device " + iface)
		}
		return NMGuessYes, nil
	}
	r = e.begin(t, "wwan0")
	if m, why := r.Metered(); !m || why != "NetworkManager: metered (guessed)" {
		t.Errorf("NM guess-yes: metered %v (%s)", m, why)
	}
	if ok, _ := r.Admit(200); ok {
		t.Error("metered by NetworkManager, but the budget did not apply")
	}
}

// Link counters that disappear (the link was hung up) keep their last
// figures; counters that go down (the interface was created again) are
// not trusted and linkctl's own counts stand in.
func TestCountersGoneOrReset(t *testing.T) {
	e := newEnv(t, Policy{Match: "ppp0", Metered: MeteredYes})
	r := e.begin(t, "ppp0")
	e.link.move(3000, 100)
	r.Checkpoint()
	e.link.gone = true
	if rec, _ := r.End(); rec.Bytes != 3100 || !rec.LinkOK {
		t.Errorf("hung up before the end: %+v, want the last counters (3100)", rec)
	}
	e.link.gone = false
	r = e.begin(t, "ppp0")
	r.Count("fetch", "isp", 777)
	e.link.c = Counters{Rx: 10, Tx: 10}
	if rec, _ := r.End(); rec.Bytes != 777 || rec.LinkOK || rec.Accounts["isp"] != 777 {
		t.Errorf("counters reset: %+v, want linkctl's own 777", rec)
	}
}
