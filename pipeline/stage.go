package pipeline

import (
	"context"

	"github.com/linkctl/linkctl/internal/event"
)

// Stage is one step of the pipeline. Stage packages (flush, fetch,
// linkwatch, ...) do not implement it themselves: they take their own Options
// and return their own results, and cmd/linkctl adapts them with [Func], so
// that no stage imports the pipeline or another stage.
//
// Run must return when ctx is done; context.Cause(ctx) says why (link down,
// shutdown, stage timeout). Progress goes to sink. The returned error is
// classified with package errkind (temporary or permanent); a nil error with
// Report.Result set to event.Nothing or event.Skipped says the stage had
// nothing to do or chose not to run.
type Stage interface {
	Name() string
	Run(ctx context.Context, sink event.Sink) (Report, error)
}

// Report is what a stage tells the runner about a run that did not fail.
type Report struct {
	Result  event.Result     // event.OK when empty
	Summary string           // one line for the summary and status ("3 messages, 41 kB")
	Counts  map[string]int64 // named figures for metrics: "messages", "bytes", "deferred", ...
	// Accounts are figures per account (fetch: "messages", "bytes",
	// "bytes_down", "bytes_up"), for the run history and metrics.
	Accounts map[string]map[string]int64
}

// Func adapts a function to a Stage.
type Func struct {
	StageName string
	Fn        func(ctx context.Context, sink event.Sink) (Report, error)
}

// Name returns the stage's name.
func (f Func) Name() string { return f.StageName }

// Run calls the function.
func (f Func) Run(ctx context.Context, sink event.Sink) (Report, error) { return f.Fn(ctx, sink) }
