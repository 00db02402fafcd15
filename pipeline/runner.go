// Package pipeline runs linkctl's stages in the order the user configured,
// one run at a time.
//
// A run starts from a Request (why: an up edge, `linkctl up`, the interval,
// SIGUSR1; and which interface). The runner takes the run lock (an flock on
// a file in state_dir, so that two processes, a daemon and a hand-started
// `linkctl run`, never run stages at once), then walks the Steps: a Step is
// one Stage, or a Group of Steps run at the same time (outbound mail uses the
// uplink direction, inbound the downlink, and the link is duplex). Each stage
// gets a context with its own timeout and the run's cancellation cause (link
// down, shutdown). When a stage fails, its OnError decides: Continue goes on,
// Stop skips what remains except the Steps marked Always (drop: the link is
// paid by the minute whether the mail went through or not). A cancelled run
// runs nothing more, not even Always steps: the link is already gone.
//
// Every boundary is reported as an event (run.start, stage.start, stage.end,
// run.end) to the Options.Sink, and that is the only place the runner
// reports them: the runner logs no boundary itself, so that whoever renders
// the events (the CLI: a live line on a terminal, one log line per event
// elsewhere; the daemon forwards them to `linkctl up` clients too) is the
// one place a run is logged. run.start carries the cause and, in Text, the
// interface; stage.end and run.end the result, the elapsed time, the
// summary (Text) and the error (Err). Options.Logger receives only what no
// event carries in full: the abandonment of a stage, at error level.
//
// Options.Around wraps each run once the lock is held: it gives the stages
// their context (the meter's Run, package meter, via package assemble) and
// hears the run's report when the last stage has returned. A run's exit
// status (RunReport.ExitCode, internal/exitcode) is 0 when every stage
// that ran did its job, 1 when none had anything to do, 13 when one
// stopped at a limit (fetchlimit or a budget), 21 when the only failure is
// outbound mail left deferred, the failure's own status when every stage
// that ran failed the same way, and 20 otherwise.
//
// A cancelled stage must return, and the runner does not trust it to: once
// a stage's context is done (the run was cancelled, or the stage's own
// timeout fired) the stage has Options.AbandonAfter (default
// DefaultAbandonAfter) to return. One that does not is abandoned: its
// goroutine is left behind, its report says "stage fetch did not return
// within 6s after cancel (cause: link down)", the runner logs that at error
// level and the run goes on (or ends), releasing the run lock, so that
// SIGTERM, `linkctl quit` and a down edge end any run in bounded time
// whatever a server or a stage bug does.
//
// What an abandoned stage could still do, and why that is safe enough: its
// context stays cancelled, so its connections are closed (stages close
// them with context.AfterFunc) and every later network read or write it
// tries fails; its events are dropped (they would land in a later run's
// progress); and the seen-store keeps its per-mailbox flock for as long as
// the stuck fetch holds a mailbox open, so no later fetch of that mailbox
// can record or delete beside it. What the runner adds on top: until the
// abandoned goroutine returns, this runner does not start a stage of the
// same name again (its report says why, Status.Stuck lists it): a second
// instance of a stage that is known to ignore its context could overlap
// the first one's effects (two sessions of one account, two drops). Other
// stages run as usual. A process that exits (SIGTERM, quit) leaves nothing
// behind; the run lock is released with the abandonment, so a separate
// `linkctl run` process is kept apart from a stuck stage only by the
// seen-store's locks.
//
// The runner does not queue or coalesce runs: Run runs now or fails with
// errkind.Locked (or waits, with Options.Wait). Deciding when to run, and
// folding triggers that come during a run into one follow-up, is the
// caller's business: the daemon does it (package daemon), `linkctl run`
// runs once.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
)

// OnError says what a failing stage does to the rest of the run.
type OnError string

// OnError values.
const (
	Stop     OnError = "stop"
	Continue OnError = "continue"
)

// Step is one entry of the pipeline: a Stage, or a Group run concurrently.
type Step struct {
	Stage   Stage
	Timeout time.Duration // 0: no timeout of its own
	OnError OnError       // "" means Stop
	Group   []Step
	Always  bool // runs even after a Stop (not after a cancellation)
}

// Name is the stage's name, or the group's members joined with "+".
func (s Step) Name() string {
	if len(s.Group) == 0 {
		if s.Stage == nil {
			return "?"
		}
		return s.Stage.Name()
	}
	names := make([]string, len(s.Group))
	for i, g := range s.Group {
		names[i] = g.Name()
	}
	return strings.Join(names, "+")
}

// Request says why a run starts.
type Request struct {
	Cause string // "up edge", "linkctl up", "interval", "SIGUSR1", "manual"
	Iface string // the interface that triggered it, if any
}

// Options configures a Runner.
type Options struct {
	Steps    []Step
	LockPath string // the run lock (flock); "" for none
	Wait     bool   // wait for the lock instead of failing with errkind.Locked
	// Sink receives every event of every run, the run and stage
	// boundaries included: the runner logs none of them itself.
	Sink event.Sink
	// Logger receives only what no event carries in full and an operator
	// must see, at error level: a stage abandoned, a stage not started
	// because its abandoned instance is still stuck (nil: discarded).
	Logger *slog.Logger
	// AbandonAfter is how long a stage whose context is done (run
	// cancelled, stage timeout) may take to return before the runner
	// abandons it (0: DefaultAbandonAfter).
	AbandonAfter time.Duration
	// Around, when set, is called as each run starts (the lock held,
	// before the first stage) with the run's context and Request: the
	// stages get the context it returns, and end is called with the run's
	// report after the last stage returned. The meter counts a run's
	// bytes on its link this way (package assemble).
	Around func(ctx context.Context, req Request) (context.Context, func(RunReport))
}

// DefaultAbandonAfter is the default Options.AbandonAfter: longer than
// the exec stage's SIGTERM-to-SIGKILL grace (5s), so that a command that
// needs SIGKILL is still waited for, and short enough that a daemon's
// shutdown grace (2s) plus this stays under 10 s.
const DefaultAbandonAfter = 6 * time.Second

// StageReport is how one stage of a run ended.
type StageReport struct {
	Name    string           `json:"name"`
	Result  event.Result     `json:"result"`
	Summary string           `json:"summary,omitempty"`
	Err     string           `json:"error,omitempty"`
	Kind    errkind.Kind     `json:"kind,omitempty"`
	Start   time.Time        `json:"start"`
	End     time.Time        `json:"end"`
	Counts  map[string]int64 `json:"counts,omitempty"`
	// Accounts: figures per account (Report.Accounts).
	Accounts map[string]map[string]int64 `json:"accounts,omitempty"`
	// Abandoned: the stage did not return in time after its context was
	// done (Err says so); its goroutine may still be running.
	Abandoned bool `json:"abandoned,omitempty"`
}

// RunReport is how a run ended.
type RunReport struct {
	ID     uint64        `json:"id"`
	Cause  string        `json:"cause"`
	Iface  string        `json:"iface,omitempty"`
	Start  time.Time     `json:"start"`
	End    time.Time     `json:"end"`
	Stages []StageReport `json:"stages"`
	Result event.Result  `json:"result"`
	Err    error         `json:"-"`
}

// ExitCode is the process exit status for the run (internal/exitcode): 0
// when every stage that ran succeeded (or some had nothing to do), 1 when
// none had anything to do, 13 when none failed but one stopped at a limit
// (fetchlimit: fetchmail's 13), the failure's own status when every stage
// that ran failed the same way, 20 when some failed and others succeeded.
func (r RunReport) ExitCode() int {
	if r.Err != nil && len(r.Stages) == 0 {
		return errkind.ExitCode(r.Err)
	}
	ok, nothing, failures := tally(r.Stages)
	failed := len(failures)
	kinds := map[errkind.Kind]bool{}
	for _, s := range failures {
		kinds[s.Kind] = true
	}
	switch {
	case failed == 0 && ok == 0 && nothing > 0:
		return int(errkind.NoMail)
	case failed == 0 && limited(r.Stages):
		return int(errkind.FetchLimit)
	case failed == 0:
		return 0
	case len(kinds) == 1 && kinds[errkind.Deferred]:
		// The only "failure" is outbound mail left deferred: say that
		// (exit 21), not "some stages failed".
		return int(errkind.Deferred)
	case ok+nothing > 0:
		return int(errkind.Partial)
	case len(kinds) == 1:
		for k := range kinds {
			return int(k)
		}
	}
	return int(errkind.Partial)
}

// Status is a snapshot of the runner for `linkctl status`.
type Status struct {
	Running bool                   `json:"running"`
	Run     uint64                 `json:"run,omitempty"`
	Cause   string                 `json:"cause,omitempty"`
	Since   time.Time              `json:"since,omitzero"`
	Current []string               `json:"current,omitempty"` // stages in flight
	Last    map[string]StageReport `json:"last,omitempty"`    // last report per stage
	LastRun *RunReport             `json:"last_run,omitempty"`
	// Cancelling is set while the run in flight is cancelled and its
	// stages (Current) have not returned yet.
	Cancelling *Cancelling `json:"cancelling,omitempty"`
	// Stuck are abandoned stages whose goroutine has not returned: they
	// are not started again until it does.
	Stuck []Stuck `json:"stuck,omitempty"`
}

// Cancelling says why and since when the run in flight is being cancelled.
type Cancelling struct {
	Cause string    `json:"cause"`
	Since time.Time `json:"since"`
}

// Stuck is a stage abandoned after it did not return in time.
type Stuck struct {
	Stage     string    `json:"stage"`
	Run       uint64    `json:"run"`
	Cause     string    `json:"cause"`     // why it was cancelled
	Cancelled time.Time `json:"cancelled"` // when its context was done
	Abandoned time.Time `json:"abandoned"`
}

// Runner runs the pipeline. Its methods are safe for concurrent use.
type Runner struct {
	opts  Options
	alarm *slog.Logger
	sem   chan struct{} // one run at a time in this process

	mu      sync.Mutex
	steps   []Step
	nextID  uint64
	running *runState
	last    map[string]StageReport
	lastRun *RunReport
	stuck   map[string]*Stuck // by stage name
}

type runState struct {
	id      uint64
	req     Request
	since   time.Time
	cancel  context.CancelCauseFunc
	current map[string]bool
	// cancelled is when cancel was first called ("" cause: not yet).
	cancelled   time.Time
	cancelCause string
}

// New returns a Runner.
func New(opts Options) *Runner {
	alarm := opts.Logger
	if alarm == nil {
		alarm = slog.New(slog.DiscardHandler)
	}
	return &Runner{
		opts:  opts,
		alarm: alarm,
		sem:   make(chan struct{}, 1),
		steps: opts.Steps,
		last:  map[string]StageReport{},
		stuck: map[string]*Stuck{},
	}
}

// SetSteps replaces the steps for the next run (config reload). A run in
// flight keeps the steps it started with.
func (r *Runner) SetSteps(steps []Step) {
	r.mu.Lock()
	r.steps = steps
	r.mu.Unlock()
}

// Cancel cancels the run in flight, if any, with cause (for instance
// errors.New("link down")). It reports whether a run was cancelled.
func (r *Runner) Cancel(cause error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	rs := r.running
	if rs == nil {
		return false
	}
	if rs.cancelled.IsZero() {
		rs.cancelled, rs.cancelCause = time.Now(), "cancelled"
		if cause != nil {
			rs.cancelCause = cause.Error()
		}
	}
	rs.cancel(cause)
	return true
}

// Status returns a snapshot for `linkctl status`.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Status{Last: map[string]StageReport{}}
	for k, v := range r.last {
		st.Last[k] = v
	}
	if r.lastRun != nil {
		lr := *r.lastRun
		st.LastRun = &lr
	}
	if rs := r.running; rs != nil {
		st.Running, st.Run, st.Cause, st.Since = true, rs.id, rs.req.Cause, rs.since
		for name := range rs.current {
			st.Current = append(st.Current, name)
		}
		slices.Sort(st.Current)
		if !rs.cancelled.IsZero() {
			st.Cancelling = &Cancelling{Cause: rs.cancelCause, Since: rs.cancelled}
		}
	}
	for _, s := range r.stuck {
		st.Stuck = append(st.Stuck, *s)
	}
	slices.SortFunc(st.Stuck, func(a, b Stuck) int { return strings.Compare(a.Stage, b.Stage) })
	return st
}

// Run runs the pipeline once, now, in the caller's goroutine. It fails with
// an errkind.Locked error when another run holds the lock (in this process
// or, through the flock, in another) unless Options.Wait is set. The error
// is the run's overall error: nil when every stage that ran succeeded.
func (r *Runner) Run(ctx context.Context, req Request) (RunReport, error) {
	if err := r.acquire(ctx); err != nil {
		return RunReport{Cause: req.Cause, Err: err, Result: event.Skipped}, err
	}
	defer func() { <-r.sem }()
	unlock, err := lockFile(ctx, r.opts.LockPath, r.opts.Wait)
	if err != nil {
		return RunReport{Cause: req.Cause, Err: err, Result: event.Skipped}, err
	}
	defer unlock()

	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.mu.Lock()
	r.nextID++
	rs := &runState{id: r.nextID, req: req, since: time.Now(), cancel: cancel, current: map[string]bool{}}
	r.running = rs
	steps := r.steps
	r.mu.Unlock()

	rep := RunReport{ID: rs.id, Cause: req.Cause, Iface: req.Iface, Start: rs.since}
	sink := r.runSink(rs.id)
	sink.Emit(event.Event{Type: event.RunStart, Cause: req.Cause, Text: req.Iface})

	rctx = withRequest(rctx, req)
	var end func(RunReport)
	if r.opts.Around != nil {
		rctx, end = r.opts.Around(rctx, req)
	}
	stopped := false
	for _, step := range steps {
		switch {
		case rctx.Err() != nil:
			rep.Stages = append(rep.Stages, r.skip(sink, step, event.Cancelled, "run cancelled: "+causeText(rctx))...)
			continue
		case stopped && !step.Always:
			rep.Stages = append(rep.Stages, r.skip(sink, step, event.Skipped, "an earlier stage failed")...)
			continue
		}
		reports, stop := r.runStep(rctx, rs, sink, step)
		rep.Stages = append(rep.Stages, reports...)
		stopped = stopped || stop
	}

	rep.End = time.Now()
	rep.Result, rep.Err = overall(rctx, rep.Stages)
	if end != nil {
		end(rep)
	}
	r.mu.Lock()
	r.running = nil
	for _, s := range rep.Stages {
		if s.Result != event.Skipped || r.last[s.Name].Name == "" {
			r.last[s.Name] = s
		}
	}
	lr := rep
	r.lastRun = &lr
	r.mu.Unlock()
	errText := ""
	if rep.Err != nil {
		errText = rep.Err.Error()
	}
	sink.Emit(event.Event{Type: event.RunEnd, Result: rep.Result, Err: errText, Elapsed: rep.End.Sub(rep.Start)})
	return rep, rep.Err
}

func (r *Runner) acquire(ctx context.Context) error {
	select {
	case r.sem <- struct{}{}:
		return nil
	default:
	}
	if !r.opts.Wait {
		return errkind.Temporary(errkind.Locked, "", "a run is already in progress")
	}
	select {
	case r.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (r *Runner) runSink(id uint64) event.Sink {
	s := r.opts.Sink
	if s == nil {
		return nil
	}
	return func(e event.Event) {
		e.Run = id
		s(e)
	}
}

// runStep runs one step (or group) and reports whether the run must stop.
func (r *Runner) runStep(ctx context.Context, rs *runState, sink event.Sink, step Step) ([]StageReport, bool) {
	if len(step.Group) == 0 {
		rep := r.runStage(ctx, rs, sink, step)
		return []StageReport{rep}, stops(rep, step)
	}
	reports := make([]StageReport, len(step.Group))
	var wg sync.WaitGroup
	for i, member := range step.Group {
		wg.Go(func() { reports[i] = r.runStage(ctx, rs, sink, member) })
	}
	wg.Wait()
	stop := false
	for i, rep := range reports {
		if stops(rep, step.Group[i]) {
			stop = true
		}
	}
	return reports, stop
}

// stops reports whether a stage's result ends the run: a failure under
// on_error: stop. Mail left deferred by the flush (errkind.Deferred) is
// an outcome to report, not a failure that must keep the next stages
// from running, whatever on_error says.
func stops(rep StageReport, step Step) bool {
	return failed(rep.Result) && step.OnError != Continue && rep.Kind != errkind.Deferred
}

func failed(res event.Result) bool {
	return res == event.Temporary || res == event.Permanent || res == event.Cancelled
}

func (r *Runner) runStage(ctx context.Context, rs *runState, sink event.Sink, step Step) StageReport {
	name := step.Name()
	r.mu.Lock()
	rs.current[name] = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(rs.current, name)
		r.mu.Unlock()
	}()

	sctx := ctx
	if step.Timeout > 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeoutCause(ctx, step.Timeout,
			errkind.Temporary(errkind.Network, "", "stage %s timed out after %s", name, step.Timeout))
		defer cancel()
	}
	rep := StageReport{Name: name, Start: time.Now()}
	sink.Emit(event.Event{Type: event.StageStart, Stage: name})

	if st := r.stuckAs(name); st != nil {
		// Not started: see the package doc on abandoned stages.
		rep.End = rep.Start
		rep.Result, rep.Kind = event.Temporary, errkind.Internal
		rep.Err = fmt.Sprintf("stage %s not started: its instance of run %d has not returned since it was abandoned %s ago (cancelled: %s); restart linkctl to clear it",
			name, st.Run, time.Since(st.Abandoned).Round(time.Second), st.Cause)
		r.alarm.Error("stage not started: an abandoned instance is still stuck", "stage", name, "stuck_run", st.Run, "cause", st.Cause)
		r.endStage(sink, rep)
		return rep
	}

	res, err, abandoned := r.runBounded(sctx, rs, name, step.Stage, sink.With(name, ""))
	rep.End = time.Now()
	rep.Summary, rep.Counts, rep.Accounts = res.Summary, res.Counts, res.Accounts
	switch {
	case abandoned != "":
		rep.Result, rep.Kind, rep.Err, rep.Abandoned = event.Temporary, errkind.Internal, abandoned, true
		if ctx.Err() != nil {
			rep.Result = event.Cancelled
		}
	case err == nil:
		rep.Result = res.Result
		if rep.Result == "" {
			rep.Result = event.OK
		}
	case ctx.Err() != nil:
		// The run was cancelled (link down, shutdown): say why, not the
		// "use of closed network connection" the stage saw.
		rep.Result, rep.Err = event.Cancelled, causeText(ctx)
		rep.Kind = errkind.KindOf(context.Cause(ctx))
	default:
		if sctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", context.Cause(sctx), err)
		}
		rep.Result = event.Permanent
		if errkind.IsTemporary(err) {
			rep.Result = event.Temporary
		}
		rep.Err, rep.Kind = err.Error(), errkind.KindOf(err)
	}
	r.endStage(sink, rep)
	return rep
}

// endStage emits the end of a stage (its only report besides the
// StageReport: see the package doc on logging).
func (r *Runner) endStage(sink event.Sink, rep StageReport) {
	sink.Emit(event.Event{Type: event.StageEnd, Stage: rep.Name, Result: rep.Result, Text: rep.Summary, Err: rep.Err,
		Elapsed: rep.End.Sub(rep.Start)})
}

func (r *Runner) stuckAs(name string) *Stuck {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.stuck[name]; st != nil {
		c := *st
		return &c
	}
	return nil
}

// runBounded runs the stage in a goroutine of its own and waits for it
// while ctx lives, and then for at most AbandonAfter. A stage that has not
// returned by then is abandoned: abandoned is the error text that says so
// (and res, err are zero). Its goroutine is left behind; its events are
// dropped from then on, and its name stays in r.stuck until it returns.
func (r *Runner) runBounded(ctx context.Context, rs *runState, name string, s Stage, sink event.Sink) (res Report, err error, abandoned string) {
	type result struct {
		rep Report
		err error
	}
	done := make(chan result, 1) // the goroutine never blocks on it
	var detached atomic.Bool
	gated := func(e event.Event) {
		if !detached.Load() {
			sink.Emit(e)
		}
	}
	go func() {
		rep, err := safeRun(ctx, s, gated)
		done <- result{rep, err}
	}()
	select {
	case out := <-done:
		return out.rep, out.err, ""
	case <-ctx.Done():
	}
	cancelled := time.Now()
	wait := r.opts.AbandonAfter
	if wait <= 0 {
		wait = DefaultAbandonAfter
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case out := <-done:
		return out.rep, out.err, ""
	case <-t.C:
	}
	detached.Store(true)
	cause := causeText(ctx)
	msg := fmt.Sprintf("stage %s did not return within %s after cancel (cause: %s)", name, wait, cause)
	st := &Stuck{Stage: name, Run: rs.id, Cause: cause, Cancelled: cancelled, Abandoned: time.Now()}
	r.mu.Lock()
	r.stuck[name] = st
	r.mu.Unlock()
	r.alarm.Error(msg+": abandoning it; it is not started again until it returns", "stage", name, "run", rs.id)
	go func() {
		out := <-done
		r.mu.Lock()
		if r.stuck[name] == st {
			delete(r.stuck, name)
		}
		r.mu.Unlock()
		r.alarm.Warn("an abandoned stage returned at last: it may run again", "stage", name, "run", st.Run,
			"after", time.Since(cancelled).Round(time.Millisecond), "err", out.err)
	}()
	return Report{}, nil, msg
}

// safeRun turns a stage's panic into a permanent error: one broken stage
// must not take the daemon, and the other stages' mail, down with it.
func safeRun(ctx context.Context, s Stage, sink event.Sink) (rep Report, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errkind.Permanent(errkind.Internal, "", "stage %s panicked: %v", s.Name(), p)
		}
	}()
	return s.Run(ctx, sink)
}

func (r *Runner) skip(sink event.Sink, step Step, res event.Result, why string) []StageReport {
	members := step.Group
	if len(members) == 0 {
		members = []Step{step}
	}
	var out []StageReport
	for _, m := range members {
		now := time.Now()
		out = append(out, StageReport{Name: m.Name(), Result: res, Summary: why, Start: now, End: now})
		sink.Emit(event.Event{Type: event.StageEnd, Stage: m.Name(), Result: res, Text: why})
	}
	return out
}

func causeText(ctx context.Context) string {
	if c := context.Cause(ctx); c != nil {
		return c.Error()
	}
	return "cancelled"
}

// overall folds the stage results into the run's result and error.
func overall(ctx context.Context, stages []StageReport) (event.Result, error) {
	if ctx.Err() != nil {
		err := errkind.WrapTemporary(errkind.KindOf(context.Cause(ctx)), "run cancelled", context.Cause(ctx))
		for _, s := range stages {
			if s.Abandoned {
				// "run cancelled: link down; stage fetch did not return ..."
				err = fmt.Errorf("%w; %s", err, s.Err)
			}
		}
		return event.Cancelled, err
	}
	ok, nothing, failures := tally(stages)
	var errs []error
	res := event.Temporary
	for _, s := range failures {
		errs = append(errs, errkind.Wrap(s.Kind, s.Result == event.Temporary, "stage "+s.Name, errors.New(s.Err)))
		if s.Result != event.Temporary {
			res = event.Permanent
		}
	}
	switch {
	case len(errs) == 1:
		return res, errs[0]
	case len(errs) > 1:
		return res, errors.Join(errs...)
	case ok == 0 && nothing > 0:
		return event.Nothing, nil
	case limited(stages):
		return event.Limited, nil
	}
	return event.OK, nil
}

// limited reports whether a stage stopped at a limit with work left.
func limited(stages []StageReport) bool {
	for _, s := range stages {
		if s.Result == event.Limited {
			return true
		}
	}
	return false
}

// tally counts the stages that succeeded (stopping at a limit is success)
// and that had nothing to do, and
// returns those that failed (skipped stages count for nothing).
func tally(stages []StageReport) (ok, nothing int, failures []StageReport) {
	for _, s := range stages {
		switch {
		case s.Result == event.OK || s.Result == event.Limited:
			ok++
		case s.Result == event.Nothing:
			nothing++
		case failed(s.Result):
			failures = append(failures, s)
		}
	}
	return ok, nothing, failures
}

type requestKey struct{}

func withRequest(ctx context.Context, req Request) context.Context {
	return context.WithValue(ctx, requestKey{}, req)
}

// RequestFrom returns the Request of the run ctx belongs to: stages use it
// to learn the triggering interface (the exec stage passes it on as
// LINKCTL_IFACE).
func RequestFrom(ctx context.Context) Request {
	req, _ := ctx.Value(requestKey{}).(Request)
	return req
}
