// Package drop is the last stage of a run: it hangs up the link once
// nothing has used it for a while. [Run] waits until every earlier stage
// has ended, nothing else holds the link (Options.Busy) and, when ETRN is
// in the pipeline, no inbound SMTP session from a relay is open (counted
// with netlink sock_diag by package internal/sessions, the counter the etrn
// stage's quiet wait uses too); then it runs the hang-up command (poff, no
// shell) or sets the interface down through netlink. A follow-up run
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

// Options configures the drop stage. Exactly one of Command and
// Interface is set.
type Options struct {
	Command   []string // argv run to hang up, e.g. [poff, provider]; no shell
	Interface string   // or: set this link down through netlink
	// Idle is how long nothing may run before the link goes (default 30s).
	Idle time.Duration
	// MaxWait bounds the wait for Busy to clear; after it the link is kept
	// and the stage reports Skipped (default 10 × Idle).
	MaxWait time.Duration
	// Busy reports what still holds the link ("" when nothing does): a stage
	// of this run still running, the outbound queue still delivering.
	// Checked after every Idle period.
	Busy func() string
	// Superseded reports why this drop should not hang up at all ("" when
	// it may): a follow-up run is already requested, and its own drop will
	// hang up after it. Checked with Busy; the stage then ends at once
	// (Skipped) rather than hold up the follow-up run.
	Superseded func() string
	// SMTPPorts are local ports whose open inbound sessions (from
	// non-loopback peers, unless CountLoopback) hold the link: a relay
	// answering our ETRN may still be delivering. Empty: not checked.
	SMTPPorts     []int
	CountLoopback bool
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
		return Result{}, errkind.New(errkind.Usage, false, "drop",
			"set exactly one of drop.command and drop.interface")
	}
	idle := opts.Idle
	if idle <= 0 {
		idle = 30 * time.Second
	}
	maxWait := opts.MaxWait
	if maxWait <= 0 {
		maxWait = 10 * idle
	}
	h := opts.Handle
	if h == nil {
		h = &netlink.Handle{}
	}

	start := time.Now()
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return Result{Summary: "link kept: " + causeText(ctx)},
				errkind.Wrap(errkind.Network, true, "drop: waiting for the link to go idle", context.Cause(ctx))
		case <-timer.C:
		}
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
		if busy == "" && len(opts.SMTPPorts) > 0 {
			n, err := sessions.Inbound(h, opts.SMTPPorts, opts.CountLoopback)
			switch {
			case err != nil:
				// Better keep a link a little longer than cut a delivery.
				busy = "cannot count inbound SMTP sessions: " + err.Error()
			case n > 0:
				busy = fmt.Sprintf("%d inbound SMTP session(s) still open", n)
			}
		}
		if busy == "" {
			break
		}
		if time.Since(start)+idle > maxWait {
			log.Info("not dropping the link", "why", busy, "waited", time.Since(start).Round(time.Second))
			return Result{Summary: "link kept: " + busy}, nil
		}
		log.Info("link still busy; waiting before dropping it", "why", busy, "again_in", idle)
		timer.Reset(idle)
	}

	why := fmt.Sprintf("every earlier stage ended and nothing ran for %s", idle)
	if len(opts.SMTPPorts) > 0 {
		why += ", no inbound SMTP session open"
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
			return Result{}, errkind.New(errkind.Usage, false, "drop",
				"no interface %q: check drop.interface (ip link lists them)", opts.Interface)
		}
		return Result{}, errkind.Wrap(errkind.Internal, true, "drop: find interface "+opts.Interface, err)
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
		return errkind.New(errkind.Usage, false, op, "%s not found: install it or fix drop.command", argv[0])
	}
	msg := strings.TrimSpace(stderr.String())
	if ctx.Err() != nil {
		return errkind.New(errkind.Internal, true, op, "did not finish within %s: %s", timeout, quote(msg))
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return errkind.New(errkind.Internal, ee.ExitCode() == 75, op, "exit status %d: %s", ee.ExitCode(), quote(msg))
	}
	return errkind.Wrap(errkind.Internal, false, op, err)
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
