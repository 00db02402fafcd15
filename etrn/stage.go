package etrn

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
)

// StageOptions configure the etrn stage.
type StageOptions struct {
	Servers []Server
	// Parallel is how many relays are asked at once (default 4).
	Parallel int
	// The inbound-quiet wait after the ETRNs (see QuietOptions): Quiet
	// caps the learned window, Floor is its least.
	Quiet      time.Duration
	QuietFloor time.Duration
	QuietMax   time.Duration
	// StateDir, when set, keeps what the wait learned about the link
	// (LearnedFile) for the next run.
	StateDir      string
	Ports         []int
	CountLoopback bool
	Counter       SessionCounter // default CountInbound (tests swap it)
	// Trace, when set, receives each relay's transcript (AUTH redacted).
	Trace  func(server, line string)
	Logger *slog.Logger
}

// Result is what the etrn stage did.
type Result struct {
	Servers []ServerResult
	// NothingWaiting: every reply was 251, so no mail is coming and the
	// quiet wait was skipped.
	NothingWaiting bool
	// QuietSkipped says why the wait did not run ("" when it ran).
	QuietSkipped string
	Quiet        QuietResult
}

// WentQuiet reports whether inbound SMTP is known to have finished: the
// wait saw it quiet, or nothing was coming.
func (r Result) WentQuiet() bool { return r.Quiet.WentQuiet || r.NothingWaiting }

// Counts returns named figures for metrics and the pipeline report.
func (r Result) Counts() map[string]int64 {
	var started, nothing, failed int64
	for _, s := range r.Servers {
		for _, d := range s.Domains {
			switch {
			case d.Err != nil:
				failed++
			case d.Outcome == NothingWaiting:
				nothing++
			default:
				started++
			}
		}
	}
	quiet := int64(0)
	if r.WentQuiet() {
		quiet = 1
	}
	// inbound_quiet (1/0) carries WentQuiet into the run report and
	// metrics.
	return map[string]int64{"started": started, "nothing_waiting": nothing, "refused": failed,
		"inbound_sessions_max": int64(r.Quiet.MaxSessions), "inbound_quiet": quiet}
}

// Summary is one line for the run summary and status.
func (r Result) Summary() string {
	c := r.Counts()
	var parts []string
	if n := c["started"]; n > 0 {
		parts = append(parts, fmt.Sprintf("%d started", n))
	}
	if n := c["nothing_waiting"]; n > 0 {
		parts = append(parts, fmt.Sprintf("%d nothing waiting", n))
	}
	if n := c["refused"]; n > 0 {
		parts = append(parts, fmt.Sprintf("%d not accepted", n))
	}
	s := fmt.Sprintf("%d relay(s): %s", len(r.Servers), strings.Join(parts, ", "))
	switch {
	case r.QuietSkipped != "":
		s += "; quiet wait skipped: " + r.QuietSkipped
	case r.Quiet.Err != nil:
		s += fmt.Sprintf("; could not watch inbound sessions (%v), waited %v", r.Quiet.Err, r.Quiet.Elapsed.Round(time.Second))
	case r.Quiet.WentQuiet:
		s += fmt.Sprintf("; inbound quiet after %v", r.Quiet.Elapsed.Round(100*time.Millisecond))
	default:
		s += fmt.Sprintf("; inbound still busy at quiet_max (%v)", r.Quiet.Elapsed.Round(time.Second))
	}
	return s
}

// RunStage asks every relay (at most Parallel at once) to release the
// mail it holds for our domains, then waits for inbound SMTP to go quiet.
// The wait is skipped when every reply was 251 (nothing waiting) or no
// request was accepted. The error, when a relay failed or refused, is the
// first one's (classified with errkind: Refused, Network, Auth, Protocol);
// the result is complete either way.
func RunStage(ctx context.Context, opts StageOptions, sink event.Sink) (Result, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	par := opts.Parallel
	if par <= 0 {
		par = 4
	}
	res := Result{Servers: make([]ServerResult, len(opts.Servers))}
	probes := make([]rttProbe, len(opts.Servers))
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, srv := range opts.Servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				res.Servers[i] = failAll(srv.Addr, srv, errkind.WrapTemporary(errkind.Network, "etrn "+srv.Addr, context.Cause(ctx)))
				return
			}
			addr := srv.Addr
			probe := &probes[i]
			trace := func(l string) {
				probe.line(l, time.Now())
				if opts.Trace != nil {
					opts.Trace(addr, l)
				}
			}
			r := Ask(ctx, srv, trace, log.With("server", addr))
			for _, d := range r.Domains {
				text := "ETRN " + d.Domain + ": "
				if d.Sent {
					text += d.Reply.String() + " (" + d.Reading + ")"
				} else {
					text += "not sent: " + d.Err.Error()
				}
				sink.Emit(event.Event{Type: event.Note, Account: srv.label(), Text: text})
			}
			if r.Err != nil {
				log.Warn("etrn failed", "server", addr, "err", r.Err)
			}
			res.Servers[i] = r
		}()
	}
	wg.Wait()

	var firstErr error
	failed, accepted, started := 0, 0, 0
	for _, s := range res.Servers {
		a, st := s.Accepted()
		accepted += a
		started += st
		if s.Err != nil {
			failed++
			if firstErr == nil {
				firstErr = s.Err
			}
		}
	}
	switch {
	case ctx.Err() != nil:
		res.QuietSkipped = "cancelled"
	case accepted == 0:
		res.QuietSkipped = "no ETRN was accepted"
	case started == 0 && failed == 0:
		res.NothingWaiting = true
		res.QuietSkipped = "every relay answered 251 (nothing waiting)"
	case started == 0:
		res.QuietSkipped = "no accepted ETRN had mail waiting"
	default:
		sink.Emit(event.Event{Type: event.Note, Text: "waiting for inbound SMTP to go quiet"})
		learned, lerr := LoadLearned(opts.StateDir)
		if lerr != nil {
			log.Warn("starting the quiet wait from nothing learned", "err", lerr)
		}
		// The gap to the first delivery counts from the earliest ETRN
		// reply (the longer gap, the safer window); the RTT is the
		// least round trip any relay showed.
		var since time.Time
		var rtt time.Duration
		for _, p := range probes {
			if !p.reply.IsZero() && (since.IsZero() || p.reply.Before(since)) {
				since = p.reply
			}
			if p.rtt > 0 && (rtt == 0 || p.rtt < rtt) {
				rtt = p.rtt
			}
		}
		res.Quiet = WaitQuiet(ctx, QuietOptions{
			Quiet: opts.Quiet, Floor: opts.QuietFloor, Max: opts.QuietMax, Since: since, RTT: rtt,
			Learned: learned, Ports: opts.Ports,
			CountLoopback: opts.CountLoopback, Counter: opts.Counter, Logger: log,
		}, sink)
		log.Info("inbound SMTP wait over", "quiet", res.Quiet.WentQuiet, "elapsed", res.Quiet.Elapsed,
			"first_session_after", res.Quiet.Gap, "pause", res.Quiet.Reopen, "window", res.Quiet.Window, "rtt", rtt)
		if res.Quiet.Err == nil && ctx.Err() == nil {
			if err := SaveLearned(opts.StateDir, res.Quiet.Learned); err != nil {
				log.Warn("cannot remember the quiet window", "err", err)
			}
		}
	}
	if firstErr != nil && len(res.Servers) > 1 {
		return res, fmt.Errorf("%d of %d relays failed: %w", failed, len(res.Servers), firstErr)
	}
	return res, firstErr
}
