package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/pipeline"
)

func init() {
	register(&command{
		Name:    "run",
		Args:    "[--wait] [STAGE...]",
		Summary: "run the pipeline (or the named stages) now, in the foreground",
		Help: `Runs the configured pipeline once, without watching the link. With STAGE names
(flush, etrn, fetch, drop, or an exec entry's name) only those run, in pipeline order.
Only one run at a time per state_dir: a second one exits 8, or waits with --wait.`,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			wait := fs.Bool("wait", false, "wait for a run in progress to end instead of exiting 8")
			iface := fs.String("iface", "", "the interface to report to stages as LINKCTL_IFACE")
			return func(a *App, args []string) error {
				return a.RunPipeline(RunOptions{Only: args, Wait: *wait, Cause: "linkctl run", Iface: *iface})
			}
		},
	})
}

// RunOptions says which run to make.
type RunOptions struct {
	Only  []string // stage names; empty for all
	Wait  bool
	Cause string
	Iface string
}

// RunPipeline builds the pipeline from the config and runs it once in this
// process, rendering its progress and summary; the error carries the run's
// exit status.
func (a *App) RunPipeline(o RunOptions) error {
	cfg, err := a.Config()
	if err != nil {
		return err
	}
	steps, err := a.BuildSteps(cfg, o.Only)
	if err != nil {
		return err
	}
	r := newRenderer(a.Stderr, a.Log)
	runner := pipeline.New(pipeline.Options{
		Steps:    steps,
		LockPath: RunLockPath(cfg),
		Wait:     o.Wait,
		Sink:     r.Sink,
		Logger:   a.Log,
		Around:   a.assembler().Around(cfg),
	})
	defer exitOnSecondSignal(a.Ctx, a.Stderr)()
	link := o.Iface
	if link == "" {
		link = upLink(cfg)
	}
	hist := a.assembler().Recorder(cfg).Begin(link)
	rep, err := runner.Run(a.Ctx, pipeline.Request{Cause: o.Cause, Iface: o.Iface})
	if errkind.KindOf(err) == errkind.Locked && len(rep.Stages) == 0 {
		return err
	}
	hist.End(rep, time.Time{})
	printSummary(a.Stdout, rep)
	if code := rep.ExitCode(); code != 0 {
		return exitStatus(code)
	}
	return nil
}

// exitOnSecondSignal makes a second SIGINT/SIGTERM exit the process at
// once. The first one cancels ctx (main's signal context), and the runner
// abandons a stage that ignores that after pipeline.DefaultAbandonAfter;
// the second is for whoever will not wait for that. Call the returned
// function when the run is over.
func exitOnSecondSignal(ctx context.Context, stderr io.Writer) (stop func()) {
	ch := make(chan os.Signal, 1)
	done := make(chan struct{})
	var mu sync.Mutex
	stopped := false
	unhook := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		go func() {
			select {
			case sig := <-ch:
				fmt.Fprintf(stderr, "linkctl: second signal (%v): exiting now\n", sig)
				os.Exit(128 + int(sig.(syscall.Signal)))
			case <-done:
			}
		}()
	})
	return func() {
		unhook()
		mu.Lock()
		stopped = true
		signal.Stop(ch)
		mu.Unlock()
		close(done)
	}
}
