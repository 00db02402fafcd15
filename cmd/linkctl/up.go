package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/linkctl/linkctl/control"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/pipeline"
)

func init() {
	register(&command{
		Name:    "up",
		Args:    "[--no-wait] [IFACE]",
		Summary: "the link is up: run the pipeline now (through the daemon if one runs)",
		Help: `For connection scripts (ppp ip-up, NetworkManager dispatcher, networkd-dispatcher,
ifupdown if-up.d). When a daemon runs, asks it to run the pipeline now and shows the
run's progress until it ends; a run already in flight is followed by one more. With no
daemon, runs the pipeline in this process (waiting for a run in progress to end);
a daemon that is stopping (restart, quit) is waited for, then its successor or this
process runs it.
Exits with the run's status (0 ok, 1 no mail, 20 some stages failed, ...).
--no-wait returns at once (pppd waits for ip-up; NetworkManager kills dispatcher
scripts after 600 s): the daemon runs on, or a detached linkctl runs the pipeline.
IFACE is passed to exec stages as LINKCTL_IFACE.`,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			noWait := fs.Bool("no-wait", false, "return at once; the run goes on in the background")
			return func(a *App, args []string) error {
				if len(args) > 1 {
					return errkind.Permanent(errkind.Usage, "", "up takes at most one interface name")
				}
				iface := ""
				if len(args) == 1 {
					iface = args[0]
				}
				return a.up(iface, *noWait)
			}
		},
	})
}

func (a *App) up(iface string, noWait bool) error {
	cfg, err := a.Config()
	if err != nil {
		return err
	}
	r := newRenderer(a.Stderr, a.Log)
	resp, err := control.Do(a.Ctx, cfg.ControlSocket, control.Request{Op: control.OpUp, Iface: iface, Wait: !noWait}, r.Sink)
	if err == nil && resp.Stopping {
		// A daemon on its way out (systemctl restart, linkctl quit) must
		// not cost this link-up its mail window: wait for it to go, then
		// ask its successor or run here.
		if noWait {
			return a.upDetached(iface)
		}
		a.Log.Info("the daemon is stopping: waiting for it to exit, then running the pipeline", "control_socket", cfg.ControlSocket)
		resp, err = a.upAfterStop(cfg.ControlSocket, iface, r)
	}
	switch {
	case errors.Is(err, control.ErrNoDaemon):
		if noWait {
			return a.upDetached(iface)
		}
		a.Log.Debug("no daemon: running the pipeline here", "control_socket", cfg.ControlSocket)
		return a.RunPipeline(RunOptions{Cause: "linkctl up", Iface: iface, Wait: true})
	case err != nil && a.Ctx.Err() != nil:
		fmt.Fprintln(a.Stderr, "linkctl up: stopped watching; the run goes on in the daemon")
		return exitStatus(errkind.Network)
	case err != nil:
		return err
	}
	var rep pipeline.RunReport
	if len(resp.Status) > 0 && json.Unmarshal(resp.Status, &rep) == nil {
		printSummary(a.Stdout, rep)
	}
	if resp.Text != "" && noWait {
		fmt.Fprintln(a.Stderr, "linkctl up: "+resp.Text)
	}
	if resp.Error != "" {
		fmt.Fprintln(a.Stderr, "linkctl up: "+resp.Error)
	}
	if resp.Exit != 0 {
		return exitStatus(resp.Exit)
	}
	return nil
}

// upAfterStop asks again every quarter second while the daemon answers
// that it is stopping; once it has gone, control.Do says ErrNoDaemon (and
// the caller runs the pipeline here), or a new daemon takes the request.
func (a *App) upAfterStop(socket, iface string, r *renderer) (control.Response, error) {
	ctx, cancel := context.WithTimeout(a.Ctx, stoppingWait)
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			if a.Ctx.Err() != nil {
				return control.Response{}, a.Ctx.Err()
			}
			return control.Response{}, errkind.Temporary(errkind.Internal, "linkctl up",
				"the daemon has been stopping for %v and still answers: run `linkctl status`, or stop it for good", stoppingWait)
		case <-time.After(250 * time.Millisecond):
		}
		resp, err := control.Do(a.Ctx, socket, control.Request{Op: control.OpUp, Iface: iface, Wait: true}, r.Sink)
		if err != nil || !resp.Stopping {
			return resp, err
		}
	}
}

// stoppingWait bounds how long `linkctl up` waits for a stopping daemon.
const stoppingWait = 15 * time.Minute

// upDetached starts `linkctl up IFACE` in a session of its own, with no
// terminal and its output discarded (it logs where the config says), and
// returns: the caller, a connection script, must not wait.
func (a *App) upDetached(iface string) error {
	self, err := os.Executable()
	if err != nil {
		return errkind.WrapPermanent(errkind.Internal, "find linkctl's own path", err)
	}
	args := []string{"-c", a.ConfigPath, "up"}
	if iface != "" {
		args = append(args, "--", iface)
	}
	cmd := exec.Command(self, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return errkind.WrapPermanent(errkind.Internal, "start a background run", err)
	}
	fmt.Fprintf(a.Stderr, "linkctl up: no daemon; running the pipeline in the background (pid %d)\n", cmd.Process.Pid)
	return cmd.Process.Release()
}
