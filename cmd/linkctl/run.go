package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/linkctl/linkctl/config"
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

// stageBuilder turns the config into a pipeline stage. Each stage's
// subcommand file registers one with registerStage, so this file knows no
// stage package.
type stageBuilder func(a *App, cfg *config.Config, step config.Step) (pipeline.Stage, error)

var stageBuilders = map[string]stageBuilder{}

func registerStage(name string, b stageBuilder) { stageBuilders[name] = b }

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
		Alarms:   a.Log,
	})
	defer exitOnSecondSignal(a.Ctx, a.Stderr)()
	rep, err := runner.Run(a.Ctx, pipeline.Request{Cause: o.Cause, Iface: o.Iface})
	if errkind.KindOf(err) == errkind.Locked && len(rep.Stages) == 0 {
		return err
	}
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

// RunLockPath is the flock that keeps runs apart, shared by `linkctl run`,
// `linkctl up` and the daemon.
func RunLockPath(cfg *config.Config) string { return filepath.Join(cfg.StateDir, "run.lock") }

// BuildSteps translates the config's pipeline into runner steps, keeping
// only the named stages when only is not empty.
func (a *App) BuildSteps(cfg *config.Config, only []string) ([]pipeline.Step, error) {
	for _, name := range only {
		if !hasStage(cfg.Pipeline, name) {
			return nil, errkind.New(errkind.Usage, false, "", "no stage %q in the pipeline of %s (it has: %s)",
				name, cfg.File, strings.Join(stageNames(cfg.Pipeline), ", "))
		}
	}
	return a.buildSteps(cfg, cfg.Pipeline, only)
}

func (a *App) buildSteps(cfg *config.Config, in []config.Step, only []string) ([]pipeline.Step, error) {
	var out []pipeline.Step
	for _, s := range in {
		if len(s.Group) > 0 {
			members, err := a.buildSteps(cfg, s.Group, only)
			if err != nil {
				return nil, err
			}
			switch len(members) {
			case 0:
			case 1:
				out = append(out, members[0])
			default:
				out = append(out, pipeline.Step{Group: members})
			}
			continue
		}
		if len(only) > 0 && !slices.Contains(only, s.Name) && !slices.Contains(only, s.Stage) {
			continue
		}
		stage, err := a.buildStage(cfg, s)
		if err != nil {
			return nil, err
		}
		onErr := pipeline.Stop
		if s.OnError == config.Continue {
			onErr = pipeline.Continue
		}
		out = append(out, pipeline.Step{Stage: stage, Timeout: backstop(s), OnError: onErr, Always: s.Stage == "drop"})
	}
	return out, nil
}

// backstop is the runner's deadline for a step. The mail stages take the
// same timeout themselves (flush: its drain wait) and end with their own,
// more telling result ("deferred: connection refused"); the runner's
// deadline is the backstop behind it, a little later. An exec's timeout is
// the runner's alone.
func backstop(s config.Step) time.Duration {
	if s.Timeout <= 0 || s.Stage == "exec" {
		return s.Timeout
	}
	return s.Timeout + max(s.Timeout/10, 10*time.Second)
}

func (a *App) buildStage(cfg *config.Config, s config.Step) (pipeline.Stage, error) {
	if s.Stage == "exec" {
		return pipeline.Exec{StageName: s.Name, Argv: s.Argv}, nil
	}
	b, ok := stageBuilders[s.Stage]
	if !ok {
		return nil, errkind.New(errkind.Usage, false, "",
			"%s:%d: the %s stage is not built into this version of linkctl yet", cfg.File, s.Line, s.Stage)
	}
	st, err := b(a, cfg, s)
	if err != nil {
		return nil, fmt.Errorf("cannot set up the %s stage: %w", s.Stage, err)
	}
	return st, nil
}

func hasStage(steps []config.Step, name string) bool {
	return slices.Contains(stageNames(steps), name)
}

func stageNames(steps []config.Step) []string {
	var names []string
	for _, s := range steps {
		if len(s.Group) > 0 {
			names = append(names, stageNames(s.Group)...)
			continue
		}
		names = append(names, s.Name)
		if s.Stage != s.Name {
			names = append(names, s.Stage)
		}
	}
	return names
}
