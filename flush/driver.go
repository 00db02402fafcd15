package flush

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
)

// The MTAs linkctl drives, as written in the config's `mta:` key.
const (
	Auto      = "auto"
	Postfix   = "postfix"
	Sendmail  = "sendmail"
	Exim      = "exim"
	OpenSMTPD = "opensmtpd"
	Command   = "command"
)

// Driver is how linkctl runs one MTA's queue: argv slices, never a shell.
type Driver struct {
	Name string // postfix, sendmail, exim, opensmtpd, command
	// Found says what mta: auto found ("/usr/sbin/postqueue"); "" when
	// the MTA was named.
	Found string
	Flush []string // starts a queue run
	List  []string // prints the queue
	// MoreLists print parts of the queue List leaves out (sendmail -qQ
	// -bp: quarantined mail); their messages are added to List's, a
	// message listed twice counts once.
	MoreLists [][]string
	Parse     func([]byte) ([]Message, error)
	// Sync: the flush command returns only when its queue run is over
	// (exim -qff, sendmail -q run the queue in the foreground), so every
	// message queued before it has had its attempt by then.
	Sync bool
	// FlushesHeld: the flush also sends messages the listing marks held
	// (exim -qff thaws frozen messages for the run).
	FlushesHeld bool
	// Reasons, when set, finds deferral reasons the listing lacks (exim:
	// the message log), message by message.
	Reasons func(ctx context.Context, r *Runner, id string) map[string]string
	// BeforeFlush, when set, runs before the flush command (OpenSMTPD:
	// resume the routes it suspended after failed connections, which a
	// flush alone does not lift).
	BeforeFlush func(ctx context.Context, r *Runner) error
	// InDelivery, when set, says which of the listed messages another
	// process is delivering now, for MTAs whose listing does not mark them
	// (exim -bp): those are waited for, not reported as deferred.
	InDelivery func(ctx context.Context, r *Runner, msgs []Message) map[string]bool
}

// searchDirs are tried after $PATH: MTA commands live in sbin, which a
// user's PATH (or a systemd unit's) may lack.
var searchDirs = []string{"/usr/sbin", "/usr/bin", "/sbin", "/usr/lib", "/usr/local/sbin"}

// lookPath finds name in $PATH, then in searchDirs.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		if _, err := os.Stat(name); err != nil {
			return "", err
		}
		return name, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range searchDirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// NewDriver returns the driver for mta (see the constants). For Auto it
// looks for postqueue, exim4/exim, smtpctl, then sendmail (last: Postfix
// and Exim ship a sendmail too) and says which it found in the driver's
// Name. For Command, flush and list are the user's argv.
func NewDriver(mta string, flush, list []string) (Driver, error) {
	return NewDriverAt(mta, "", nil, flush, list)
}

// NewDriverAt is [NewDriver] for a named MTA run from binary (its queue
// command: postqueue, sendmail, exim4, smtpctl; "" finds it in $PATH) with
// args put before the driver's own arguments: a second instance's config
// (exim -C FILE, sendmail -C FILE, postqueue -c DIR).
func NewDriverAt(mta, binary string, args, flush, list []string) (Driver, error) {
	if (binary != "" || len(args) > 0) && (mta == "" || mta == Auto || mta == Command) {
		return Driver{}, errkind.Permanent(errkind.Usage, "flush: mta "+cmp.Or(mta, Auto),
			"command and args need a named mta (postfix, sendmail, exim or opensmtpd); with mta: command give flush_command and list_command")
	}
	pick := func(def string) string { return cmp.Or(binary, def) }
	argv := func(bin string, rest ...string) []string {
		return append(append([]string{bin}, args...), rest...)
	}
	switch mta {
	case "", Auto:
		for _, try := range []struct{ bin, mta string }{
			{"postqueue", Postfix}, {"exim4", Exim}, {"exim", Exim}, {"smtpctl", OpenSMTPD}, {"sendmail", Sendmail},
		} {
			if p, err := lookPath(try.bin); err == nil {
				d, err := NewDriver(try.mta, nil, nil)
				d.Found = p
				return d, err
			}
		}
		return Driver{}, errkind.Permanent(errkind.Usage, "flush: mta auto",
			"found none of postqueue, exim4, exim, smtpctl, sendmail in $PATH or %s; install the MTA or set flush.mta: command with flush_command and list_command",
			strings.Join(searchDirs, ", "))
	case Postfix:
		bin := pick("postqueue")
		return Driver{Name: Postfix, Flush: argv(bin, "-f"), List: argv(bin, "-j"), Parse: ParsePostfixJSON}, nil
	case Sendmail:
		bin := pick("sendmail")
		// -bp omits quarantined mail; -qQ -bp lists only that
		// (sendmail(8), "-qQ"). Held mail must be counted, or a queue
		// of quarantined messages reads as "nothing was queued".
		return Driver{Name: Sendmail, Flush: argv(bin, "-q"), List: argv(bin, "-bp"),
			MoreLists: [][]string{argv(bin, "-qQ", "-bp")}, Parse: ParseSendmail, Sync: true}, nil
	case Exim:
		bin := binary
		if bin == "" {
			bin = "exim4" // Debian's name
			if _, err := lookPath(bin); err != nil {
				bin = "exim"
			}
		}
		base := argv(bin)
		return Driver{Name: Exim, Flush: argv(bin, "-qff"), List: argv(bin, "-bp"), Parse: ParseExim,
			Sync: true, FlushesHeld: true, Reasons: eximReasons(base), InDelivery: eximInDelivery(base)}, nil
	case OpenSMTPD:
		bin := pick("smtpctl")
		return Driver{Name: OpenSMTPD, Flush: argv(bin, "schedule", "all"), List: argv(bin, "show", "queue"), Parse: ParseOpenSMTPD,
			BeforeFlush: opensmtpdResume(argv(bin))}, nil
	case Command:
		if len(flush) == 0 {
			return Driver{}, errkind.Permanent(errkind.Usage, "flush: mta command", "flush_command is empty: give the argv that starts a queue run")
		}
		return Driver{Name: Command, Flush: flush, List: list, Parse: ParseAuto}, nil
	}
	return Driver{}, errkind.Permanent(errkind.Usage, "flush", "unknown mta %q (expected auto, postfix, sendmail, exim, opensmtpd or command)", mta)
}

func eximReasons(base []string) func(context.Context, *Runner, string) map[string]string {
	return func(ctx context.Context, r *Runner, id string) map[string]string {
		out, err := r.Run(ctx, append(slices.Clone(base), "-Mvl", id))
		if err != nil {
			return nil
		}
		return ParseEximMsglog(out)
	}
}

// Runner runs MTA commands: argv only, a timeout on each, linkctl's
// environment plus Env (MAIL_CONFIG selects a Postfix instance).
type Runner struct {
	Env     []string
	Timeout time.Duration // per command (default 60s)
}

// Run runs argv and returns its stdout. A missing binary is a permanent
// errkind.Usage error with a hint; exit status 75 (EX_TEMPFAIL) is
// temporary, any other failure permanent; stderr is quoted in the error.
func (r *Runner) Run(ctx context.Context, argv []string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errkind.Permanent(errkind.Usage, "flush", "empty command")
	}
	op := "flush: " + strings.Join(argv, " ")
	path, err := lookPath(argv[0])
	if err != nil {
		return nil, errkind.Permanent(errkind.Usage, op, "%s not found in $PATH or %s: is the MTA installed? (set flush.mta to the one you run)",
			argv[0], strings.Join(searchDirs, ", "))
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, path, argv[1:]...)
	cmd.Env = append(os.Environ(), r.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &limitedBuffer{buf: &stderr, max: 4096}
	cmd.WaitDelay = time.Second // a child holding the pipes open must not hang us
	err = cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		msg = strings.TrimSpace(firstLine(stdout.String()))
	}
	switch {
	case cctx.Err() != nil && ctx.Err() == nil:
		return nil, errkind.Temporary(errkind.Delivery, op, "no answer after %v (stderr: %q)", timeout, msg)
	case ctx.Err() != nil:
		return nil, errkind.WrapTemporary(errkind.Delivery, op, context.Cause(ctx))
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		// sysexits.h EX_TEMPFAIL: the MTA says "try again later".
		return nil, errkind.New(errkind.Delivery, code == 75, op, "exit status %d: %q", code, msg)
	}
	return nil, errkind.WrapPermanent(errkind.Delivery, op, fmt.Errorf("%w (stderr: %q)", err, msg))
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// limitedBuffer keeps the first max bytes written: enough stderr to quote.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
