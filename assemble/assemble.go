// Package assemble is the one place a validated config becomes running
// code: it turns a *config.Config into the pipeline's steps, the IMAP IDLE
// watchers and the daemon's options, by translating each config section
// into its stage's own Options (stages never import config; DESIGN.md).
//
// The flow: Steps walks cfg.Pipeline (groups become side-by-side steps)
// and calls Stage for each entry; Stage picks the builder of the stage
// named (flush, etrn, fetch, drop, exec): a switch, not a registry, so
// every stage the validator accepts has a builder here. The fetch stage's
// options (FetchOptions) are built afresh for every run: the deadlines
// (timeout, session_floor, min_rate, per_message, slot_wait), ack_window,
// and one delivery target per distinct deliver section, shared by the
// accounts that name it. DaemonOptions adds the IDLE watchers
// (IdleAccounts), dial on demand (DialOptions, with Budgets as its
// BudgetGate) and the paths; Reloaded does the same for a SIGHUP. The
// connection of a mailbox account is described once (imapOptions,
// dialer) and used by both the fetch stage and its watcher; a server's
// tls_pin, ca_file and tls_verify become its *tls.Config in one place
// (tlsConfig, through netconn.Trust), for every kind of server.
//
// Metered links (meter.go): Around is the runner's hook around each run.
// It finds the run's link (the request's interface, or the first watched
// link that is usable), begins a meter.Run by that link's policy and puts
// it in the run's context; on a metered link the fetch stage then
// retrieves smallest first and asks the meter's Admit before each
// message, and a fetch that left mail for the budget reports Limited
// (exit 13, as fetchlimit does). A meter that cannot start keeps the
// fetch from running rather than move bytes nobody counts.
//
// Besides the stages: Plan (plan.go) gathers what `linkctl plan` prints
// (fetch.Plan of the accounts, the flush driver's queue listing, the
// link's rate from the run history, a Budget's remaining bytes), and
// Recorder is the run history every run writes (package history).
//
// Nothing here fails on a validated config: the config package has already
// refused every value that would not run, and assembly only copies typed
// values. What can still fail is a resource, found when a stage runs (a
// missing password file, an MTA binary, a server): the stage reports it.
// TestEveryValidConfigAssembles and FuzzAssemble hold this.
package assemble

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/daemon"
	"github.com/linkctl/linkctl/dial"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/pipeline"
)

// Assembler builds stages for one process. Its zero value works (logging
// nowhere); one Assembler serves every run, reload and one-off command.
type Assembler struct {
	Logger *slog.Logger
	// Gate says when a link's budget is spent: dial on demand does not
	// dial then (package meter; nil: no budget).
	Gate dial.BudgetGate

	daemon   atomic.Pointer[Daemon]
	meterCfg atomic.Pointer[config.Config] // the link policies of the runs to come (Around)
}

// New returns an Assembler whose stages log to log (nil: discard).
func New(log *slog.Logger) *Assembler { return &Assembler{Logger: log} }

// Daemon is what the drop stage asks of a running daemon: whether anything
// else still holds the link, and whether a follow-up run already wants it.
type Daemon interface {
	Busy(self string) string
	Superseded() string
}

// AttachDaemon lets the drop stages built by as ask d before hanging up;
// the returned function detaches it. Without a daemon only the run itself
// can hold the link, and the runner already waited for its earlier stages.
func (as *Assembler) AttachDaemon(d Daemon) (detach func()) {
	as.daemon.Store(&d)
	return func() { as.daemon.Store(nil) }
}

func (as *Assembler) log() *slog.Logger {
	if as.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return as.Logger
}

// RunLockPath is the flock that keeps runs apart, shared by `linkctl run`,
// `linkctl up`, the one-stage commands and the daemon.
func RunLockPath(cfg *config.Config) string { return filepath.Join(cfg.StateDir, "run.lock") }

// Steps translates the config's pipeline into runner steps, keeping only
// the named stages (a step's name or its stage) when only is not empty.
// The only error is an unknown name in only (errkind.Usage).
func (as *Assembler) Steps(cfg *config.Config, only []string) ([]pipeline.Step, error) {
	for _, name := range only {
		if !slices.Contains(StageNames(cfg.Pipeline), name) {
			return nil, errkind.Permanent(errkind.Usage, "", "no stage %q in the pipeline of %s (it has: %s)",
				name, cfg.File, strings.Join(StageNames(cfg.Pipeline), ", "))
		}
	}
	return as.steps(cfg, cfg.Pipeline, only), nil
}

func (as *Assembler) steps(cfg *config.Config, in []config.Step, only []string) []pipeline.Step {
	var out []pipeline.Step
	for _, s := range in {
		if len(s.Group) > 0 {
			switch members := as.steps(cfg, s.Group, only); len(members) {
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
		onErr := pipeline.Stop
		if s.OnError == config.Continue {
			onErr = pipeline.Continue
		}
		out = append(out, pipeline.Step{Stage: as.Stage(cfg, s), Timeout: backstop(s), OnError: onErr,
			Always: s.Stage == config.StageDrop})
	}
	return out
}

// Stage is the pipeline stage of one config step. A step name the
// validator would not accept is a programming error, reported when the
// stage runs.
func (as *Assembler) Stage(cfg *config.Config, s config.Step) pipeline.Stage {
	name := s.Name
	if name == "" {
		name = s.Stage
	}
	switch s.Stage {
	case config.StageExec:
		return pipeline.Exec{StageName: name, Argv: s.Argv}
	case config.StageFlush:
		return FlushStage(name, as.FlushOptions(cfg))
	case config.StageETRN:
		return as.ETRNStage(name, cfg)
	case config.StageFetch:
		return as.FetchStage(name, cfg, nil)
	case config.StageDrop:
		return as.DropStage(name, cfg)
	}
	return pipeline.Func{StageName: name, Fn: func(context.Context, event.Sink) (pipeline.Report, error) {
		return pipeline.Report{}, errkind.Permanent(errkind.Internal, "", "%s:%d: no builder for stage %q", cfg.File, s.Line, s.Stage)
	}}
}

// backstop is the runner's deadline for a step. The mail stages take the
// same timeout themselves (flush: its drain wait) and end with their own,
// more telling result ("deferred: connection refused"); the runner's
// deadline is the backstop behind it, a little later. An exec's timeout is
// the runner's alone.
func backstop(s config.Step) time.Duration {
	if s.Timeout <= 0 || s.Stage == config.StageExec {
		return s.Timeout
	}
	return s.Timeout + max(s.Timeout/10, 10*time.Second)
}

// StageNames lists the names a step can be chosen by (`linkctl run
// STAGE`): each step's name, and its stage when that differs.
func StageNames(steps []config.Step) []string {
	var names []string
	for _, s := range steps {
		if len(s.Group) > 0 {
			names = append(names, StageNames(s.Group)...)
			continue
		}
		names = append(names, s.Name)
		if s.Stage != s.Name {
			names = append(names, s.Stage)
		}
	}
	return names
}

// DaemonOptions are the daemon's options that come from the config: the
// paths, the steps, the interval and the IDLE watchers. The caller adds
// what is not config (the watcher, the grace, the sink, Reload).
func (as *Assembler) DaemonOptions(cfg *config.Config) daemon.Options {
	steps, _ := as.Steps(cfg, nil) // no only: cannot fail
	return daemon.Options{
		StateDir:      cfg.StateDir,
		ControlSocket: cfg.ControlSocket,
		MetricsFile:   cfg.MetricsFile,
		LockPath:      RunLockPath(cfg),
		Steps:         steps,
		Interval:      cfg.Link.Interval,
		Idle:          as.IdleAccounts(cfg),
		Dial:          as.DialOptions(cfg),
		Logger:        as.Logger,
		Around:        as.Around(cfg),
		History:       as.Recorder(cfg),
	}
}

// Reloaded is what a SIGHUP changes in a running daemon. RestartNeeded
// lists the keys that changed but take effect only on a restart.
func (as *Assembler) Reloaded(old, cfg *config.Config) (r daemon.Reloaded, restartNeeded bool) {
	steps, _ := as.Steps(cfg, nil)
	as.meterCfg.Store(cfg)
	restartNeeded = !slices.Equal(cfg.Link.Watch, old.Link.Watch) || cfg.Link.Settle != old.Link.Settle ||
		cfg.StateDir != old.StateDir || cfg.ControlSocket != old.ControlSocket || cfg.MetricsFile != old.MetricsFile
	return daemon.Reloaded{Steps: steps, Interval: cfg.Link.Interval, Idle: as.IdleAccounts(cfg), Dial: as.DialOptions(cfg)}, restartNeeded
}
