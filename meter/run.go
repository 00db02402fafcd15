package meter

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Run is the metering of one pipeline run on one link. A nil *Run (no
// policy for the link) admits everything and records nothing. Its methods
// are safe for concurrent use.
type Run struct {
	m      *Meter
	p      Policy
	policy bool

	mu      sync.Mutex
	f       *file
	s       *Spending
	rec     *RunRecord
	ended   bool
	saved   time.Time
	saveErr error
	// dayOther is the day's spending that is not this run's; runAtDay
	// is this run's spending when the current day began (0 when the day
	// began before the run). The day's figure is dayOther + spent -
	// runAtDay; the same for the month.
	dayOther, monthOther int64
	runAtDay, runAtMonth int64

	stop chan struct{}
	done chan struct{}
}

type runKey struct{}

// WithRun returns ctx carrying r, for the stages of the run.
func WithRun(ctx context.Context, r *Run) context.Context {
	return context.WithValue(ctx, runKey{}, r)
}

// RunFrom is the Run ctx carries (nil: none).
func RunFrom(ctx context.Context) *Run {
	r, _ := ctx.Value(runKey{}).(*Run)
	return r
}

// Begin starts metering a run on iface (cause is recorded for status). It
// returns nil, nil when no policy matches iface. An error means the store
// could not be read or written: the run then has no budget information
// and the caller decides (assemble refuses to move anything on a metered
// link it cannot account for).
func (m *Meter) Begin(ctx context.Context, iface, cause string) (*Run, error) {
	p, ok := PolicyFor(m.opts.Policies, iface)
	if !ok {
		return nil, nil
	}
	f, err := load(m.opts.StateDir)
	if err != nil {
		return nil, err
	}
	s := f.Policies[p.Match]
	if s == nil {
		s = &Spending{}
		f.Policies[p.Match] = s
	}
	if s.Run != nil && s.Run.End.IsZero() {
		s.Run.Interrupted = true
		m.log.Warn("the last run on this link did not end (the process died): its bytes up to its last checkpoint are counted",
			"policy", p.Match, "iface", s.Run.Iface, "started", s.Run.Start, "bytes", s.Run.Bytes)
	}
	now := m.opts.Now()
	s.roll(now)
	metered, why := m.metered(ctx, p, iface)
	rec := &RunRecord{Iface: iface, Cause: cause, Start: now, Updated: now, Metered: metered, Why: why,
		Stages: map[string]int64{}, Accounts: map[string]int64{}}
	if c, err := m.opts.LinkCounters(iface); err != nil {
		m.log.Debug("link counters unreadable: counting linkctl's own bytes", "iface", iface, "err", err)
	} else {
		rec.LinkStart, rec.LinkOK = c, true
	}
	s.Run = rec
	r := &Run{m: m, p: p, policy: true, f: f, s: s, rec: rec, dayOther: s.DayBytes, monthOther: s.MonthBytes,
		stop: make(chan struct{}), done: make(chan struct{})}
	if err := r.saveLocked(now); err != nil {
		return nil, err
	}
	m.log.Debug("metering the run", "policy", p.Match, "iface", iface, "metered", metered, "why", why)
	go r.ticker()
	return r, nil
}

func (r *Run) ticker() {
	defer close(r.done)
	if r.m.opts.Checkpoint < 0 {
		<-r.stop
		return
	}
	t := time.NewTicker(r.m.opts.Checkpoint)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.Checkpoint()
		}
	}
}

// Metered reports whether the run's link is metered, and why.
func (r *Run) Metered() (bool, string) {
	if r == nil {
		return false, "no link policy"
	}
	return r.rec.Metered, r.rec.Why
}

// Policy is the run's policy.
func (r *Run) Policy() Policy {
	if r == nil {
		return Policy{}
	}
	return r.p
}

// refreshLocked reads the link counters. A link that is gone (hung up)
// keeps its last figures; counters that went down (the interface was
// created again) make the link figures untrustworthy for this run.
func (r *Run) refreshLocked() {
	if !r.rec.LinkOK {
		return
	}
	c, err := r.m.opts.LinkCounters(r.rec.Iface)
	if err != nil {
		return
	}
	if c.Rx < r.rec.LinkStart.Rx || c.Tx < r.rec.LinkStart.Tx {
		r.m.log.Info("link counters were reset during the run: counting linkctl's own bytes", "iface", r.rec.Iface)
		r.rec.LinkOK = false
		return
	}
	r.rec.LinkRx, r.rec.LinkTx = c.Rx-r.rec.LinkStart.Rx, c.Tx-r.rec.LinkStart.Tx
}

// spentLocked is the run's spending so far: the most of the link
// counters, the bytes admitted (promised to messages not all moved yet)
// and linkctl's own counts.
func (r *Run) spentLocked() int64 {
	n := max(r.rec.Admitted, r.rec.Own)
	if r.rec.LinkOK {
		n = max(n, int64(r.rec.LinkRx+r.rec.LinkTx))
	}
	return n
}

// accountLocked sets the run's bytes to spent and carries them into the
// day and month (metered runs only: unmetered traffic costs nothing),
// starting new periods when the clock passed midnight or a month's end.
func (r *Run) accountLocked(now time.Time, spent int64) {
	// What the run spent up to its last checkpoint belongs to the period
	// that was current then; what came since, to the new one.
	prev := r.rec.Bytes
	r.rec.Bytes = spent
	r.rec.Updated = now
	day, month := r.s.roll(now)
	if day {
		r.dayOther, r.runAtDay = 0, prev
	}
	if month {
		r.monthOther, r.runAtMonth = 0, prev
	}
	if !r.rec.Metered {
		return
	}
	r.s.DayBytes = max(0, r.dayOther+spent-r.runAtDay)
	r.s.MonthBytes = max(0, r.monthOther+spent-r.runAtMonth)
}

func (r *Run) saveLocked(now time.Time) error {
	r.saved = now
	err := r.f.save(r.m.opts.StateDir)
	if err != nil && r.saveErr == nil {
		r.m.log.Warn("cannot write the spending store", "err", err)
	}
	r.saveErr = err
	return err
}

// Admit decides whether a message of size bytes (as listed by the
// server) may be retrieved on this run's link; see the package doc. It is
// fetch.Options.Admit.
func (r *Run) Admit(size int64) (bool, string) {
	if r == nil {
		return true, ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.m.opts.Now()
	if !r.rec.Metered {
		r.rec.Admitted += size
		return true, ""
	}
	refuse := func(why string) (bool, string) {
		r.rec.Held++
		r.rec.HeldBytes += size
		return false, why
	}
	if r.p.MaxMessage > 0 && size > r.p.MaxMessage {
		return refuse(fmt.Sprintf("bigger than max_message (%s) on %s", fmtBytes(r.p.MaxMessage), r.rec.Iface))
	}
	r.refreshLocked()
	spent := r.spentLocked()
	r.accountLocked(now, spent)
	name, left, ok := r.leftLocked(spent)
	if ok && size > left {
		return refuse(fmt.Sprintf("the %s budget has %s left", name, fmtBytes(max(left, 0))))
	}
	r.rec.Admitted += size
	r.accountLocked(now, r.spentLocked())
	if now.Sub(r.saved) >= time.Second {
		r.saveLocked(now)
	}
	return true, ""
}

// leftLocked is the tightest budget: its name and what it has left.
func (r *Run) leftLocked(spent int64) (name string, left int64, ok bool) {
	return r.p.tightest(spent, r.s.DayBytes, r.s.MonthBytes)
}

// tightest is the budget of p with the least left after run, day and
// month were spent: its name and what it has left (below 0 when past
// it); ok is false when p has no budget.
func (p Policy) tightest(run, day, month int64) (name string, left int64, ok bool) {
	try := func(n string, budget, used int64) {
		if budget <= 0 {
			return
		}
		if l := budget - used; !ok || l < left {
			name, left, ok = n, l, true
		}
	}
	try("run", p.Run, run)
	try("day", p.Day, day)
	try("month", p.Month, month)
	return name, left, ok
}

// Count adds bytes linkctl counted itself to the run: n bytes moved by
// stage, for account when not "".
func (r *Run) Count(stage, account string, n int64) {
	if r == nil || n <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rec.Own += n
	r.rec.Stages[stage] += n
	if account != "" {
		r.rec.Accounts[account] += n
	}
}

// Checkpoint reads the counters and writes the figures now (the drop
// stage calls it before it hangs up: the counters go with the link).
func (r *Run) Checkpoint() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return
	}
	now := r.m.opts.Now()
	r.refreshLocked()
	r.accountLocked(now, r.spentLocked())
	r.saveLocked(now)
}

// End closes the run: the counters a last time, then the run's bytes are
// what was measured (the link counters, or linkctl's own counts where the
// counters could not be trusted), and the record is written as ended.
func (r *Run) End() (RunRecord, error) {
	if r == nil {
		return RunRecord{}, nil
	}
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.m.opts.Now()
	r.refreshLocked()
	spent := r.rec.Own
	if r.rec.LinkOK {
		spent = int64(r.rec.LinkRx + r.rec.LinkTx)
	}
	r.accountLocked(now, spent)
	r.rec.End = now
	r.ended = true
	err := r.saveLocked(now)
	return *r.rec, err
}

// Summary is one line about the run for logs: "wwan0 (metered: config):
// 1.2 MB (link 1.2 MB, linkctl counted 1.1 MB); day 5.0 MB of 50.0 MB".
func (rec RunRecord) Summary() string {
	m := "unmetered"
	if rec.Metered {
		m = "metered"
	}
	s := fmt.Sprintf("%s (%s: %s): %s", rec.Iface, m, rec.Why, fmtBytes(rec.Bytes))
	if rec.LinkOK {
		s += fmt.Sprintf(" (link counters %s, linkctl counted %s)", fmtBytes(int64(rec.LinkRx+rec.LinkTx)), fmtBytes(rec.Own))
	}
	if rec.Held > 0 {
		s += fmt.Sprintf("; %d message%s (%s) left for an unmetered link", rec.Held, map[bool]string{true: "", false: "s"}[rec.Held == 1], fmtBytes(rec.HeldBytes))
	}
	return s
}
