// Package drop is the last stage of a run: it hangs up the link once
// nothing can still cause traffic on it. [Run] looks every Poll at what
// can: a stage of this run or the runner still holding the link
// (Options.Busy), an inbound SMTP session from a relay still delivering
// after our ETRN (Options.SMTPPorts), and an outbound SMTP session of the
// local MTA's queue run (Options.OutboundPorts), both counted with netlink
// sock_diag through internal/sessions. A long-lived connection that
// carries no mail (an IMAP IDLE) is not watched and does not hold the
// link. Once none of these has been seen for Idle (a short settle, not a
// guess at how long traffic might last) it runs the hang-up command (poff,
// no shell) or sets the interface down through netlink. A follow-up run
// already requested (Options.Superseded) keeps the link at once; a link
// busy for longer than MaxWait is kept and the stage reports Skipped.
// Watching the link is package linkwatch's job, not this one's.
package drop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/internal/sessions"
)

// Defaults of the wait.
const (
	// DefaultIdle is how long nothing that can cause traffic may be seen
	// before the link goes: a settle against a session about to open, not
	// a guess at how long traffic might last (what can cause traffic is
	// watched).
	DefaultIdle = time.Second
	// DefaultMaxWait bounds the wait for the link to go idle: a relay
	// delivering a large message over a 56k modem needs minutes.
	DefaultMaxWait = 5 * time.Minute
	// DefaultPoll is how often the wait looks (a sock_diag dump is cheap).
	DefaultPoll = 100 * time.Millisecond
)

// SMTPOutboundPorts are the remote ports of an MTA's outbound deliveries
// (SMTP, submissions, submission): the usual Options.OutboundPorts.
var SMTPOutboundPorts = []int{25, 465, 587}

// Options configures the drop stage. Exactly one of Command and
// Interface is set.
type Options struct {
	Command   []string // argv run to hang up, e.g. [poff, provider]; no shell
	Interface string   // or: set this link down through netlink
	// Idle is how long nothing that can cause traffic may be seen before
	// the link goes (default DefaultIdle).
	Idle time.Duration
	// MaxWait bounds the wait for the link to go idle; after it the link
	// is kept and the stage reports Skipped (default DefaultMaxWait).
	MaxWait time.Duration
	// Poll is how often the wait looks (default DefaultPoll, at most Idle).
	Poll time.Duration
	// Busy reports what still holds the link ("" when nothing does): a stage
	// of this run still running. Checked every Poll.
	Busy func() string
	// Superseded reports why this drop should not hang up at all ("" when
	// it may): a follow-up run is already requested, and its own drop will
	// hang up after it. Checked with Busy; the stage then ends at once
	// (Skipped) rather than hold up the follow-up run.
	Superseded func() string
	// SMTPPorts are local ports whose open inbound sessions (from
	// non-loopback peers, unless CountLoopback) hold the link: a relay
	// answering our ETRN may still be delivering. Empty: not checked.
	SMTPPorts []int
	// OutboundPorts are remote ports whose open outbound sessions (to
	// non-loopback peers, unless CountLoopback) hold the link: the local
	// MTA's queue run still delivering (SMTPOutboundPorts). Empty: not
	// checked.
	OutboundPorts []int
	CountLoopback bool
	// Sessions lists sessions (default: sock_diag through Handle); tests
	// swap it.
	Sessions sessions.Lister
	// CommandTimeout bounds Command (default 30s).
	CommandTimeout time.Duration
	Handle         *netlink.Handle // for Interface and SMTPPorts; nil: current namespace
	Logger         *slog.Logger
}

// Result says what the drop stage did.
type Result struct {
	Dropped bool
	Summary string // "hung up with poff provider after 30s idle", "link kept: ..."
}

// Run waits until the link has been idle (nothing running, nothing
// pending, no inbound SMTP session) for Idle, then hangs up. It runs as the
// last step of a run, so the runner has already waited for every earlier
// stage; Busy lets it also see what the runner knows beyond this run. The
// log line says why now. Cancelling ctx (link already down, shutdown) stops
// the wait without hanging up.
func Run(ctx context.Context, opts Options, sink event.Sink) (Result, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if (len(opts.Command) == 0) == (opts.Interface == "") {
		return Result{}, errkind.Permanent(errkind.Usage, "drop",
			"set exactly one of drop.command and drop.interface")
	}
	idle := opts.Idle
	if idle <= 0 {
		idle = DefaultIdle
	}
	maxWait := opts.MaxWait
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	poll := opts.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	poll = max(min(poll, idle), time.Millisecond)
	h := opts.Handle
	if h == nil {
		h = &netlink.Handle{}
	}
	list := opts.Sessions
	if list == nil {
		list = func(f sessions.Filter) ([]sessions.Session, error) { return sessions.ListIn(h, f) }
	}

	start := time.Now()
	idleSince := start
	lastBusy := ""
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		if opts.Superseded != nil {
			if why := opts.Superseded(); why != "" {
				log.Info("not dropping the link", "why", why)
				return Result{Summary: "link kept: " + why}, nil
			}
		}
		busy := ""
		if opts.Busy != nil {
			busy = opts.Busy()
		}
		if busy == "" {
			busy = sessionsBusy(list, opts)
		}
		now := time.Now()
		if busy != "" {
			idleSince = now
			if busy != lastBusy {
				log.Info("link still busy; not dropping it yet", "why", busy)
			}
			if now.Sub(start) >= maxWait {
				log.Info("not dropping the link", "why", busy, "waited", now.Sub(start).Round(time.Second))
				return Result{Summary: "link kept: " + busy}, nil
			}
		} else if now.Sub(idleSince) >= idle {
			break
		}
		lastBusy = busy
		select {
		case <-ctx.Done():
			return Result{Summary: "link kept: " + causeText(ctx)},
				errkind.WrapTemporary(errkind.Network, "drop: waiting for the link to go idle", context.Cause(ctx))
		case <-tick.C:
		}
	}

	why := fmt.Sprintf("every earlier stage ended and nothing ran for %s", idle)
	if len(opts.SMTPPorts) > 0 {
		why += ", no inbound SMTP session open"
	}
	if len(opts.OutboundPorts) > 0 {
		why += ", no outbound SMTP delivery open"
	}
	if len(opts.Command) > 0 {
		log.Info("dropping the link now", "why", why, "command", opts.Command)
		sink.Emit(event.Event{Type: event.Note, Text: "dropping the link: " + why})
		if err := runHangup(ctx, opts.Command, opts.CommandTimeout); err != nil {
			return Result{}, err
		}
		return Result{Dropped: true, Summary: fmt.Sprintf("hung up with %s after %s idle", strings.Join(opts.Command, " "), idle)}, nil
	}
	log.Info("dropping the link now", "why", why, "interface", opts.Interface)
	sink.Emit(event.Event{Type: event.Note, Text: "dropping the link: " + why})
	l, err := h.LinkByName(opts.Interface)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return Result{}, errkind.Permanent(errkind.Usage, "drop",
				"no interface %q: check drop.interface (ip link lists them)", opts.Interface)
		}
		return Result{}, errkind.WrapTemporary(errkind.Internal, "drop: find interface "+opts.Interface, err)
	}
	// For PPP this only clears IFF_UP; pppd keeps the call. Users of
	// dial-up set drop.command (poff) instead.
	if err := h.LinkSetDown(l); err != nil {
		perm := errors.Is(err, unix.EPERM)
		return Result{}, errkind.Wrap(errkind.Internal, !perm,
			"drop: set "+opts.Interface+" down (needs CAP_NET_ADMIN)", err)
	}
	return Result{Dropped: true, Summary: fmt.Sprintf("set %s down after %s idle", opts.Interface, idle)}, nil
}

func causeText(ctx context.Context) string {
	if c := context.Cause(ctx); c != nil {
		return c.Error()
	}
	return "cancelled"
}

// runHangup runs the hang-up command with a timeout; its stderr is quoted
// in the error. Exit 75 (EX_TEMPFAIL) is temporary; a missing binary is
// permanent with a hint.
func runHangup(ctx context.Context, argv []string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &limitWriter{w: &stderr, n: 4096}
	cmd.WaitDelay = 2 * time.Second // a child holding stderr open must not hang us
	op := "drop: " + strings.Join(argv, " ")
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, unix.ENOENT) {
		return errkind.Permanent(errkind.Usage, op, "%s not found: install it or fix drop.command", argv[0])
	}
	msg := strings.TrimSpace(stderr.String())
	if ctx.Err() != nil {
		return errkind.Temporary(errkind.Internal, op, "did not finish within %s: %s", timeout, quote(msg))
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return errkind.New(errkind.Internal, ee.ExitCode() == 75, op, "exit status %d: %s", ee.ExitCode(), quote(msg))
	}
	return errkind.WrapPermanent(errkind.Internal, op, err)
}

func quote(s string) string {
	if s == "" {
		return "(no output on stderr)"
	}
	return fmt.Sprintf("%q", s)
}

type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		q := p
		if len(q) > l.n {
			q = q[:l.n]
		}
		l.n -= len(q)
		l.w.Write(q)
	}
	return len(p), nil
}

// sessionsBusy says which open sessions hold the link ("" for none).
// A failure to count holds it too: better keep a link a little longer
// than cut a delivery.
func sessionsBusy(list sessions.Lister, opts Options) string {
	if len(opts.SMTPPorts) > 0 {
		in, err := list(sessions.Filter{LocalPorts: opts.SMTPPorts, Loopback: opts.CountLoopback})
		switch {
		case err != nil:
			return "cannot count inbound SMTP sessions: " + err.Error()
		case len(in) > 0:
			return fmt.Sprintf("%d inbound SMTP session(s) still open (from %s)", len(in), in[0].Peer)
		}
	}
	if len(opts.OutboundPorts) > 0 {
		out, err := list(sessions.Filter{PeerPorts: opts.OutboundPorts, Loopback: opts.CountLoopback})
		switch {
		case err != nil:
			return "cannot count outbound SMTP sessions: " + err.Error()
		case len(out) > 0:
			return fmt.Sprintf("%d outbound SMTP delivery(ies) still open (to %s)", len(out), out[0].Peer)
		}
	}
	return ""
}

// InboundSessions counts established TCP sessions whose local port is one of
// ports (IPv4 and IPv6), leaving out loopback peers unless countLoopback:
// a relay delivering after our ETRN (RFC 1985) holds such a session.
func InboundSessions(h *netlink.Handle, ports []int, countLoopback bool) (int, error) {
	s, err := sessions.ListIn(h, sessions.Filter{LocalPorts: ports, Loopback: countLoopback})
	if err != nil {
		return 0, errkind.WrapTemporary(errkind.Internal, "list TCP sessions (sock_diag)", err)
	}
	return len(s), nil
}
