package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/linkctl/linkctl/control"
	"github.com/linkctl/linkctl/dial"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/linkwatch"
)

func init() {
	register(&command{
		Name:    "dial",
		Summary: "bring the link up now with dial.command; the pipeline runs once it is up",
		Help: `Dials once by hand with the config's dial.command (argv, no shell) and waits up to
dial.appear_timeout for the watched link to come up. When a daemon runs, it dials (the
link's up edge then runs the pipeline there, and the drop stage hangs up; follow it with
'linkctl status'). With no daemon, the command runs here, the link is watched through
netlink, and once it is up the pipeline runs in this process as with 'linkctl up'.
The dial windows and triggers do not apply by hand; a run in flight, the link already
up and a spent budget still refuse the dial. Exits 2 when the link did not come up.`,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			return func(a *App, args []string) error {
				if len(args) > 0 {
					return errkind.Permanent(errkind.Usage, "", "dial takes no arguments")
				}
				return a.dial()
			}
		},
	})
}

func (a *App) dial() error {
	cfg, err := a.Config()
	if err != nil {
		return err
	}
	if len(cfg.Dial.Command) == 0 {
		return errkind.Permanent(errkind.Usage, "", "%s has no dial section: nothing to dial with (add dial: {command: [pon, provider]})", cfg.File)
	}
	resp, err := control.Do(a.Ctx, cfg.ControlSocket, control.Request{Op: control.OpDial}, nil)
	if err == nil {
		if resp.Text != "" {
			fmt.Fprintln(a.Stdout, "linkctl dial: "+resp.Text)
		}
		if resp.Error != "" {
			fmt.Fprintln(a.Stderr, "linkctl dial: "+resp.Error)
		}
		if resp.Exit != 0 {
			return exitStatus(resp.Exit)
		}
		return nil
	}
	if !errors.Is(err, control.ErrNoDaemon) {
		return err
	}

	// No daemon: dial here, watch for the link, then run the pipeline.
	st, err := linkwatch.NetlinkReader{}.Read()
	if err != nil {
		return err
	}
	if up, reason := linkwatch.Up(st, cfg.Link.Watch); up {
		fmt.Fprintf(a.Stderr, "linkctl dial: the link is already up (%s): nothing to dial; 'linkctl up' runs the pipeline\n", reason)
		return nil
	}
	if o := a.assembler().DialOptions(cfg); o != nil && o.Gate != nil {
		if why, spent := o.Gate.Spent(cfg.Dial.Interface); spent {
			return errkind.Temporary(errkind.Usage, "dial", "budget spent: %s", why)
		}
	}
	w, err := linkwatch.NewWatcher(linkwatch.Options{Watch: cfg.Link.Watch, Settle: cfg.Link.Settle, Logger: a.Log})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(a.Ctx)
	defer cancel()
	go w.Run(ctx)
	upCh := make(chan struct{})
	var iface string
	go func() {
		for {
			select {
			case e, ok := <-w.Edges():
				if !ok {
					return
				}
				if e.Up {
					iface = e.Iface
					close(upCh)
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	a.Log.Info("dialing", "command", cfg.Dial.Command, "appear_timeout", cfg.Dial.AppearTimeout)
	took, err := dial.Attempt(ctx, cfg.Dial.Command, upCh, cfg.Dial.AppearTimeout)
	if err != nil {
		return err
	}
	cancel() // the watcher; the pipeline's drop stage hangs up
	fmt.Fprintf(a.Stderr, "linkctl dial: %s is up after %s; running the pipeline\n", iface, took.Round(100*time.Millisecond))
	return a.RunPipeline(RunOptions{Cause: "linkctl dial", Iface: iface, Wait: true})
}

// printDial is the dial lines of `linkctl status`.
func printDial(w io.Writer, d *dial.Status) {
	if d == nil {
		return
	}
	at := func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }
	switch {
	case d.Dialing:
		fmt.Fprintf(w, "dial:    dialing since %s (%s)\n", at(d.LastAt), d.LastCause)
	case !d.Next.IsZero():
		fmt.Fprintf(w, "dial:    next look at %s (%s)", at(d.Next), d.NextWhy)
		if d.Holding != "" {
			fmt.Fprintf(w, "; not dialing: %s", d.Holding)
		}
		fmt.Fprintln(w)
	default:
		fmt.Fprintln(w, "dial:    only by hand (linkctl dial)")
	}
	if !d.LastAt.IsZero() {
		fmt.Fprintf(w, "         last dial %s (%s): %s\n", at(d.LastAt), d.LastCause, d.LastResult)
	}
	if !d.GaveUp.IsZero() {
		fmt.Fprintf(w, "         gave up at %s after the retries\n", at(d.GaveUp))
	}
}
