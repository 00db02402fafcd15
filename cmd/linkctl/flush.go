package main

import (
	"context"
	"flag"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/flush"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/pipeline"
)

func init() {
	registerStage("flush", buildFlushStage)
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
				opts := flushOptions(a, cfg)
				if *noWait {
					opts.Wait = flush.WaitNone
				}
				return a.runOneStage(flushStage("flush", opts), RunLockPath(cfg), *waitLock, "linkctl flush")
			}
		},
	})
}

// buildFlushStage is the pipeline's flush stage from the config.
func buildFlushStage(a *App, cfg *config.Config, s config.Step) (pipeline.Stage, error) {
	name := s.Name
	if name == "" {
		name = "flush"
	}
	return flushStage(name, flushOptions(a, cfg)), nil
}

func flushOptions(a *App, cfg *config.Config) flush.Options {
	return flush.Options{
		MTA: cfg.Flush.MTA, Wait: cfg.Flush.Wait, Timeout: cfg.Flush.Timeout,
		FlushCommand: cfg.Flush.FlushCommand, ListCommand: cfg.Flush.ListCommand, Logger: a.Log,
	}
}

// flushStage adapts flush.Run to a pipeline stage.
func flushStage(name string, opts flush.Options) pipeline.Stage {
	return pipeline.Func{StageName: name, Fn: func(ctx context.Context, sink event.Sink) (pipeline.Report, error) {
		res, err := flush.Run(ctx, opts, sink)
		rep := pipeline.Report{Summary: res.Summary(), Counts: res.Counts()}
		switch {
		case err != nil:
		case res.Waited && res.Before == 0:
			rep.Result = event.Nothing
		}
		// Deferred mail comes back as errkind.Deferred (exit 21): the
		// pipeline still goes on to fetch, and the MTA retries it.
		return rep, err
	}}
}
