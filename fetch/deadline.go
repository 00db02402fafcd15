package fetch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
)

// Defaults of the session and run deadlines (see the package doc and
// docs/deadlines.md). The per-read inactivity timeout of the sources ends
// a server that goes silent; these end one that never stops talking.
const (
	// DefaultSessionFloor is the time every session gets whatever it
	// fetches: to connect, log in and list (phase one), and again on top of
	// the transfer allowance (phase two). It is generous for a TLS login
	// and a listing of thousands of messages over a modem.
	DefaultSessionFloor = 2 * time.Minute
	// DefaultMinRate (bytes a second) is the slowest link linkctl promises
	// to serve: below a 9600 bit/s modem line. The sessions retrieving at
	// once share it, so each is credited MinRate/Parallel.
	DefaultMinRate = 1024
	// DefaultPerMessage is the allowance per message retrieved on top of
	// its bytes: a command round trip over a slow link, and the local
	// delivery (an MDA that runs a spam filter can take seconds).
	DefaultPerMessage = 5 * time.Second
	// DefaultRunTimeout bounds the whole fetch stage; a session that began
	// before it and whose own deadline is later extends it (see Run).
	DefaultRunTimeout = 6 * time.Hour
	// DefaultSlotWait is how long a logged-in session waits for a
	// retrieval slot before it is closed (nothing deleted) and opened again
	// later: half the ten minutes a POP3 server may log an idle client out
	// after (RFC 1939 section 3; IMAP's is thirty, RFC 3501 section 5.4).
	DefaultSlotWait = 5 * time.Minute
)

// limits are Options' deadline fields with the defaults applied.
type limits struct {
	floor      time.Duration
	minRate    int64
	perMessage time.Duration
	runTimeout time.Duration
	slotWait   time.Duration
	parallel   int
}

func newLimits(o Options) limits {
	l := limits{floor: o.SessionFloor, minRate: o.MinRate, perMessage: o.PerMessage,
		runTimeout: o.RunTimeout, slotWait: o.SlotWait, parallel: o.Parallel}
	if l.floor <= 0 {
		l.floor = DefaultSessionFloor
	}
	if l.minRate <= 0 {
		l.minRate = DefaultMinRate
	}
	if l.perMessage <= 0 {
		l.perMessage = DefaultPerMessage
	}
	if l.runTimeout <= 0 {
		l.runTimeout = DefaultRunTimeout
	}
	if l.slotWait <= 0 {
		l.slotWait = DefaultSlotWait
	}
	if l.parallel <= 0 {
		l.parallel = 2
	}
	return l
}

// transferBudget is the time allowed for retrieving batch once its
// retrieval slot is held: the floor, plus its announced bytes at the
// session's share of the minimum rate, plus the per-message allowance.
// A server that announces more earns more time, but the POP3 source
// accepts at most about twice the announced size of a message (retrLimit)
// and the account's limit caps what is announced at all.
func (l limits) transferBudget(batch []Message) time.Duration {
	var bytes int64
	for _, m := range batch {
		if m.Size > 0 {
			bytes += m.Size
		}
	}
	secs := float64(bytes) * float64(l.parallel) / float64(l.minRate)
	const maxSecs = 1 << 30 // ~34 years: keeps the Duration from overflowing
	if secs > maxSecs {
		secs = maxSecs
	}
	d := l.floor + time.Duration(secs*float64(time.Second)) + time.Duration(len(batch))*l.perMessage
	return (d + time.Second - 1).Truncate(time.Second) // whole seconds read better in the error
}

// deadline is a context whose deadline can be moved: the session's moves
// from the floor to the transfer budget once the listing is known, and the
// run's is pushed out by sessions that need longer. When it fires, the
// context is cancelled with the error why() returns at that moment.
type deadline struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	why    func() error

	mu    sync.Mutex
	timer *time.Timer
	at    time.Time
	fired bool
}

func newDeadline(parent context.Context, d time.Duration, why func() error) *deadline {
	ctx, cancel := context.WithCancelCause(parent)
	dl := &deadline{ctx: ctx, cancel: cancel, why: why, at: time.Now().Add(d)}
	dl.timer = time.AfterFunc(d, dl.fire)
	return dl
}

func (d *deadline) fire() {
	d.mu.Lock()
	if d.fired || time.Now().Before(d.at) {
		// Moved later after the timer had already started this call.
		d.mu.Unlock()
		return
	}
	d.fired = true
	d.mu.Unlock()
	d.cancel(d.why())
}

// set moves the deadline to at (earlier or later) unless it has fired.
func (d *deadline) set(at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fired {
		return
	}
	d.at = at
	d.timer.Reset(time.Until(at))
}

// extend moves the deadline to at if that is later.
func (d *deadline) extend(at time.Time) {
	d.mu.Lock()
	later := at.After(d.at)
	d.mu.Unlock()
	if later {
		d.set(at)
	}
}

// expired reports whether the deadline fired (as opposed to the parent
// context ending or stop).
func (d *deadline) expired() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fired
}

func (d *deadline) stop() {
	d.mu.Lock()
	d.timer.Stop()
	d.mu.Unlock()
	d.cancel(context.Canceled)
}

// sessionClock is one session's deadline in its two phases, and its
// retrieval slot.
type sessionClock struct {
	e       *engine
	r       *accountRun
	dl      *deadline
	since   time.Time // start of the current phase
	phase   string    // what the session was doing, for the error
	budget  time.Duration
	release func() // gives the retrieval slot back; nil when none is held
	mu      sync.Mutex
}

// errReopen asks the account loop for a new session: this one waited
// longer than SlotWait for a retrieval slot and was closed unused.
var errReopen = errors.New("session closed while waiting for a retrieval slot")

func (e *engine) newSessionClock(ctx context.Context, r *accountRun) *sessionClock {
	c := &sessionClock{e: e, r: r, since: time.Now(), phase: "connecting, logging in and listing", budget: e.lim.floor}
	c.dl = newDeadline(ctx, e.lim.floor, c.err)
	return c
}

// err is the error of an expired session: temporary (the next run tries
// again) and naming the account, the deadline and what was going on.
func (c *sessionClock) err() error {
	c.mu.Lock()
	phase, budget, since := c.phase, c.budget, c.since
	c.mu.Unlock()
	return errkind.Temporary(errkind.Network, "account "+c.r.a.Name,
		"session deadline %v exceeded while %s (server still not done after %v)", budget, phase, time.Since(since).Round(time.Second))
}

// transfer is called once the session knows what it will retrieve: it
// waits for a retrieval slot (none needed when batch is empty) and sets
// the phase-two deadline from the slot's start. A session that waits
// longer than SlotWait returns errReopen and is to be closed unused.
func (c *sessionClock) transfer(ctx context.Context, batch []Message) error {
	var bytes int64
	for _, m := range batch {
		bytes += max(m.Size, 0)
	}
	c.mu.Lock()
	c.phase = fmt.Sprintf("retrieving %d message%s, %s announced", len(batch), plural(len(batch)), humanBytes(bytes))
	c.mu.Unlock()
	if len(batch) > 0 {
		// Waiting for the slot is not the server's time: the phase-one
		// deadline stands aside while the session waits.
		c.dl.set(time.Now().Add(c.e.lim.slotWait + c.e.lim.floor))
		release, err := c.e.pool.acquire(ctx, c.r.index, c.e.lim.slotWait)
		if err != nil {
			return err
		}
		if release == nil {
			c.r.log.Info("no retrieval slot within the wait; closing the session and opening it again later", "wait", c.e.lim.slotWait)
			return errReopen
		}
		c.release = release
	}
	budget := c.e.lim.transferBudget(batch)
	at := time.Now().Add(budget)
	c.mu.Lock()
	c.budget, c.since = budget, time.Now()
	c.mu.Unlock()
	c.dl.set(at)
	c.e.run.extend(at)
	return nil
}

// end stops the clock and gives the slot back.
func (c *sessionClock) end() {
	c.dl.stop()
	if c.release != nil {
		c.release()
		c.release = nil
	}
}

// pool hands out the Parallel retrieval slots. Connecting, logging in and
// listing happen outside it, every account at once, so a server that
// accepts and then stalls never holds a slot: only sessions with a listing
// in hand wait here. Waiters are served in account order.
type pool struct {
	mu      sync.Mutex
	free    int
	waiters []*slotWaiter
}

type slotWaiter struct {
	prio    int
	ch      chan struct{}
	granted bool
}

func newPool(n int) *pool { return &pool{free: n} }

// acquire returns a release function once a slot is held; nil and no
// error when maxWait passed first; the context's cause when it ended.
func (p *pool) acquire(ctx context.Context, prio int, maxWait time.Duration) (func(), error) {
	p.mu.Lock()
	if p.free > 0 && len(p.waiters) == 0 {
		p.free--
		p.mu.Unlock()
		return p.releaseOnce(), nil
	}
	w := &slotWaiter{prio: prio, ch: make(chan struct{})}
	i := 0
	for i < len(p.waiters) && p.waiters[i].prio <= prio {
		i++
	}
	p.waiters = append(p.waiters[:i], append([]*slotWaiter{w}, p.waiters[i:]...)...)
	p.mu.Unlock()
	t := time.NewTimer(maxWait)
	defer t.Stop()
	var err error
	select {
	case <-w.ch:
		return p.releaseOnce(), nil
	case <-ctx.Done():
		err = context.Cause(ctx)
	case <-t.C:
	}
	p.mu.Lock()
	if w.granted {
		// Granted as we gave up: pass it on.
		p.mu.Unlock()
		p.release()
	} else {
		for i, x := range p.waiters {
			if x == w {
				p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
				break
			}
		}
		p.mu.Unlock()
	}
	return nil, err
}

func (p *pool) releaseOnce() func() {
	var once sync.Once
	return func() { once.Do(p.release) }
}

func (p *pool) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		w.granted = true
		close(w.ch)
		return
	}
	p.free++
}
