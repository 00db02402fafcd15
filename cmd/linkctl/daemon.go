package main

import (
	"context"
	"flag"
	"time"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/daemon"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/linkwatch"
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
SIGHUP reloads the config (an invalid one is reported and the old one kept; link.watch,
link.settle and the paths need a restart, the rest applies at once, dial included). SIGTERM
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
					return errkind.Permanent(errkind.Usage, "", "daemon takes no arguments")
				}
				return a.daemon(*grace)
			}
		},
	})
}

func (a *App) daemon(grace time.Duration) error {
	cfg, err := a.Config()
	if err != nil {
		return err
	}
	w, err := linkwatch.NewWatcher(linkwatch.Options{Watch: cfg.Link.Watch, Settle: cfg.Link.Settle, Logger: a.Log})
	if err != nil {
		return err
	}
	r := newRenderer(a.Stderr, a.Log)
	opts := a.assembler().DaemonOptions(cfg)
	opts.Grace, opts.Watcher, opts.Sink, opts.Logger = grace, w, r.Sink, a.Log
	opts.Reload = func() (daemon.Reloaded, error) { return a.reload(cfg) }
	d, err := daemon.New(opts)
	if err != nil {
		return err
	}
	defer a.assembler().AttachDaemon(d)()
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
	r, restart := a.assembler().Reloaded(old, cfg)
	if restart {
		a.Log.Warn("config reloaded, but link.watch, link.settle, state_dir, control_socket and metrics_file change only on a restart")
	}
	return r, nil
}
