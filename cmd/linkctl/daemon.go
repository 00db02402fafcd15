package main

import (
	"context"
	"flag"
	"slices"
	"sync/atomic"
	"time"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/daemon"
	"github.com/linkctl/linkctl/drop"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/linkwatch"
	"github.com/linkctl/linkctl/pipeline"
)

func init() {
	register(&command{
		Name:    "daemon",
		Args:    "[--grace DURATION]",
		Summary: "watch the uplink and run the pipeline on every up edge",
		Help: `Watches the links named in link.watch through netlink and runs the pipeline when the
uplink has been usable for link.settle, every link.interval while it stays up, on
'linkctl up', and on SIGUSR1. When the link goes down the run in flight is cancelled
(no mail is lost: what was not accepted locally stays on the server).
SIGHUP reloads the config (an invalid one is reported and the old one kept). SIGTERM
lets the run in flight finish for --grace, then cancels it; a stage that has not
returned 6s after that is abandoned and named in the log, so the daemon exits within
8s at the defaults whatever a server does; a second signal exits at once. Talks to 'linkctl up/down/status/quit' on control_socket (root and the daemon's
own user only), tells systemd READY/STATUS/STOPPING (Type=notify), and rewrites
metrics_file after each run. One daemon per state_dir.
IMAP accounts with 'idle: true' are watched while the link is up (IDLE, RFC 2177, or a
NOOP every link.interval); new mail is fetched within seconds by a run of that account's
fetch alone, queued behind a run in flight; a down edge stops the watchers; SIGHUP
restarts them; 'linkctl status' lists them.`,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			grace := fs.Duration("grace", daemon.DefaultGrace, "on SIGTERM, how long the run in flight may finish")
			return func(a *App, args []string) error {
				if len(args) > 0 {
					return errkind.New(errkind.Usage, false, "", "daemon takes no arguments")
				}
				return a.daemon(*grace)
			}
		},
	})
	registerStage("drop", buildDropStage)
}

// dropHooks are the running daemon's hooks for the drop stage (nil when
// the pipeline runs without a daemon: then only this run can hold the
// link, and the runner already waited for its earlier stages).
var dropHooks atomic.Pointer[dropHook]

type dropHook struct {
	busy       func(self string) string
	superseded func() string
}

func (a *App) daemon(grace time.Duration) error {
	cfg, err := a.Config()
	if err != nil {
		return err
	}
	steps, err := a.BuildSteps(cfg, nil)
	if err != nil {
		return err
	}
	idle, err := a.idleAccounts(cfg)
	if err != nil {
		return err
	}
	w, err := linkwatch.NewWatcher(linkwatch.Options{Watch: cfg.Link.Watch, Settle: cfg.Link.Settle, Logger: a.Log})
	if err != nil {
		return err
	}
	r := newRenderer(a.Stderr, a.Log)
	d, err := daemon.New(daemon.Options{
		StateDir:      cfg.StateDir,
		ControlSocket: cfg.ControlSocket,
		MetricsFile:   cfg.MetricsFile,
		LockPath:      RunLockPath(cfg),
		Steps:         steps,
		Interval:      cfg.Link.Interval,
		Grace:         grace,
		Idle:          idle,
		Watcher:       w,
		Reload:        func() (daemon.Reloaded, error) { return a.reload(cfg) },
		Sink:          r.Sink,
		Logger:        a.Log,
	})
	if err != nil {
		return err
	}
	dropHooks.Store(&dropHook{busy: d.Busy, superseded: d.Superseded})
	defer dropHooks.Store(nil)
	// The daemon handles SIGINT and SIGTERM itself, in two phases: the
	// App's context (cancelled on the first signal) would skip the grace.
	return d.Run(context.WithoutCancel(a.Ctx))
}

// reload re-reads the config for SIGHUP. What the running daemon cannot
// change (the watched links, the paths) is reported as needing a restart.
func (a *App) reload(old *config.Config) (daemon.Reloaded, error) {
	cfg, err := config.Load(a.ConfigPath)
	if err != nil {
		return daemon.Reloaded{}, err
	}
	steps, err := a.BuildSteps(cfg, nil)
	if err != nil {
		return daemon.Reloaded{}, err
	}
	idle, err := a.idleAccounts(cfg)
	if err != nil {
		return daemon.Reloaded{}, err
	}
	if !slices.Equal(cfg.Link.Watch, old.Link.Watch) || cfg.Link.Settle != old.Link.Settle ||
		cfg.StateDir != old.StateDir || cfg.ControlSocket != old.ControlSocket || cfg.MetricsFile != old.MetricsFile {
		a.Log.Warn("config reloaded, but link.watch, link.settle, state_dir, control_socket and metrics_file change only on a restart")
	}
	return daemon.Reloaded{Steps: steps, Interval: cfg.Link.Interval, Idle: idle}, nil
}

// buildDropStage turns the drop section into the last pipeline stage.
func buildDropStage(a *App, cfg *config.Config, s config.Step) (pipeline.Stage, error) {
	opts := drop.Options{
		Command:   cfg.Drop.Command,
		Interface: cfg.Drop.Interface,
		Idle:      cfg.Drop.Idle,
		Logger:    a.Log,
	}
	if len(opts.Command) == 0 && opts.Interface == "" {
		return nil, errkind.New(errkind.Usage, false, "",
			"%s:%d: the pipeline has drop, but the drop section names neither command nor interface", cfg.File, s.Line)
	}
	// Relays answering our ETRN deliver over inbound SMTP sessions: while
	// one is open the link must stay.
	if hasStage(cfg.Pipeline, "etrn") {
		opts.SMTPPorts = cfg.ETRN.Ports
		if len(opts.SMTPPorts) == 0 {
			opts.SMTPPorts = []int{25}
		}
		opts.CountLoopback = cfg.ETRN.CountLoopback
	}
	name := s.Name
	if name == "" {
		name = "drop"
	}
	return pipeline.Func{StageName: name, Fn: func(ctx context.Context, sink event.Sink) (pipeline.Report, error) {
		o := opts
		if h := dropHooks.Load(); h != nil {
			o.Busy = func() string { return h.busy(name) }
			o.Superseded = h.superseded
		}
		res, err := drop.Run(ctx, o, sink)
		rep := pipeline.Report{Summary: res.Summary}
		if err == nil && !res.Dropped {
			rep.Result = event.Skipped
		}
		return rep, err
	}}, nil
}
