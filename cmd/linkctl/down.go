package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/linkctl/linkctl/control"
	"github.com/linkctl/linkctl/internal/errkind"
)

func init() {
	register(&command{
		Name:    "down",
		Args:    "[IFACE]",
		Summary: "the link is going away: let running stages stop safely",
		Help: `For connection scripts (ppp ip-down, ...): tells the daemon the link is going, so the
run in flight stops now, safely (a message not yet accepted locally stays on the server),
rather than when the next read times out. The daemon sees the link go through netlink
as well; this only says it sooner. Without a daemon there is nothing to do.`,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			return func(a *App, args []string) error {
				if len(args) > 1 {
					return errkind.Permanent(errkind.Usage, "", "down takes at most one interface name")
				}
				iface := ""
				if len(args) == 1 {
					iface = args[0]
				}
				return a.simpleRequest(control.Request{Op: control.OpDown, Iface: iface})
			}
		},
	})
}

// simpleRequest sends a request that needs no streaming and prints the
// daemon's answer.
func (a *App) simpleRequest(req control.Request) error {
	cfg, err := a.Config()
	if err != nil {
		return err
	}
	resp, err := control.Do(a.Ctx, cfg.ControlSocket, req, nil)
	if errors.Is(err, control.ErrNoDaemon) {
		fmt.Fprintf(a.Stderr, "linkctl %s: no daemon is running (control socket %s)\n", req.Op, cfg.ControlSocket)
		return nil
	}
	if err != nil {
		return err
	}
	if resp.Text != "" {
		fmt.Fprintf(a.Stdout, "%s\n", resp.Text)
	}
	if resp.Error != "" {
		fmt.Fprintf(a.Stderr, "linkctl %s: %s\n", req.Op, resp.Error)
	}
	if resp.Exit != 0 {
		return exitStatus(resp.Exit)
	}
	return nil
}
