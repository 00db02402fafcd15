package main

import (
	"flag"

	"github.com/linkctl/linkctl/assemble"
	"github.com/linkctl/linkctl/flush"
)

func init() {
	register(&command{
		Name:    "flush",
		Args:    "[--no-wait] [--wait-lock]",
		Summary: "run the local MTA's outbound queue now and wait until it has gone out",
		Help: `Runs the flush stage of the config alone: asks the local MTA (flush.mta:
auto finds postqueue, exim, smtpctl or sendmail) to run its queue, then watches
the queue until every message that was waiting has been tried: delivered, or
deferred again (with the MTA's reason, e.g. connection refused). Messages
queued meanwhile are counted, not waited for. flush.timeout ends the wait.

Postfix commands honour MAIL_CONFIG, so MAIL_CONFIG=/etc/postfix-out linkctl
flush drives that instance.

Exit status: 0 done, 21 done but outbound mail is still deferred (the reasons
are reported; the MTA retries it), 2 the queue did not drain within
flush.timeout, 5 no MTA found, 10 the MTA's command failed.`,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			noWait := fs.Bool("no-wait", false, "only start the queue run; do not wait for it to drain")
			waitLock := fs.Bool("wait-lock", false, "wait for a run in progress to end instead of exiting 8")
			return func(a *App, args []string) error {
				cfg, err := a.Config()
				if err != nil {
					return err
				}
				opts := a.assembler().FlushOptions(cfg)
				if *noWait {
					opts.Wait = flush.WaitNone
				}
				return a.runOneStage(assemble.FlushStage("flush", opts), cfg, *waitLock, "linkctl flush")
			}
		},
	})
}
