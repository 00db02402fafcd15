// Package event is the vocabulary stages use to report progress while a
// pipeline runs. A stage calls its Sink for each thing a user would like to
// see happen (a message fetched, a server answered, the queue drained); the
// pipeline adds run and stage boundaries; the CLI renders the stream as a live
// progress line on a terminal or one log line per event otherwise, and the
// daemon forwards it to `linkctl up` clients over the control socket.
//
// Events are plain values with JSON tags so that they cross the control
// socket unchanged.
package event

import "time"

// Type names what happened.
type Type string

// Event types. Stages emit Progress, Message and Note; the pipeline emits the
// run and stage boundaries.
const (
	RunStart   Type = "run.start"
	RunEnd     Type = "run.end"
	StageStart Type = "stage.start"
	StageEnd   Type = "stage.end"
	Message    Type = "message"  // one message moved (fetched and delivered, flushed, ...)
	Progress   Type = "progress" // bytes moving within a message or a step
	Note       Type = "note"     // a line worth showing (a server's reply, a warning)
)

// Result is how a stage or run ended.
type Result string

// Results of a stage or run.
const (
	OK        Result = "ok"
	Nothing   Result = "nothing" // ran fine, had nothing to do (no mail)
	Limited   Result = "limited" // ran fine, stopped at a limit (fetchlimit) with work left for the next run
	Temporary Result = "temporary"
	Permanent Result = "permanent"
	Skipped   Result = "skipped"
	Cancelled Result = "cancelled"
)

// Event is one thing that happened during a run. Fields that do not apply are
// left zero.
type Event struct {
	Time    time.Time `json:"time"`
	Type    Type      `json:"type"`
	Run     uint64    `json:"run,omitempty"`
	Stage   string    `json:"stage,omitempty"`
	Account string    `json:"account,omitempty"` // fetch account, ETRN server, MTA
	Result  Result    `json:"result,omitempty"`  // for *.end events
	Text    string    `json:"text,omitempty"`    // summary (*.end), note, or the interface (run.start)
	Err     string    `json:"error,omitempty"`   // why a stage or run failed (*.end)
	Cause   string    `json:"cause,omitempty"`   // why a run was cancelled or triggered

	Count      int   `json:"count,omitempty"`       // messages done so far (Message, Progress)
	Total      int   `json:"total,omitempty"`       // messages expected, if known
	Bytes      int64 `json:"bytes,omitempty"`       // bytes done so far
	TotalBytes int64 `json:"total_bytes,omitempty"` // bytes expected, if known

	Elapsed time.Duration `json:"elapsed,omitempty"` // for *.end events
}

// Sink receives events. Sinks must be safe for concurrent use: stages that
// fan out (fetch accounts, ETRN servers) call them from several goroutines.
type Sink func(Event)

// Emit sends e to s, filling in the time; a nil Sink discards.
func (s Sink) Emit(e Event) {
	if s == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	s(e)
}

// With returns a Sink that fills Stage and Account when the event leaves them
// empty, so a sub-task need not repeat them.
func (s Sink) With(stage, account string) Sink {
	if s == nil {
		return nil
	}
	return func(e Event) {
		if e.Stage == "" {
			e.Stage = stage
		}
		if e.Account == "" {
			e.Account = account
		}
		s(e)
	}
}
