package etrn

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/internal/sessions"
)

// SessionCounter counts the ESTABLISHED inbound TCP sessions on the given
// local ports; loopback peers count only when countLoopback is set.
type SessionCounter func(ports []int, countLoopback bool) (int, error)

// CountInbound is the SessionCounter that asks the kernel (package
// internal/sessions, the counter the drop stage uses too) for inbound TCP
// sessions on ports in the current network namespace.
func CountInbound(ports []int, countLoopback bool) (int, error) {
	return sessions.Inbound(nil, ports, countLoopback)
}

// QuietOptions configure WaitQuiet.
type QuietOptions struct {
	Quiet         time.Duration  // no inbound session for this long = quiet (default 20s)
	Max           time.Duration  // give up waiting after this long (default 5m)
	Ports         []int          // local SMTP ports (default [25])
	CountLoopback bool           // count loopback peers (tests)
	Poll          time.Duration  // how often to look (default Quiet/4, at most 250ms: a dump is cheap)
	Counter       SessionCounter // default CountInbound
	Logger        *slog.Logger
}

// QuietResult says how the wait ended.
type QuietResult struct {
	Waited      bool          // the wait ran (false: skipped)
	WentQuiet   bool          // inbound was idle for Quiet (false: Max reached, or counting failed)
	Elapsed     time.Duration // how long it waited
	MaxSessions int           // the most inbound sessions seen at once
	Err         error         // counting failed: the wait slept Quiet instead
}

// WaitQuiet waits until no inbound SMTP session has been open for
// opts.Quiet, or opts.Max has passed: after ETRN the relay delivers over
// new connections to our MX, and the link must stay up until they are
// done (DESIGN.md: the link is never dropped while inbound sessions are
// open). Reaching Max is reported in the result, not an error. If the
// sessions cannot be counted the wait sleeps Quiet once, reports Err, and
// does not claim quiet.
func WaitQuiet(ctx context.Context, opts QuietOptions, sink event.Sink) QuietResult {
	if opts.Quiet <= 0 {
		opts.Quiet = 20 * time.Second
	}
	if opts.Max <= 0 {
		opts.Max = 5 * time.Minute
	}
	if opts.Max < opts.Quiet {
		opts.Max = opts.Quiet
	}
	if len(opts.Ports) == 0 {
		opts.Ports = []int{25}
	}
	if opts.Poll <= 0 {
		opts.Poll = min(opts.Quiet/4, 250*time.Millisecond)
		opts.Poll = max(opts.Poll, 10*time.Millisecond)
	}
	if opts.Counter == nil {
		opts.Counter = CountInbound
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	res := QuietResult{Waited: true}
	lastBusy := start
	last := -1
	tick := time.NewTicker(opts.Poll)
	defer tick.Stop()
	for {
		n, err := opts.Counter(opts.Ports, opts.CountLoopback)
		now := time.Now()
		if err != nil {
			res.Err = err
			log.Warn("cannot count inbound SMTP sessions; waiting the quiet time once", "err", err)
			sink.Emit(event.Event{Type: event.Note, Text: fmt.Sprintf("cannot count inbound SMTP sessions (%v); waiting %v", err, opts.Quiet)})
			select {
			case <-ctx.Done():
			case <-time.After(opts.Quiet):
			}
			res.Elapsed = time.Since(start)
			return res
		}
		if n > 0 {
			lastBusy = now
			res.MaxSessions = max(res.MaxSessions, n)
		}
		if n != last {
			log.Debug("inbound SMTP sessions", "count", n, "ports", opts.Ports)
			sink.Emit(event.Event{Type: event.Progress, Count: n, Text: fmt.Sprintf("%d inbound SMTP session(s) open", n)})
			last = n
		}
		if n == 0 && now.Sub(lastBusy) >= opts.Quiet {
			res.WentQuiet = true
			res.Elapsed = now.Sub(start)
			return res
		}
		if now.Sub(start) >= opts.Max {
			res.Elapsed = now.Sub(start)
			return res
		}
		select {
		case <-ctx.Done():
			res.Elapsed = time.Since(start)
			return res
		case <-tick.C:
		}
	}
}
