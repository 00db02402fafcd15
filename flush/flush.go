// Package flush runs the local MTA's outbound queue while the link is up
// and tells when it has gone out, which the MTA itself never does:
// `postqueue -f` only asks for a queue run.
//
// The flow of [Run]: pick the driver ([NewDriver]: Postfix, sendmail,
// Exim, OpenSMTPD, found by `mta: auto` or named, or the user's own
// commands); list the queue (the snapshot: what was waiting before the
// flush); run the flush command; then poll the listing, 1 s at first and
// backing off, until no message of the snapshot is still waiting for its
// first attempt of this run. A message counts as attempted when it has
// left the queue (delivered, or bounced), when it was seen being delivered
// (active, inflight), when its last-attempt time or its deferral reason
// changed since the flush started, when the flush command itself ran the
// queue in the foreground (exim -qff, sendmail -q), or, for MTAs that run
// it in the background (Postfix, OpenSMTPD), when nothing at all has been
// in delivery for Settle after the flush (the queue manager has been
// through the queue and deferred the rest again: a refused connection
// defers a message in milliseconds, faster than any poll). Messages
// deferred again are done-but-deferred and reported with their reason;
// messages queued after the flush started are counted as new, not waited
// for; held, frozen or quarantined mail is counted apart. Timeout ends the
// wait with a temporary error.
//
// A message another process is delivering right now is waited for, not
// reported as deferred: Postfix, sendmail and OpenSMTPD mark it in their
// listing (active, "*"/"X", inflight); Exim does not, so its driver asks
// the kernel whether the message's spool file is locked (see
// eximInDelivery). Before OpenSMTPD's flush the routes it disabled after
// failed connections are resumed. Sendmail's quarantined mail, which
// `sendmail -bp` leaves out, is listed with `-qQ -bp` and counted as held.
// When the queue run is over and mail is still deferred, Run returns the
// result with an error wrapping [ErrDeferred] (errkind.Deferred, exit
// status 21, temporary): a connection script can tell that outbound mail
// is still here, and the pipeline goes on to its next stages.
//
// Every command is an argv slice run without a shell, with a timeout and
// linkctl's environment plus Options.Env (so MAIL_CONFIG selects a Postfix
// instance); Options.Command and Options.Args point a named driver at a
// binary and a second instance's config. stderr is quoted in errors; exit
// 75 is temporary; a missing binary is a permanent error with a hint.
// The package never reads or writes queue files: it runs the MTA's own
// commands, and for Exim only tests the lock on a spool file.
package flush

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
)

// Wait modes, as in the config's `wait:` key.
const (
	WaitDrained = "drained"
	WaitNone    = "none"
)

// Options configure the flush stage. The zero value flushes the MTA found
// by auto-detection and waits up to 5 minutes for the queue to drain.
type Options struct {
	MTA          string   // auto (default) | postfix | sendmail | exim | opensmtpd | command
	Wait         string   // drained (default) | none
	FlushCommand []string // mta: command
	ListCommand  []string // mta: command; without it there is no drain wait
	// Command points a named driver at its queue command's binary
	// (/usr/sbin/exim4, /usr/local/sbin/sendmail, postqueue, smtpctl);
	// "" finds it in $PATH. Args go before the driver's own arguments:
	// [-C, /etc/exim4/second.conf] for a second Exim, [-c,
	// /etc/postfix-out] for a Postfix instance. Both need a named MTA.
	Command string
	Args    []string
	// Timeout bounds the drain wait, and the flush command of an MTA that
	// runs the queue in the foreground (default 5m).
	Timeout time.Duration
	// ExecTimeout bounds each listing (default 60s).
	ExecTimeout time.Duration
	// Env is added to linkctl's environment for every command
	// ("MAIL_CONFIG=/etc/postfix-out"), named driver or not.
	Env []string
	// Poll is the first interval between listings (default 1s); it backs
	// off by half up to 10 s.
	Poll time.Duration
	// Settle is how long nothing may be in delivery, after the flush, for
	// a background queue run to count as finished (default 2s).
	Settle time.Duration
	Logger *slog.Logger
	// Driver, when set, is used instead of MTA (tests, odd set-ups).
	Driver *Driver
}

// Deferred is a message that was attempted during the run and is still
// queued.
type Deferred struct {
	ID         string
	Recipients int
	Reason     string // the MTA's words, "" when it does not say
}

// Result is what the flush stage did.
type Result struct {
	MTA       string // the driver used ("postfix"; auto says which it found)
	Started   bool   // the flush command ran without error
	Waited    bool   // the drain wait ran
	Drained   bool   // nothing queued before the flush still waits for its attempt
	Before    int    // messages queued before the flush (not held)
	Delivered int    // of those, gone from the queue (delivered, or bounced)
	Deferred  []Deferred
	Waiting   int // of those, still waiting when the wait ended (timeout)
	Held      int // held, frozen, quarantined or paused: not sent by a flush
	New       int // queued after the flush started
	Elapsed   time.Duration
}

// Counts returns named figures for metrics and the pipeline report.
func (r Result) Counts() map[string]int64 {
	return map[string]int64{"queued": int64(r.Before), "delivered": int64(r.Delivered), "deferred": int64(len(r.Deferred)),
		"waiting": int64(r.Waiting), "held": int64(r.Held), "new": int64(r.New)}
}

// Reasons groups the deferral reasons: "connect to ...: Connection
// refused" -> 3.
func (r Result) Reasons() map[string]int {
	m := map[string]int{}
	for _, d := range r.Deferred {
		reason := d.Reason
		if reason == "" {
			reason = "reason not given by the MTA"
		}
		m[reason]++
	}
	return m
}

// Summary is one line for the run summary and status.
func (r Result) Summary() string {
	if !r.Started {
		// The listing before the flush, or the flush itself, failed:
		// the error says why; the summary must not claim a queue run.
		return r.MTA + ": no queue run started"
	}
	if !r.Waited {
		return fmt.Sprintf("%s: queue run started for %d message(s) (not waiting)", r.MTA, r.Before)
	}
	if r.Before == 0 {
		s := r.MTA + ": nothing was queued"
		if r.Held > 0 {
			s += fmt.Sprintf(" (%d held)", r.Held)
		}
		return s
	}
	parts := []string{fmt.Sprintf("%d of %d delivered", r.Delivered, r.Before)}
	if len(r.Deferred) > 0 {
		reasons := r.Reasons()
		keys := make([]string, 0, len(reasons))
		for k := range reasons {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			return reasons[keys[i]] > reasons[keys[j]] || reasons[keys[i]] == reasons[keys[j]] && keys[i] < keys[j]
		})
		var rs []string
		for _, k := range keys {
			if len(keys) == 1 {
				rs = append(rs, k)
			} else {
				rs = append(rs, fmt.Sprintf("%d: %s", reasons[k], k))
			}
		}
		parts = append(parts, fmt.Sprintf("%d deferred: %s", len(r.Deferred), strings.Join(rs, "; ")))
	}
	if r.Waiting > 0 {
		parts = append(parts, fmt.Sprintf("%d still waiting", r.Waiting))
	}
	if r.Held > 0 {
		parts = append(parts, fmt.Sprintf("%d held", r.Held))
	}
	if r.New > 0 {
		parts = append(parts, fmt.Sprintf("%d new", r.New))
	}
	var state string
	switch {
	case !r.Drained:
		state = "not drained"
	case len(r.Deferred) == 0:
		state = "drained"
	default:
		state = "queue run over"
	}
	return fmt.Sprintf("%s: %s; %s after %v", r.MTA, strings.Join(parts, ", "), state, r.Elapsed.Round(100*time.Millisecond))
}

// Run flushes the local MTA's queue and, unless Wait is none, waits until
// it has drained (see the package comment).
func Run(ctx context.Context, opts Options, sink event.Sink) (Result, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d, err := DriverOf(opts)
	if err != nil {
		return Result{}, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Settle <= 0 {
		opts.Settle = 2 * time.Second
	}
	res := Result{MTA: d.Name}
	lister := &Runner{Env: opts.Env, Timeout: opts.ExecTimeout}
	flusher := &Runner{Env: opts.Env, Timeout: opts.ExecTimeout}
	if d.Sync {
		flusher.Timeout = opts.Timeout
	}
	log.Info("flushing the outbound queue", "mta", d.Name, "found", d.Found, "flush", d.Flush, "list", d.List)
	note := "mta " + d.Name + ": " + strings.Join(d.Flush, " ")
	if d.Found != "" {
		note = "mta auto found " + d.Name + " (" + d.Found + "): " + strings.Join(d.Flush, " ")
	}
	sink.Emit(event.Event{Type: event.Note, Account: d.Name, Text: note})

	// The snapshot: what waits before the flush.
	pre := map[string]Message{}
	var before map[string]bool
	if len(d.List) > 0 {
		msgs, err := listQueue(ctx, lister, d)
		if err != nil {
			return res, err
		}
		before = map[string]bool{}
		for _, m := range msgs {
			before[m.ID] = true
			if m.Held && !d.FlushesHeld {
				res.Held++
				continue
			}
			pre[m.ID] = m
		}
		res.Before = len(pre)
	}
	start := time.Now()
	if d.BeforeFlush != nil {
		if err := d.BeforeFlush(ctx, lister); err != nil {
			return res, errkind.WrapTemporary(errkind.Delivery, "flush: "+d.Name, err)
		}
	}
	if _, err := flusher.Run(ctx, d.Flush); err != nil {
		return res, err
	}
	res.Started = true
	if opts.Wait == WaitNone || len(d.List) == 0 {
		if len(d.List) == 0 {
			log.Info("no list command: not waiting for the queue to drain")
		}
		res.Elapsed = time.Since(start)
		return res, nil
	}
	res.Waited = true

	seenActive := map[string]bool{}
	idleSince := time.Time{} // when nothing was last seen in delivery
	poll := opts.Poll
	if d.Sync {
		poll = 0 // the queue run is over: look once, now
	}
	for {
		if poll > 0 {
			t := time.NewTimer(poll)
			select {
			case <-ctx.Done():
				t.Stop()
				res.Elapsed = time.Since(start)
				return res, errkind.WrapTemporary(errkind.Delivery, "flush: waiting for the queue to drain", context.Cause(ctx))
			case <-t.C:
			}
			poll = min(poll*3/2, 10*time.Second)
		} else {
			poll = opts.Poll
		}
		msgs, err := listQueue(ctx, lister, d)
		if err != nil {
			res.Elapsed = time.Since(start)
			return res, err
		}
		now := time.Now()
		anyActive := false
		for _, m := range msgs {
			if m.Active {
				anyActive = true
				seenActive[m.ID] = true
			}
		}
		if anyActive {
			idleSince = time.Time{}
		} else if idleSince.IsZero() {
			idleSince = now
		}
		settled := !anyActive && now.Sub(idleSince) >= opts.Settle
		res.Delivered, res.Deferred, res.Waiting, res.New = 0, nil, 0, 0
		present := map[string]Message{}
		for _, m := range msgs {
			present[m.ID] = m
			if !before[m.ID] {
				res.New++
			}
		}
		for id, old := range pre {
			m, ok := present[id]
			switch {
			case !ok:
				res.Delivered++
			case m.Active:
				res.Waiting++
			case d.Sync || settled || seenActive[id] || m.Reason != old.Reason ||
				// OpenSMTPD's lasttry has whole seconds.
				!m.LastTry.IsZero() && !m.LastTry.Before(start.Truncate(time.Second)):
				res.Deferred = append(res.Deferred, Deferred{ID: id, Recipients: len(m.Recipients), Reason: m.Reason})
			default:
				res.Waiting++
			}
		}
		res.Elapsed = time.Since(start)
		done := res.Before - res.Waiting
		sink.Emit(event.Event{Type: event.Progress, Account: d.Name, Count: done, Total: res.Before,
			Text: fmt.Sprintf("%d delivered, %d deferred, %d waiting", res.Delivered, len(res.Deferred), res.Waiting)})
		if res.Waiting == 0 {
			res.Drained = true
			sort.Slice(res.Deferred, func(i, j int) bool { return res.Deferred[i].ID < res.Deferred[j].ID })
			if d.Reasons != nil {
				for i := range res.Deferred {
					if res.Deferred[i].Reason == "" && i < 20 {
						for _, r := range d.Reasons(ctx, lister, res.Deferred[i].ID) {
							res.Deferred[i].Reason = r
							break
						}
					}
				}
			}
			log.Info("outbound queue run over", "summary", res.Summary())
			if len(res.Deferred) > 0 {
				return res, deferredErr(res)
			}
			return res, nil
		}
		if !anyActive && !settled && !d.Sync {
			// Look again as soon as the queue can count as settled.
			poll = max(min(poll, opts.Settle-now.Sub(idleSince)+10*time.Millisecond), 10*time.Millisecond)
		}
		if now.Sub(start) >= opts.Timeout {
			return res, errkind.Temporary(errkind.Network, "flush: "+d.Name,
				"outbound queue not drained after %v: %d of %d message(s) still waiting for delivery (link too slow? raise flush.timeout)",
				opts.Timeout, res.Waiting, res.Before)
		}
	}
}

// ErrDeferred is wrapped by the error [Run] returns when its queue run is
// over and mail queued before it is still deferred: the MTA keeps it and
// retries on its own, but a connection script must be able to tell that
// outbound mail is still here (errkind.Deferred, temporary).
var ErrDeferred = errors.New("outbound mail still deferred")

func deferredErr(res Result) error {
	// The summary names the MTA, the counts and the reasons: the run's
	// report shows this error in place of the summary.
	return errkind.WrapTemporary(errkind.Deferred, "flush", fmt.Errorf("%w: %s", ErrDeferred, res.Summary()))
}

func listQueue(ctx context.Context, r *Runner, d Driver) ([]Message, error) {
	var msgs []Message
	seen := map[string]bool{}
	for _, argv := range append([][]string{d.List}, d.MoreLists...) {
		out, err := r.Run(ctx, argv)
		if err != nil {
			return nil, err
		}
		part, err := d.Parse(out)
		if err != nil {
			return nil, errkind.WrapPermanent(errkind.Protocol, "flush: "+strings.Join(argv, " "), err)
		}
		for _, m := range part {
			if !seen[m.ID] {
				seen[m.ID] = true
				msgs = append(msgs, m)
			}
		}
	}
	if d.InDelivery != nil {
		busy := d.InDelivery(ctx, r, msgs)
		for i := range msgs {
			if busy[msgs[i].ID] {
				msgs[i].Active, msgs[i].Queue = true, "in delivery"
			}
		}
	}
	return msgs, nil
}

// List lists the outbound queue with the driver Run would use, without
// flushing it (dial on demand reads it for the age and count of waiting
// mail). An MTA without a list command (mta: command without
// list_command) is a usage error.
func List(ctx context.Context, opts Options) ([]Message, error) {
	d, err := DriverOf(opts)
	if err != nil {
		return nil, err
	}
	if len(d.List) == 0 {
		return nil, errkind.Permanent(errkind.Usage, "flush: "+d.Name, "no list command: set flush.list_command to read the queue")
	}
	return listQueue(ctx, &Runner{Env: opts.Env, Timeout: opts.ExecTimeout}, d)
}

// DriverOf is the driver opts name: the given one (tests), or the named
// MTA's from its binary and arguments (flush.command, flush.args), so
// that the queue run and every listing (the drain wait, dial on demand,
// plan) speak to the same instance.
func DriverOf(opts Options) (Driver, error) {
	if opts.Driver != nil {
		return *opts.Driver, nil
	}
	return NewDriverAt(opts.MTA, opts.Command, opts.Args, opts.FlushCommand, opts.ListCommand)
}
