package deliver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
)

// MDAOptions configure delivery through a local delivery agent command
// (procmail, dovecot-lda, maildrop, sendmail -i, ...).
type MDAOptions struct {
	// Argv is the command and its arguments, run directly (never through
	// a shell). An element that is exactly "%F" becomes the envelope
	// sender ("<>" for the null sender), one that is exactly "%T" a
	// recipient; "%F" or "%T" inside a longer element stay as written, so
	// that no address can inject an argument.
	Argv    []string
	Timeout time.Duration // per run; 0 = 5 minutes
	Env     []string      // the environment; nil = linkctl's own
	TempDir string        // where a message is spooled when it must be fed to several runs ("" = os.TempDir())
	Logger  *slog.Logger  // nil = discard
}

// DefaultMDATimeout bounds one MDA run when MDAOptions.Timeout is zero.
const DefaultMDATimeout = 5 * time.Minute

// NewMDA returns a Target that pipes each message into a command.
//
// With "%T" in Argv the command runs once per recipient, else once per
// message. The message goes to the command's stdin as it arrives; when it
// must be fed to several runs it is first spooled to a temporary file,
// never held in memory. Exit status 0 means delivered, 75 (EX_TEMPFAIL,
// sysexits.h) a temporary failure, any other status a permanent one; a
// run killed by the timeout or a cancel (with its whole process group) is
// temporary, and ends even when the command stopped reading its stdin and
// something it started still holds it open (the write gets a deadline).
// The first 500 bytes of stderr are quoted in the error. If the message
// source breaks in the middle, the command is killed before its stdin is
// closed, so it never sees a truncated message as complete. When some runs
// succeed and a later one fails, Deliver returns a *PartialError and the
// message counts as not delivered (a retry duplicates it for the
// recipients already served).
func NewMDA(opts MDAOptions) Target {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultMDATimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &mda{opts: opts}
}

type mda struct{ opts MDAOptions }

func (m *mda) Close() error { return nil }

func (m *mda) name() string {
	if len(m.opts.Argv) == 0 {
		return "(empty)"
	}
	return m.opts.Argv[0]
}

func (m *mda) op(what string) string { return "deliver via MDA " + m.name() + ": " + what }

func hasPerRecipient(argv []string) bool {
	for _, a := range argv {
		if a == "%T" {
			return true
		}
	}
	return false
}

// expand substitutes whole-element %F and %T.
func expand(argv []string, from, to string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		switch a {
		case "%F":
			if from == "" {
				from = "<>"
			}
			out[i] = from
		case "%T":
			out[i] = to
		default:
			out[i] = a
		}
	}
	return out
}

func (m *mda) Deliver(ctx context.Context, env Envelope, msg io.Reader) error {
	if len(m.opts.Argv) == 0 {
		return errkind.Permanent(errkind.Usage, "deliver via MDA", "no command given")
	}
	if !hasPerRecipient(m.opts.Argv) {
		to := ""
		if len(env.To) > 0 {
			to = env.To[0]
		}
		return m.run(ctx, expand(m.opts.Argv, env.From, to), msg)
	}
	rcpts := dedup(env.To)
	if len(rcpts) == 0 {
		return errkind.Permanent(errkind.Delivery, m.op("%T"), "no recipient given: set the account's `to`")
	}
	if len(rcpts) == 1 {
		return m.run(ctx, expand(m.opts.Argv, env.From, rcpts[0]), msg)
	}
	// Several runs read the same message: spool it once.
	spool, err := os.CreateTemp(m.opts.TempDir, "linkctl-mda-*")
	if err != nil {
		return errkind.WrapTemporary(errkind.Delivery, m.op("spooling the message"), err)
	}
	defer func() { spool.Close(); os.Remove(spool.Name()) }()
	src := &sourceReader{r: msg}
	if _, err := io.Copy(spool, src); err != nil {
		if src.err != nil {
			return sourceErr(m.op("spooling the message"), src.err)
		}
		return errkind.Wrap(errkind.Delivery, isDiskFull(err), m.op("spooling the message"), err)
	}
	pe := &PartialError{Failed: map[string]error{}}
	for _, r := range rcpts {
		if _, err := spool.Seek(0, io.SeekStart); err != nil {
			return errkind.WrapTemporary(errkind.Delivery, m.op("rewinding the spooled message"), err)
		}
		if err := m.run(ctx, expand(m.opts.Argv, env.From, r), spool); err != nil {
			if len(pe.Accepted) == 0 {
				return err // nothing delivered yet: a plain failure
			}
			pe.Failed[r] = err
			// Stop at the first failure: later recipients would only add
			// to the duplicates of the retry.
			for _, rest := range rcpts[len(pe.Accepted)+1:] {
				pe.Failed[rest] = errkind.Temporary(errkind.Delivery, "", "not tried after the failure above")
			}
			return errkind.Wrap(errkind.Delivery, pe.Temporary(), m.op("per-recipient runs"), pe)
		}
		pe.Accepted = append(pe.Accepted, r)
	}
	return nil
}

// run runs argv once with msg on stdin.
func (m *mda) run(ctx context.Context, argv []string, msg io.Reader) error {
	ctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = m.opts.Env
	// Its own process group, so that a timeout also ends what the MDA
	// started (procmail running a filter).
	// Pdeathsig: if linkctl dies (kill -9) while feeding stdin, the
	// command must not see the EOF of a cut message as the end of a
	// whole one and deliver it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	stderr := &headBuffer{max: 500}
	cmd.Stderr = stderr
	// Our own pipe rather than StdinPipe: its write end is pollable, so
	// a write blocked on a command that stopped reading can be given a
	// deadline (see below).
	pr, stdin, err := os.Pipe()
	if err != nil {
		return errkind.WrapTemporary(errkind.Delivery, m.op("start"), err)
	}
	defer stdin.Close()
	cmd.Stdin = pr
	err = cmd.Start()
	pr.Close() // the command's copy is all that must stay open
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return errkind.WrapPermanent(errkind.Delivery, m.op("start"),
				fmt.Errorf("%w (the command runs without a shell: give the full path of an executable program)", err))
		}
		return errkind.WrapTemporary(errkind.Delivery, m.op("start"), err)
	}
	// A command that stops reading blocks the copy. Killing its process
	// group normally ends that (the pipe's reader is gone), but not when
	// something it started left the group and keeps stdin open. So when
	// the run's time is up: kill first (EOF before the kill would let the
	// command take a truncated message for a whole one), then fail the
	// blocked write with a deadline.
	unblocked := make(chan struct{})
	stopUnblock := context.AfterFunc(ctx, func() {
		defer close(unblocked)
		cmd.Cancel()
		stdin.SetWriteDeadline(time.Unix(1, 0))
	})
	src := &sourceReader{r: msg}
	_, copyErr := io.Copy(stdin, src)
	if !stopUnblock() {
		<-unblocked // no kill may follow the Wait below (the pid could be reused)
	}
	if src.err != nil {
		// Kill before closing stdin: EOF on a truncated message would
		// look like the end of a complete one.
		cmd.Cancel()
		cmd.Wait()
		return sourceErr(m.op("feeding stdin"), src.err)
	}
	if ctx.Err() != nil {
		// Killed above: stdin was never ended, so the command cannot
		// have taken the message.
		cmd.Wait()
		return m.ended(ctx, stderr)
	}
	// EOF on stdin lets the command deliver: wait at the engine's commit
	// gate first (see WithCommitGate).
	if err := enterCommit(ctx); err != nil {
		cmd.Cancel()
		cmd.Wait()
		return errkind.WrapTemporary(errkind.Delivery, m.op("waiting to end stdin"), err)
	}
	stdin.Close()
	waitErr := cmd.Wait()
	if copyErr != nil && waitErr == nil {
		// The command exited 0 without reading all its input: its
		// choice (a filter that discards), but worth a line in the log.
		m.opts.Logger.Warn("MDA exited 0 without reading the whole message", "argv0", argv[0], "err", copyErr)
	}
	if waitErr == nil {
		return nil
	}
	if ctx.Err() != nil {
		return m.ended(ctx, stderr)
	}
	detail := stderrDetail(stderr)
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		code := ee.ExitCode()
		if code == 75 {
			return errkind.Temporary(errkind.Delivery, m.op("run"), "exit status 75 (EX_TEMPFAIL: try again later)%s", detail)
		}
		if code < 0 {
			return errkind.Permanent(errkind.Delivery, m.op("run"), "%v%s", ee.ProcessState, detail)
		}
		return errkind.Permanent(errkind.Delivery, m.op("run"), "exit status %d%s", code, detail)
	}
	return errkind.WrapTemporary(errkind.Delivery, m.op("run"), fmt.Errorf("%w%s", waitErr, detail))
}

// ended reports a run killed because its context ended: temporary, a
// retry may find the command responsive.
func (m *mda) ended(ctx context.Context, stderr *headBuffer) error {
	why := "timed out after " + m.opts.Timeout.String()
	if errors.Is(ctx.Err(), context.Canceled) {
		why = "cancelled (" + context.Cause(ctx).Error() + ")"
	}
	return errkind.Temporary(errkind.Delivery, m.op("run"), "%s, killed%s", why, stderrDetail(stderr))
}

func stderrDetail(stderr *headBuffer) string {
	if s := strings.TrimSpace(stderr.String()); s != "" {
		return fmt.Sprintf(": stderr %q", s)
	}
	return ""
}

// headBuffer keeps the first max bytes written and drops the rest, so a
// chatty command can never block on a full stderr pipe or fill memory.
type headBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := h.max - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (h *headBuffer) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return string(h.b)
}

// isDiskFull reports a full disk or an exceeded quota: temporary, space
// may be freed.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
