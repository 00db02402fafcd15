package pipeline

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
)

// Exec is the `exec` stage: any command, argv form, never a shell. It gets
// linkctl's environment plus LINKCTL_STAGE (its name) and LINKCTL_IFACE (the
// interface that triggered the run). Exit 0 is success, 75 (EX_TEMPFAIL,
// sysexits.h) a temporary failure, anything else permanent. Each line it
// prints becomes a note event; the last lines of its stderr go into the
// error. When the run is cancelled it gets SIGTERM, then SIGKILL after
// Grace.
type Exec struct {
	StageName string
	Argv      []string
	Env       []string      // extra NAME=value pairs
	Grace     time.Duration // between SIGTERM and SIGKILL (default 5s)
}

// Name returns the stage's name.
func (e Exec) Name() string {
	if e.StageName != "" {
		return e.StageName
	}
	return "exec"
}

// exTempFail is sysexits.h EX_TEMPFAIL: "try again later".
const exTempFail = 75

// Run runs the command and waits for it.
func (e Exec) Run(ctx context.Context, sink event.Sink) (Report, error) {
	if len(e.Argv) == 0 {
		return Report{}, errkind.Permanent(errkind.Usage, e.Name(), "exec: empty command")
	}
	cmd := exec.CommandContext(ctx, e.Argv[0], e.Argv[1:]...)
	cmd.Env = append(os.Environ(), "LINKCTL_STAGE="+e.Name(), "LINKCTL_IFACE="+RequestFrom(ctx).Iface)
	cmd.Env = append(cmd.Env, e.Env...)
	cmd.Stdin = nil
	grace := e.Grace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	// SIGTERM to the whole process group (a shell's children too), then
	// SIGKILL to the group after the grace period.
	cmd.Cancel = func() error {
		pid := cmd.Process.Pid
		time.AfterFunc(grace, func() { syscall.Kill(-pid, syscall.SIGKILL) })
		return syscall.Kill(-pid, syscall.SIGTERM)
	}
	cmd.WaitDelay = grace + time.Second
	// Its own process group, so that a terminal's ^C reaches linkctl, which
	// then stops the command in order, rather than both at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Report{}, errkind.WrapPermanent(errkind.Internal, e.Name(), err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return Report{}, errkind.WrapPermanent(errkind.Internal, e.Name(), err)
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return Report{}, errkind.Permanent(errkind.Usage, e.Name(),
				"cannot run %s: not found (check the path in the pipeline's exec entry)", e.Argv[0])
		}
		return Report{}, errkind.WrapPermanent(errkind.Internal, e.Name()+": cannot start "+e.Argv[0], err)
	}
	tail := &tailLines{max: 5}
	var wg sync.WaitGroup
	wg.Go(func() { forward(stdout, sink, nil) })
	wg.Go(func() { forward(stderr, sink, tail) })
	wg.Wait()
	err = cmd.Wait()
	if err == nil {
		return Report{Summary: "exit 0"}, nil
	}
	if ctx.Err() != nil {
		return Report{}, context.Cause(ctx)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return Report{}, errkind.WrapPermanent(errkind.Internal, e.Name(), err)
	}
	msg := fmt.Sprintf("%s exited with status %d", e.Argv[0], ee.ExitCode())
	if ee.ExitCode() < 0 {
		msg = fmt.Sprintf("%s: %v", e.Argv[0], ee)
	}
	if t := tail.String(); t != "" {
		msg += ": " + t
	}
	return Report{}, errkind.New(errkind.Internal, ee.ExitCode() == exTempFail, e.Name(), "%s", msg)
}

// forward turns each line of r into a note event, and keeps the last ones.
func forward(r io.Reader, sink event.Sink, tail *tailLines) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64*1024)
	for sc.Scan() {
		line := sc.Text()
		sink.Emit(event.Event{Type: event.Note, Text: line})
		if tail != nil {
			tail.add(line)
		}
	}
	io.Copy(io.Discard, r) // an overlong line ends the scanner: drain so the child never blocks
}

type tailLines struct {
	max   int
	lines []string
}

func (t *tailLines) add(l string) {
	t.lines = append(t.lines, l)
	if len(t.lines) > t.max {
		t.lines = t.lines[1:]
	}
}

func (t *tailLines) String() string { return strings.Join(t.lines, " / ") }
