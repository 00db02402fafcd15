package main

import (
	"flag"

	"github.com/linkctl/linkctl/control"
	"github.com/linkctl/linkctl/internal/errkind"
)

func init() {
	register(&command{
		Name:    "quit",
		Summary: "ask the daemon to stop",
		Help: `Stops the daemon as SIGTERM does: nothing new starts, the run in flight may finish
for the daemon's --grace (2s), then it is cancelled; a stage that has not returned 6s
later is abandoned, so the daemon is gone within 8s.`,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			return func(a *App, args []string) error {
				if len(args) > 0 {
					return errkind.Permanent(errkind.Usage, "", "quit takes no arguments")
				}
				return a.simpleRequest(control.Request{Op: control.OpQuit})
			}
		},
	})
}
