package etrn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/google/renameio/v2"

	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/internal/sessions"
)

// SessionCounter counts the ESTABLISHED inbound TCP sessions on the given
// local ports; loopback peers count only when countLoopback is set.
type SessionCounter func(ports []int, countLoopback bool) (int, error)

// CountInbound is the SessionCounter that asks the kernel through
// internal/sessions (netlink sock_diag, IPv4 and IPv6). An inbound session
// is a socket whose local port is one of ports; our own outbound
// connections to a remote port 25 have an ephemeral local port and are not
// counted. Loopback peers are skipped by default: local submissions and
// fetch's own deliveries to 127.0.0.1:25 are not mail arriving over the
// link.
func CountInbound(ports []int, countLoopback bool) (int, error) {
	s, err := sessions.List(sessions.Filter{LocalPorts: ports, Loopback: countLoopback})
	return len(s), err
}

// Defaults of the quiet wait.
const (
	// DefaultQuiet caps the quiet window, and is the wait for a relay's
	// first session while nothing is learned about the link yet.
	DefaultQuiet = 10 * time.Second
	// DefaultQuietFloor is the shortest quiet window.
	DefaultQuietFloor = time.Second
	// DefaultQuietMax bounds the whole wait.
	DefaultQuietMax = 5 * time.Minute
)

// Learned is what the quiet wait learned about a link's relays, kept in
// the state directory so the next run starts from it.
type Learned struct {
	// Gap is the time from the ETRN reply to the relay's first inbound
	// session: how long the relay takes to start a delivery it decided on.
	Gap time.Duration `json:"gap"`
	// Reopen is the longest pause seen between the last session of one
	// batch closing and the next batch's first opening (Postfix's ETRN
	// delivery can open a second connection after such a gap).
	Reopen time.Duration `json:"reopen"`
	// RTT is the round trip to the relays, from their replies.
	RTT time.Duration `json:"rtt"`
}

// learnedDecay shrinks what an earlier run learned before this run's
// figures are merged in: one slow relay run does not keep the window long
// forever, but a figure fades over a few runs, not at once.
const learnedDecay = 0.75

// Merge returns what to remember after a run that saw now (zero fields:
// not seen this time).
func (l Learned) Merge(now Learned) Learned {
	decay := func(d time.Duration) time.Duration { return time.Duration(float64(d) * learnedDecay) }
	out := Learned{Gap: max(now.Gap, decay(l.Gap)), Reopen: max(now.Reopen, decay(l.Reopen)), RTT: l.RTT}
	if now.RTT > 0 {
		out.RTT = now.RTT
	}
	return out
}

// LearnedFile is the name of the file in the state directory.
const LearnedFile = "etrn-learned.json"

// LoadLearned reads dir/LearnedFile; a missing or unreadable file is
// nothing learned (the error says why, for the log).
func LoadLearned(dir string) (Learned, error) {
	var l Learned
	if dir == "" {
		return l, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, LearnedFile))
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return l, fmt.Errorf("read learned quiet window: %w", err)
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return Learned{}, fmt.Errorf("read learned quiet window %s: %w", filepath.Join(dir, LearnedFile), err)
	}
	if l.Gap < 0 || l.Reopen < 0 || l.RTT < 0 {
		return Learned{}, fmt.Errorf("learned quiet window %s: negative figures", filepath.Join(dir, LearnedFile))
	}
	return l, nil
}

// SaveLearned writes l to dir/LearnedFile atomically.
func SaveLearned(dir string, l Learned) error {
	if dir == "" {
		return nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(filepath.Join(dir, LearnedFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save learned quiet window: %w", err)
	}
	return nil
}

// QuietOptions configure WaitQuiet.
type QuietOptions struct {
	// Quiet caps the quiet window, and is the wait for a first session
	// when nothing is learned (default DefaultQuiet).
	Quiet time.Duration
	// Floor is the shortest quiet window (default DefaultQuietFloor, at
	// most Quiet).
	Floor time.Duration
	Max   time.Duration // give up waiting after this long (default 5m)
	// Since is when the relays answered the ETRNs: the gap to the first
	// inbound session counts from it (zero: the call).
	Since time.Time
	// RTT is the round trip to the relays measured on their replies (0:
	// not known, then Learned.RTT).
	RTT time.Duration
	// Learned is what earlier runs on this link saw.
	Learned       Learned
	Ports         []int          // local SMTP ports (default [25])
	CountLoopback bool           // count loopback peers (tests, the link simulator)
	Poll          time.Duration  // how often to look (default 50ms: a dump is cheap)
	Counter       SessionCounter // default CountInbound
	Logger        *slog.Logger
}

// QuietResult says how the wait ended.
type QuietResult struct {
	Waited      bool          // the wait ran (false: skipped)
	WentQuiet   bool          // inbound was idle for the window (false: Max reached, or counting failed)
	Elapsed     time.Duration // how long it waited
	MaxSessions int           // the most inbound sessions seen at once
	Err         error         // counting failed: the wait slept Quiet instead
	// Gap is the time from Since to the first inbound session (0: none
	// opened); Reopen the longest pause between batches; Window the quiet
	// window the wait ended with.
	Gap, Reopen, Window time.Duration
	// Learned is what to remember for the next run.
	Learned Learned
}

// window is the quiet window: how long no inbound session may be open
// before the relays are taken to be done. A relay that needed gap to open
// its first session after the ETRN may need as long again to open the
// next one after a pause; a pause already seen (reopen) may come again;
// every new session also costs round trips on the line before we see it.
// Hence 2 x gap + 4 x RTT, at least 1.5 x the longest pause seen plus 2 x
// RTT, clamped to [Floor, Quiet].
func (o QuietOptions) window(gap, reopen, rtt time.Duration) time.Duration {
	g := max(gap, o.Learned.Gap)
	w := 2*g + 4*rtt
	w = max(w, max(reopen, o.Learned.Reopen)*3/2+2*rtt)
	return min(max(w, o.Floor), o.Quiet)
}

// firstWait is how long to wait for the first session after the ETRN. With
// nothing learned it is Quiet: the relay's pace is unknown. Otherwise four
// times the learned gap plus round trips and the floor, at most Quiet.
func (o QuietOptions) firstWait(rtt time.Duration) time.Duration {
	if o.Learned.Gap <= 0 {
		return o.Quiet
	}
	return min(4*o.Learned.Gap+4*rtt+o.Floor, o.Quiet)
}

// WaitQuiet waits until the relays' deliveries after ETRN are over: the
// relay delivers over new connections to our MX, and the link must stay
// up until they are done (DESIGN.md: the link is never dropped while
// inbound sessions are open, nor while a relay is about to open the next
// one). It ends when no inbound SMTP session has been open for a window
// learned from this link (see window), or when no session opened at all
// within firstWait, or at Max (reported in the result, not an error). If
// the sessions cannot be counted the wait sleeps Quiet once, reports Err,
// and does not claim quiet.
func WaitQuiet(ctx context.Context, opts QuietOptions, sink event.Sink) QuietResult {
	if opts.Quiet <= 0 {
		opts.Quiet = DefaultQuiet
	}
	if opts.Floor <= 0 {
		opts.Floor = DefaultQuietFloor
	}
	opts.Floor = min(opts.Floor, opts.Quiet)
	if opts.Max <= 0 {
		opts.Max = DefaultQuietMax
	}
	if opts.Max < opts.Quiet {
		opts.Max = opts.Quiet
	}
	if len(opts.Ports) == 0 {
		opts.Ports = []int{25}
	}
	if opts.Poll <= 0 {
		opts.Poll = min(opts.Floor/4, 50*time.Millisecond)
		opts.Poll = max(opts.Poll, time.Millisecond)
	}
	if opts.Counter == nil {
		opts.Counter = CountInbound
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rtt := opts.RTT
	if rtt <= 0 {
		rtt = opts.Learned.RTT
	}
	start := time.Now()
	since := opts.Since
	if since.IsZero() || since.After(start) {
		since = start
	}
	res := QuietResult{Waited: true}
	done := func(now time.Time, quiet bool) QuietResult {
		res.WentQuiet = quiet
		res.Elapsed = now.Sub(start)
		res.Learned = opts.Learned.Merge(Learned{Gap: res.Gap, Reopen: res.Reopen, RTT: opts.RTT})
		return res
	}
	seen := false           // a session has opened since the ETRN
	var idleSince time.Time // when the count last fell to 0
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
			res.Learned = opts.Learned
			return res
		}
		switch {
		case n > 0 && !seen:
			seen = true
			res.Gap = max(now.Sub(since), 0)
			log.Debug("first inbound SMTP session", "after_etrn", res.Gap)
		case n > 0 && last == 0 && !idleSince.IsZero():
			// A new batch after a pause: remember how long the pause was.
			res.Reopen = max(res.Reopen, now.Sub(idleSince))
			log.Debug("inbound SMTP session reopened", "pause", now.Sub(idleSince))
		}
		if n > 0 {
			res.MaxSessions = max(res.MaxSessions, n)
			idleSince = time.Time{}
		} else if idleSince.IsZero() {
			idleSince = now
		}
		if n != last {
			log.Debug("inbound SMTP sessions", "count", n, "ports", opts.Ports)
			sink.Emit(event.Event{Type: event.Progress, Count: n, Text: fmt.Sprintf("%d inbound SMTP session(s) open", n)})
			last = n
		}
		if n == 0 {
			if seen {
				res.Window = opts.window(res.Gap, res.Reopen, rtt)
				if now.Sub(idleSince) >= res.Window {
					return done(now, true)
				}
			} else if w := opts.firstWait(rtt); now.Sub(start) >= w {
				res.Window = w
				return done(now, true)
			}
		}
		if now.Sub(start) >= opts.Max {
			return done(now, false)
		}
		select {
		case <-ctx.Done():
			res.Elapsed = time.Since(start)
			res.Learned = opts.Learned
			return res
		case <-tick.C:
		}
	}
}

// rttProbe times the round trips of one relay's session from its
// transcript: the time from each command line ("C: ") to the first line of
// its reply ("S: ") is one sample; the least is the RTT (the rest is the
// server's work). It also notes when the first ETRN reply came.
type rttProbe struct {
	sent    time.Time
	waiting bool
	etrn    bool
	rtt     time.Duration
	reply   time.Time // first ETRN reply
}

func (p *rttProbe) line(l string, now time.Time) {
	switch {
	case len(l) >= 3 && l[:3] == "C: ":
		p.sent, p.waiting = now, true
		p.etrn = len(l) >= 8 && slices.Contains([]string{"ETRN ", "etrn "}, l[3:8])
	case len(l) >= 3 && l[:3] == "S: " && p.waiting:
		p.waiting = false
		if d := now.Sub(p.sent); p.rtt == 0 || d < p.rtt {
			p.rtt = d
		}
		if p.etrn && p.reply.IsZero() {
			p.reply = now
		}
	}
}
