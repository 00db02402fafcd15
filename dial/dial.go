// Package dial brings the uplink up on demand: it decides when to dial
// and runs the command that dials. It never runs the pipeline itself: the
// link coming up is seen by the link watcher, whose up edge starts the
// normal run, and the drop stage hangs up at its end.
//
// The flow of [Policy.Run] (one goroutine of the daemon): sleep until the
// next thing due, the earliest of the next queue check (every CheckEvery),
// the next fixed time (At), the next interval (Every) and a retry's time;
// then see whether a dial is wanted: a fixed time or an interval came, or
// the outbound queue (Options.ListQueue, the flush driver's listing) holds
// mail older than QueueAge, or more than QueueCount messages, counting only
// mail queued since the link was last up (mail the last link saw and left
// deferred is the MTA's to retry, not a reason to dial again and again).
// A dial wanted is refused, and logged, while the daemon is busy (Options.Busy) (a run in
// flight or queued, the link already up), outside the Windows or inside a
// Never window (local wall-clock time), or while the BudgetGate says the
// link's budget is spent. A fixed time or interval refused is skipped; the
// queue is looked at again at its next check.
//
// A dial ([Attempt]) runs Command (argv, no shell) and waits AppearTimeout
// for the link to come up (Policy.Link(true), called by the daemon on the
// watcher's up edge). One that fails is retried after Backoff, doubling up
// to BackoffMax, Retries times, each retry checked against the windows and
// gates again; then the policy gives up, logs the error, keeps it in
// [Status] (`linkctl status`) and holds off queue-triggered dials for
// BackoffMax. `linkctl dial` asks for one attempt by hand ([Policy.DialNow]):
// it ignores windows and triggers, not Busy or the budget.
package dial

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
)

// BudgetGate says whether a link's budget is spent (package meter
// implements it). While spent, no dial starts; why is logged and shown.
type BudgetGate interface {
	Spent(iface string) (why string, spent bool)
}

// Queue is what the outbound queue listing says, as far as dialing cares.
type Queue struct {
	// Arrivals of the messages waiting (held ones left out); zero when the
	// listing does not say.
	Arrivals []time.Time
}

// Defaults of Options.
const (
	DefaultAppearTimeout = 90 * time.Second
	DefaultBackoff       = time.Minute
	DefaultBackoffMax    = 15 * time.Minute
	DefaultCheckEvery    = 5 * time.Minute
	MinCheckEvery        = 10 * time.Millisecond // a guard against a busy loop; the config asks for 1s at least
)

// Options configure a Policy.
type Options struct {
	Command []string // argv that brings the link up; no shell
	Iface   string   // the link it brings up (for the budget gate); may be ""

	QueueAge   time.Duration // dial when mail waits longer than this; 0: off
	QueueCount int           // dial when more messages than this wait; 0: off
	At         []Clock       // dial at these local times
	Every      time.Duration // dial this often; 0: off
	Windows    []Window      // dial only inside these (none: any time)
	Never      []Window      // never dial inside these

	AppearTimeout time.Duration // default DefaultAppearTimeout
	Retries       int           // retries after a failed dial
	Backoff       time.Duration // first retry's wait (default DefaultBackoff)
	BackoffMax    time.Duration // cap (default DefaultBackoffMax)
	// CheckEvery is how often the queue is listed; default
	// min(QueueAge/4, DefaultCheckEvery), at least MinCheckEvery.
	CheckEvery time.Duration

	// ListQueue lists the outbound queue (nil: no queue triggers).
	ListQueue func(ctx context.Context) (Queue, error)
	// Busy says why no dial may start now ("a run is in flight", "ppp0 is
	// already up"); "" when one may. The daemon's; nil: never busy.
	Busy   func() string
	Gate   BudgetGate       // nil: no budget
	Now    func() time.Time // nil: time.Now (tests move the wall clock)
	Logger *slog.Logger
}

// Status is the policy's state for `linkctl status`.
type Status struct {
	Command    []string  `json:"command"`
	Next       time.Time `json:"next,omitzero"`      // next time the policy looks
	NextWhy    string    `json:"next_why,omitempty"` // what it looks at then
	Holding    string    `json:"holding,omitempty"`  // why the last wanted dial did not start
	Dialing    bool      `json:"dialing,omitempty"`  // a dial is in progress
	LastAt     time.Time `json:"last_at,omitzero"`   // the last dial's start
	LastCause  string    `json:"last_cause,omitempty"`
	LastResult string    `json:"last_result,omitempty"` // "link up after 3.1s", "failed: ..."
	Failures   int       `json:"failures,omitempty"`    // failed attempts in a row
	GaveUp     time.Time `json:"gave_up,omitzero"`      // when the retries ran out (zero: not given up)
	Dials      int       `json:"dials"`                 // attempts since the daemon started
}

// Policy decides when to dial. Create it with New; the daemon calls Run in
// a goroutine and Link on every edge.
type Policy struct {
	log  *slog.Logger
	poke chan struct{} // wakes Run when Update has changed the options

	mu      sync.Mutex
	opts    Options // replaced by Update
	gen     int     // counts Updates
	up      bool
	upCh    chan struct{} // closed at the next up edge
	lastUp  time.Time     // when the link was last seen up (policy clock)
	dialing bool
	st      Status
}

// New returns a policy; opts are defaulted here. A policy without a
// Command never dials (until Update gives it one).
func New(opts Options) *Policy {
	opts = defaults(opts)
	p := &Policy{opts: opts, log: opts.Logger, poke: make(chan struct{}, 1), upCh: make(chan struct{})}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.st.Command = opts.Command
	return p
}

// defaults fills in what opts leave out.
func defaults(opts Options) Options {
	if opts.AppearTimeout <= 0 {
		opts.AppearTimeout = DefaultAppearTimeout
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = max(DefaultBackoffMax, opts.Backoff)
	}
	if opts.CheckEvery <= 0 {
		opts.CheckEvery = DefaultCheckEvery
		if opts.QueueAge > 0 {
			opts.CheckEvery = min(opts.QueueAge/4, DefaultCheckEvery)
		}
	}
	opts.CheckEvery = max(opts.CheckEvery, MinCheckEvery)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Busy == nil {
		opts.Busy = func() string { return "" }
	}
	return opts
}

// Update replaces the policy's options (a reloaded config): Run starts
// its schedule again from the new triggers, a failed dial's pending
// retries are dropped, and a dial in progress finishes with the command
// it started. The status (last dial, failures) is kept.
func (p *Policy) Update(opts Options) {
	opts = defaults(opts)
	p.mu.Lock()
	p.opts = opts
	p.st.Command = opts.Command
	p.gen++
	p.mu.Unlock()
	select {
	case p.poke <- struct{}{}:
	default:
	}
}

// Enabled reports whether the policy has a command to dial with.
func (p *Policy) Enabled() bool { return len(p.options().Command) > 0 }

// options returns the current options (see Update).
func (p *Policy) options() Options {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.opts
}

func queueTriggers(o Options) bool {
	return o.ListQueue != nil && (o.QueueAge > 0 || o.QueueCount > 0)
}

// Link tells the policy the watched link went up or down (the watcher's
// edges): an up edge ends a dial's wait, and mail queued before the link
// was last up had its chance and does not trigger a dial.
func (p *Policy) Link(up bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if up && !p.up {
		close(p.upCh)
	}
	if !up && p.up {
		p.upCh = make(chan struct{})
	}
	p.up = up
	p.lastUp = p.opts.Now()
}

// upChan returns a channel closed when the link is (next) up.
func (p *Policy) upChan() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.upCh
}

// Status returns the policy's state.
func (p *Policy) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// due is what woke the policy.
type due struct {
	at     time.Time
	why    string // "queue check", "at 06:00", "every 4h", "retry 2 of 3"
	kind   int
	retryN int
}

const (
	kindQueue = iota
	kindAt
	kindEvery
	kindRetry
)

// Run is the policy's loop; it returns when ctx ends.
func (p *Policy) Run(ctx context.Context) {
	var (
		nextCheck, nextEvery, holdUntil time.Time
		atAfter                         time.Time // fixed times after this one are due
		retry                           *due      // a retry pending
		retryCause                      string
		o                               Options
		gen                             = -1
	)
	for {
		// The options of this turn; new ones (Update) start the schedule
		// again, as at the daemon's start.
		p.mu.Lock()
		changed := p.gen != gen
		o, gen = p.opts, p.gen
		p.mu.Unlock()
		now := o.Now()
		if changed {
			nextCheck, nextEvery, holdUntil, retry = time.Time{}, time.Time{}, time.Time{}, nil
			if atAfter.IsZero() {
				atAfter = now
			}
			if queueTriggers(o) {
				nextCheck = now // look at once: the daemon may start with mail waiting
			}
			if o.Every > 0 {
				nextEvery = now.Add(o.Every)
			}
			if gen > 0 && len(o.Command) > 0 {
				p.log.Info("dial settings reloaded", "command", strings.Join(o.Command, " "))
			}
		}
		var cands []due
		// Without a command (no dial section) nothing is due until an
		// Update gives one.
		if len(o.Command) > 0 {
			if !nextCheck.IsZero() {
				cands = append(cands, due{at: nextCheck, why: "queue check", kind: kindQueue})
			}
			if !nextEvery.IsZero() {
				cands = append(cands, due{at: nextEvery, why: "every " + o.Every.String(), kind: kindEvery})
			}
			// A fixed time missed by more than a minute (the host slept) is
			// not made up for, nor are several at once.
			if t := NextAt(maxTime(atAfter, now.Add(-time.Minute)), o.At); !t.IsZero() {
				cands = append(cands, due{at: t, why: "at " + minuteOfDay(t).String(), kind: kindAt})
			}
			if retry != nil {
				cands = append(cands, *retry)
			}
		}
		if len(cands) == 0 {
			p.setNext(time.Time{}, "")
			select {
			case <-ctx.Done():
				return
			case <-p.poke:
				continue
			}
		}
		next := cands[0]
		for _, c := range cands[1:] {
			if c.at.Before(next.at) {
				next = c
			}
		}
		p.setNext(next.at, next.why)
		if wait := next.at.Sub(now); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-p.poke:
				t.Stop()
				continue
			case <-t.C:
			}
		}
		now = o.Now()
		switch next.kind {
		case kindQueue:
			nextCheck = now.Add(o.CheckEvery)
		case kindEvery:
			nextEvery = now.Add(o.Every)
		case kindAt:
			atAfter = next.at
		case kindRetry:
			retry = nil
		}

		cause := next.why
		if next.kind == kindRetry {
			cause = retryCause
		}
		if retry != nil && next.kind != kindRetry {
			continue // a failed dial's retry is due: it is this dial, on its backoff
		}
		if next.kind == kindQueue && now.Before(holdUntil) {
			continue
		}
		if why := p.blocked(o, now, true); why != "" {
			if next.kind == kindRetry {
				// The link came up some other way, or a run holds it: the
				// failed dial's retries are moot.
				p.resetFailures()
			}
			p.hold(why, cause, next.kind == kindQueue)
			continue
		}
		if next.kind == kindQueue {
			want, why := p.queueWants(ctx, o, now)
			if !want {
				p.hold("", "", false)
				if why != "" {
					p.log.Debug("dial: not needed", "queue", why)
				}
				continue
			}
			cause = why
		}
		p.hold("", "", false)
		err := p.attempt(ctx, o, gen, cause)
		if ctx.Err() != nil {
			return
		}
		if err == errStale {
			continue
		}
		if err == nil {
			retry = nil
			continue
		}
		st := p.Status()
		if st.Failures <= o.Retries {
			wait := Backoff(st.Failures, o.Backoff, o.BackoffMax)
			retry = &due{at: o.Now().Add(wait), why: fmt.Sprintf("retry %d of %d", st.Failures, o.Retries), kind: kindRetry}
			retryCause = cause + " (" + retry.why + ")"
			p.log.Warn("dial failed: retrying", "err", err, "in", wait, "retry", st.Failures, "of", o.Retries)
			continue
		}
		holdUntil = o.Now().Add(o.BackoffMax)
		p.mu.Lock()
		p.st.GaveUp = o.Now()
		p.st.Failures = 0
		p.mu.Unlock()
		p.log.Error("dial failed: giving up", "err", err, "attempts", o.Retries+1, "queue_dials_resume", holdUntil.Format(time.RFC3339))
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// blocked says why no dial may start now.
func (p *Policy) blocked(o Options, now time.Time, windows bool) string {
	if why := o.Busy(); why != "" {
		return why
	}
	if windows {
		if ok, why := Allowed(now, o.Windows, o.Never); !ok {
			return why
		}
	}
	if o.Gate != nil {
		if why, spent := o.Gate.Spent(o.Iface); spent {
			return "budget spent: " + why
		}
	}
	return ""
}

func (p *Policy) hold(why, cause string, quiet bool) {
	p.mu.Lock()
	changed := p.st.Holding != why
	p.st.Holding = why
	p.mu.Unlock()
	if why != "" && changed && !quiet {
		p.log.Info("dial wanted but not started", "cause", cause, "why", why)
	} else if why != "" {
		p.log.Debug("dial not started", "cause", cause, "why", why)
	}
}

func (p *Policy) resetFailures() {
	p.mu.Lock()
	p.st.Failures = 0
	p.mu.Unlock()
}

func (p *Policy) setNext(t time.Time, why string) {
	p.mu.Lock()
	p.st.Next, p.st.NextWhy = t, why
	p.mu.Unlock()
}

// queueWants lists the queue and says whether it asks for a dial, and why.
func (p *Policy) queueWants(ctx context.Context, o Options, now time.Time) (bool, string) {
	q, err := o.ListQueue(ctx)
	if err != nil {
		p.log.Warn("dial: cannot list the outbound queue", "err", err)
		return false, ""
	}
	p.mu.Lock()
	since := p.lastUp
	p.mu.Unlock()
	n := 0
	var oldest time.Duration
	for _, a := range q.Arrivals {
		if !a.IsZero() && !since.IsZero() && !a.After(since) {
			continue // the last link saw it: the MTA retries it on the next one
		}
		n++
		if !a.IsZero() {
			oldest = max(oldest, now.Sub(a))
		}
	}
	switch {
	case o.QueueAge > 0 && oldest >= o.QueueAge:
		return true, fmt.Sprintf("outbound mail waiting %s (%d message(s))", oldest.Round(time.Second), n)
	case o.QueueCount > 0 && n > o.QueueCount:
		return true, fmt.Sprintf("%d outbound messages waiting (more than %d)", n, o.QueueCount)
	}
	return false, fmt.Sprintf("%d message(s), oldest %s", n, oldest.Round(time.Second))
}

// errStale: the options changed between Run's decision and its dial.
var errStale = errors.New("dial options changed")

// ErrBusy is wrapped by DialNow when the host, or another dial, refuses.
var ErrBusy = errors.New("no dial")

// DialNow dials once by hand (`linkctl dial`): windows and triggers do not
// apply; a run in flight, the link already up, another dial in progress
// and a spent budget do.
func (p *Policy) DialNow(ctx context.Context) (string, error) {
	o := p.options()
	if len(o.Command) == 0 {
		return "", errkind.Permanent(errkind.Usage, "dial", "no dial command configured")
	}
	if why := p.blocked(o, o.Now(), false); why != "" {
		return "", errkind.WrapTemporary(errkind.Usage, "dial", fmt.Errorf("%w: %s", ErrBusy, why))
	}
	if err := p.attempt(ctx, o, -1, "linkctl dial"); err != nil {
		return "", err
	}
	return p.Status().LastResult, nil
}

// attempt dials once and records the result. gen is the generation of o
// (Update); -1 dials whatever the current one (DialNow).
func (p *Policy) attempt(ctx context.Context, o Options, gen int, cause string) error {
	p.mu.Lock()
	if gen >= 0 && gen != p.gen {
		// Update came after Run decided: the decision was the old
		// options'. Run decides again with the new ones.
		p.mu.Unlock()
		return errStale
	}
	if p.dialing {
		p.mu.Unlock()
		return errkind.WrapTemporary(errkind.Usage, "dial", fmt.Errorf("%w: a dial is already in progress", ErrBusy))
	}
	p.dialing = true
	start := o.Now()
	p.st.Dialing, p.st.LastAt, p.st.LastCause = true, start, cause
	p.st.Dials++
	p.mu.Unlock()
	p.log.Info("dialing", "cause", cause, "command", strings.Join(o.Command, " "), "appear_timeout", o.AppearTimeout)
	took, err := Attempt(ctx, o.Command, p.upChan(), o.AppearTimeout)
	p.mu.Lock()
	p.dialing, p.st.Dialing = false, false
	if err != nil {
		p.st.Failures++
		p.st.LastResult = "failed: " + err.Error()
	} else {
		p.st.Failures, p.st.GaveUp = 0, time.Time{}
		p.st.LastResult = fmt.Sprintf("link up after %s", took.Round(100*time.Millisecond))
	}
	res := p.st.LastResult
	p.mu.Unlock()
	if err == nil {
		p.log.Info("dial: "+res, "cause", cause)
	}
	return err
}

// Attempt runs argv and waits until up is closed (the link came up), at
// most timeout from the start. The command may return at once (pon starts
// pppd in the background), when the link is up (nmcli connection up), or
// stay (pppd nodetach): once the link is up it is left to run. A command
// that fails before the link is up is an error at once, its output
// quoted; one still running when the link did not appear in time is
// killed.
func Attempt(ctx context.Context, argv []string, up <-chan struct{}, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	if len(argv) == 0 {
		return 0, errkind.Permanent(errkind.Usage, "dial", "no dial command")
	}
	op := "dial: " + strings.Join(argv, " ")
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return 0, errkind.Permanent(errkind.Usage, op, "%s not found in $PATH: install it or give its full path in dial.command", argv[0])
	}
	cmd := exec.Command(path, argv[1:]...)
	out := &capBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = out, out // dial scripts talk on either
	// A child left in the background holding the output open (pon starts
	// pppd) must not keep Wait from returning.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return 0, errkind.WrapTemporary(errkind.Network, op, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // also reaps a command left running
	kill := func() {
		if exited != nil {
			cmd.Process.Kill()
			<-exited
		}
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-up:
			return time.Since(start), nil
		case err := <-exited:
			exited = nil
			if err != nil {
				code := -1
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				}
				return time.Since(start), errkind.Temporary(errkind.Network, op, "exit status %d: %q", code, out.String())
			}
		case <-ctx.Done():
			kill()
			return time.Since(start), errkind.WrapTemporary(errkind.Network, op, context.Cause(ctx))
		case <-t.C:
			kill()
			return time.Since(start), errkind.Temporary(errkind.Network, op,
				"the link did not come up within %s (dial.appear_timeout)", timeout)
		}
	}
}

// capBuffer keeps the first max bytes written, for the error message.
type capBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (c *capBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (c *capBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.TrimSpace(c.buf.String())
}
