package pipeline

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
)

// recorder is a fake stage that records when it ran.
type recorder struct {
	mu  sync.Mutex
	ran []string
}

func (rec *recorder) stage(name string, fn func(ctx context.Context) (Report, error)) Stage {
	return Func{StageName: name, Fn: func(ctx context.Context, _ event.Sink) (Report, error) {
		rec.mu.Lock()
		rec.ran = append(rec.ran, name)
		rec.mu.Unlock()
		if fn == nil {
			return Report{}, nil
		}
		return fn(ctx)
	}}
}

func (rec *recorder) names() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.ran)
}

func fail(temp bool) func(context.Context) (Report, error) {
	return func(context.Context) (Report, error) {
		return Report{}, errkind.New(errkind.Network, temp, "", "boom")
	}
}

func TestStopOnErrorSkipsTheRestButAlways(t *testing.T) {
	rec := &recorder{}
	r := New(Options{Steps: []Step{
		{Stage: rec.stage("one", nil)},
		{Stage: rec.stage("two", fail(false))},
		{Stage: rec.stage("three", nil)},
		{Stage: rec.stage("drop", nil), Always: true},
	}})
	rep, err := r.Run(context.Background(), Request{Cause: "test"})
	if err == nil {
		t.Fatal("run with a failing stage returned no error")
	}
	if got, want := rec.names(), []string{"one", "two", "drop"}; !slices.Equal(got, want) {
		t.Fatalf("ran %v, want %v", got, want)
	}
	if rep.Stages[2].Result != event.Skipped {
		t.Errorf("third stage result %q, want skipped", rep.Stages[2].Result)
	}
	if rep.Stages[1].Result != event.Permanent {
		t.Errorf("failing stage result %q, want permanent", rep.Stages[1].Result)
	}
	if code := rep.ExitCode(); code != int(errkind.Partial) {
		t.Errorf("exit code %d, want %d (some failed, others succeeded)", code, errkind.Partial)
	}
}

func TestContinueOnError(t *testing.T) {
	rec := &recorder{}
	r := New(Options{Steps: []Step{
		{Stage: rec.stage("one", fail(true)), OnError: Continue},
		{Stage: rec.stage("two", nil)},
	}})
	rep, _ := r.Run(context.Background(), Request{})
	if got := rec.names(); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("ran %v", got)
	}
	if rep.Stages[0].Result != event.Temporary {
		t.Errorf("result %q, want temporary", rep.Stages[0].Result)
	}
}

func TestOnlyFailuresExitWithTheirKind(t *testing.T) {
	r := New(Options{Steps: []Step{{Stage: Func{StageName: "a", Fn: func(context.Context, event.Sink) (Report, error) {
		return Report{}, errkind.Permanent(errkind.Auth, "", "bad password")
	}}}}})
	rep, _ := r.Run(context.Background(), Request{})
	if rep.ExitCode() != int(errkind.Auth) {
		t.Fatalf("exit %d, want %d", rep.ExitCode(), errkind.Auth)
	}
}

func TestNothingToDoExitsOne(t *testing.T) {
	r := New(Options{Steps: []Step{{Stage: Func{StageName: "fetch", Fn: func(context.Context, event.Sink) (Report, error) {
		return Report{Result: event.Nothing}, nil
	}}}}})
	rep, err := r.Run(context.Background(), Request{})
	if err != nil || rep.ExitCode() != 1 {
		t.Fatalf("err %v exit %d, want nil and 1", err, rep.ExitCode())
	}
}

func TestStageTimeout(t *testing.T) {
	r := New(Options{Steps: []Step{{Timeout: 20 * time.Millisecond, Stage: Func{StageName: "slow", Fn: func(ctx context.Context, _ event.Sink) (Report, error) {
		<-ctx.Done()
		return Report{}, ctx.Err()
	}}}}})
	rep, err := r.Run(context.Background(), Request{})
	if err == nil || rep.Stages[0].Result != event.Temporary {
		t.Fatalf("err %v result %q, want a temporary timeout", err, rep.Stages[0].Result)
	}
	if got := rep.Stages[0].Err; !contains(got, "timed out after 20ms") {
		t.Errorf("error %q does not say it timed out", got)
	}
}

func TestCancelReachesStageWithCause(t *testing.T) {
	started := make(chan struct{})
	var sawCause atomic.Value
	rec := &recorder{}
	r := New(Options{Steps: []Step{
		{Stage: Func{StageName: "fetch", Fn: func(ctx context.Context, _ event.Sink) (Report, error) {
			close(started)
			<-ctx.Done()
			sawCause.Store(context.Cause(ctx).Error())
			return Report{}, errors.New("use of closed network connection")
		}}},
		{Stage: rec.stage("drop", nil), Always: true},
	}})
	go func() { <-started; r.Cancel(errors.New("link down")) }()
	rep, err := r.Run(context.Background(), Request{})
	if err == nil || rep.Result != event.Cancelled {
		t.Fatalf("err %v result %q, want cancelled", err, rep.Result)
	}
	if sawCause.Load() != "link down" {
		t.Errorf("stage saw cause %v, want link down", sawCause.Load())
	}
	if rep.Stages[0].Err != "link down" {
		t.Errorf("stage error %q, want the cause", rep.Stages[0].Err)
	}
	if len(rec.names()) != 0 {
		t.Errorf("after a cancellation %v still ran", rec.names())
	}
}

func TestGroupRunsConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	wg.Add(2)
	both := func(ctx context.Context, _ event.Sink) (Report, error) {
		wg.Done()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
			return Report{}, nil
		case <-ctx.Done():
			return Report{}, errors.New("the other member never started")
		}
	}
	r := New(Options{Steps: []Step{{Timeout: 5 * time.Second, Group: []Step{
		{Stage: Func{StageName: "flush", Fn: both}},
		{Stage: Func{StageName: "etrn", Fn: both}},
	}}}})
	rep, err := r.Run(context.Background(), Request{})
	if err != nil {
		t.Fatalf("group: %v", err)
	}
	if len(rep.Stages) != 2 {
		t.Fatalf("reports %v", rep.Stages)
	}
}

func TestLockBetweenRunners(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "run.lock")
	inside := make(chan struct{})
	release := make(chan struct{})
	a := New(Options{LockPath: lock, Steps: []Step{{Stage: Func{StageName: "a", Fn: func(context.Context, event.Sink) (Report, error) {
		close(inside)
		<-release
		return Report{}, nil
	}}}}})
	done := make(chan error)
	go func() { _, err := a.Run(context.Background(), Request{}); done <- err }()
	<-inside

	ran := false
	b := New(Options{LockPath: lock, Steps: []Step{{Stage: Func{StageName: "b", Fn: func(context.Context, event.Sink) (Report, error) {
		ran = true
		return Report{}, nil
	}}}}})
	_, err := b.Run(context.Background(), Request{})
	if errkind.KindOf(err) != errkind.Locked || ran {
		t.Fatalf("second runner: err %v ran %v, want a Locked error and no stage", err, ran)
	}
	if !contains(err.Error(), "pid") {
		t.Errorf("lock error %q does not name the holder", err)
	}

	bw := New(Options{LockPath: lock, Wait: true, Steps: b.steps})
	waited := make(chan error)
	go func() { _, err := bw.Run(context.Background(), Request{}); waited <- err }()
	select {
	case err := <-waited:
		t.Fatalf("waiting runner did not wait: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil || !ran {
		t.Fatalf("waiting runner: err %v ran %v", err, ran)
	}
}

func TestPanickingStageIsAnError(t *testing.T) {
	r := New(Options{Steps: []Step{{Stage: Func{StageName: "p", Fn: func(context.Context, event.Sink) (Report, error) {
		panic("bug")
	}}}}})
	_, err := r.Run(context.Background(), Request{})
	if err == nil || !contains(err.Error(), "panicked") {
		t.Fatalf("err %v", err)
	}
}

func TestEventsBracketEachStage(t *testing.T) {
	var mu sync.Mutex
	var types []event.Type
	r := New(Options{Sink: func(e event.Event) {
		mu.Lock()
		types = append(types, e.Type)
		mu.Unlock()
	}, Steps: []Step{{Stage: Func{StageName: "s", Fn: func(_ context.Context, sink event.Sink) (Report, error) {
		sink.Emit(event.Event{Type: event.Message, Count: 1, Bytes: 10})
		return Report{}, nil
	}}}}})
	r.Run(context.Background(), Request{})
	want := []event.Type{event.RunStart, event.StageStart, event.Message, event.StageEnd, event.RunEnd}
	if !slices.Equal(types, want) {
		t.Fatalf("events %v, want %v", types, want)
	}
}

// TestBoundariesAreEventsNotLogLines: the run and stage boundaries reach
// the sink with everything a log line needs (cause, interface, run id,
// result, summary and error apart, duration), and the runner's own logger
// gets none of them: whoever renders the events logs them, once.
func TestBoundariesAreEventsNotLogLines(t *testing.T) {
	var logged bytes.Buffer
	var mu sync.Mutex
	var evs []event.Event
	r := New(Options{Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Sink: func(e event.Event) {
			mu.Lock()
			evs = append(evs, e)
			mu.Unlock()
		}, Steps: []Step{
			{Stage: Func{StageName: "ok", Fn: func(context.Context, event.Sink) (Report, error) {
				return Report{Summary: "2 messages"}, nil
			}}},
			{Stage: Func{StageName: "bad", Fn: func(context.Context, event.Sink) (Report, error) {
				return Report{Summary: "1 of 2 servers"}, errkind.Permanent(errkind.Refused, "", "458 unable to queue")
			}}, OnError: Continue},
		}})
	r.Run(context.Background(), Request{Cause: "up edge", Iface: "ppp0"})
	if logged.Len() != 0 {
		t.Errorf("the runner logged beside its events:\n%s", logged.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(evs) != 6 {
		t.Fatalf("events %+v", evs)
	}
	if e := evs[0]; e.Type != event.RunStart || e.Run != 1 || e.Cause != "up edge" || e.Text != "ppp0" {
		t.Errorf("run.start %+v", e)
	}
	if e := evs[2]; e.Type != event.StageEnd || e.Stage != "ok" || e.Result != event.OK || e.Text != "2 messages" || e.Err != "" {
		t.Errorf("stage.end of ok %+v", e)
	}
	if e := evs[4]; e.Type != event.StageEnd || e.Stage != "bad" || e.Result != event.Permanent || e.Text != "1 of 2 servers" || e.Err != "458 unable to queue" || e.Run != 1 {
		t.Errorf("stage.end of bad %+v", e)
	}
	if e := evs[5]; e.Type != event.RunEnd || e.Result != event.Permanent || !strings.Contains(e.Err, "458") || e.Elapsed <= 0 {
		t.Errorf("run.end %+v", e)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// stubborn is a stage that ignores its context: it returns only when
// released (the IMAP deadlock of issue 15, as a stage bug of any kind).
type stubborn struct {
	name    string
	started chan struct{}
	release chan struct{}
	runs    atomic.Int32
}

func newStubborn(name string) *stubborn {
	return &stubborn{name: name, started: make(chan struct{}, 8), release: make(chan struct{})}
}

func (s *stubborn) stage() Stage {
	return Func{StageName: s.name, Fn: func(ctx context.Context, sink event.Sink) (Report, error) {
		s.runs.Add(1)
		s.started <- struct{}{}
		<-s.release
		sink.Emit(event.Event{Type: event.Note, Text: "late note from an abandoned stage"})
		return Report{}, errors.New("returned at last")
	}}
}

// runWithin runs r in a goroutine and fails the test if the run has not
// returned within limit: without abandonment, it never returns.
func runWithin(t *testing.T, r *Runner, limit time.Duration) (RunReport, time.Duration) {
	t.Helper()
	type out struct {
		rep RunReport
		d   time.Duration
	}
	ch := make(chan out, 1)
	go func() {
		t0 := time.Now()
		rep, _ := r.Run(context.Background(), Request{Cause: "test"})
		ch <- out{rep, time.Since(t0)}
	}()
	select {
	case o := <-ch:
		return o.rep, o.d
	case <-time.After(limit):
		t.Fatalf("the run did not return within %s: a stage that ignores its context holds it", limit)
	}
	return RunReport{}, 0
}

// TestCancelAbandonsAStageThatIgnoresItsContext: a link-down cancel ends
// the run within AbandonAfter even though the stage never returns; the
// report and Status name the stage; the stage is not started again while
// its goroutine lives, the others are; once it returns it runs again.
func TestCancelAbandonsAStageThatIgnoresItsContext(t *testing.T) {
	st := newStubborn("fetch")
	rec := &recorder{}
	var mu sync.Mutex
	var notes []string
	r := New(Options{AbandonAfter: 300 * time.Millisecond, Steps: []Step{
		{Stage: st.stage(), OnError: Continue},
		{Stage: rec.stage("drop", nil), Always: true},
	}, Sink: func(e event.Event) {
		if e.Type == event.Note {
			mu.Lock()
			notes = append(notes, e.Text)
			mu.Unlock()
		}
	}})
	go func() {
		<-st.started
		r.Cancel(errors.New("link down"))
		// During the cancellation the runner still answers, and says
		// what it waits for.
		s := r.Status()
		if !s.Running || s.Cancelling == nil || s.Cancelling.Cause != "link down" || !slices.Equal(s.Current, []string{"fetch"}) {
			t.Errorf("status during the cancellation: %+v", s)
		}
	}()
	rep, took := runWithin(t, r, 5*time.Second)
	if took > 2*time.Second {
		t.Errorf("the run took %s after a cancel with AbandonAfter 300ms", took)
	}
	want := "stage fetch did not return within 300ms after cancel (cause: link down)"
	if rep.Result != event.Cancelled || rep.Stages[0].Result != event.Cancelled || rep.Stages[0].Err != want || !rep.Stages[0].Abandoned {
		t.Fatalf("report %+v, want the fetch cancelled with %q", rep, want)
	}
	if rep.Err == nil || !strings.Contains(rep.Err.Error(), want) {
		t.Errorf("run error %v does not name the stage", rep.Err)
	}
	s := r.Status()
	if s.Running || len(s.Stuck) != 1 || s.Stuck[0].Stage != "fetch" || s.Stuck[0].Run != rep.ID || s.Stuck[0].Cause != "link down" {
		t.Fatalf("status after the run: %+v", s)
	}

	// The next run does not start fetch beside its stuck instance; drop runs.
	rep, _ = runWithin(t, r, 5*time.Second)
	if n := st.runs.Load(); n != 1 {
		t.Errorf("the stuck stage was started %d times", n)
	}
	if rep.Stages[0].Result != event.Temporary || !strings.Contains(rep.Stages[0].Err, "stage fetch not started: its instance of run 1 has not returned") {
		t.Errorf("second run's fetch: %+v", rep.Stages[0])
	}
	if got := rec.names(); !slices.Equal(got, []string{"drop"}) {
		t.Errorf("second run ran %v, want drop", got)
	}

	// It returns at last: its late event goes nowhere, and fetch runs again.
	close(st.release)
	for i := 0; len(r.Status().Stuck) > 0; i++ {
		if i > 500 {
			t.Fatal("the returned stage is still listed as stuck")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	if len(notes) != 0 {
		t.Errorf("an abandoned stage's events reached the sink: %q", notes)
	}
	mu.Unlock()
	runWithin(t, r, 5*time.Second)
	if n := st.runs.Load(); n != 2 {
		t.Errorf("after it returned the stage ran %d times in all, want 2", n)
	}
}

// TestStageTimeoutAbandonsAStageThatIgnoresItsContext: the stage's own
// timeout is enforced even on a stage that ignores it; the run goes on.
func TestStageTimeoutAbandonsAStageThatIgnoresItsContext(t *testing.T) {
	st := newStubborn("fetch")
	defer close(st.release)
	rec := &recorder{}
	r := New(Options{AbandonAfter: 100 * time.Millisecond, Steps: []Step{
		{Stage: st.stage(), Timeout: 50 * time.Millisecond, OnError: Continue},
		{Stage: rec.stage("after", nil)},
	}})
	rep, _ := runWithin(t, r, 5*time.Second)
	if got := rep.Stages[0]; got.Result != event.Temporary || got.Kind != errkind.Internal ||
		!strings.Contains(got.Err, "stage fetch did not return within 100ms after cancel (cause: stage fetch timed out after 50ms)") {
		t.Errorf("fetch report %+v", got)
	}
	if !slices.Equal(rec.names(), []string{"after"}) {
		t.Errorf("after the abandoned stage ran %v", rec.names())
	}
}

// TestGroupMemberThatIgnoresCancelIsAbandoned: in a group, the member that
// returns reports normally and the stuck one is abandoned.
func TestGroupMemberThatIgnoresCancelIsAbandoned(t *testing.T) {
	st := newStubborn("etrn")
	defer close(st.release)
	rec := &recorder{}
	r := New(Options{AbandonAfter: 100 * time.Millisecond, Steps: []Step{{Group: []Step{
		{Stage: st.stage()},
		{Stage: rec.stage("flush", func(ctx context.Context) (Report, error) { <-ctx.Done(); return Report{}, ctx.Err() })},
	}}}})
	go func() { <-st.started; r.Cancel(errors.New("shutdown")) }()
	rep, _ := runWithin(t, r, 5*time.Second)
	if len(rep.Stages) != 2 || !rep.Stages[0].Abandoned || rep.Stages[1].Abandoned || rep.Stages[1].Err != "shutdown" {
		t.Errorf("reports %+v", rep.Stages)
	}
}

// TestDeferredMailDoesNotStopTheRun: a flush that leaves outbound mail
// deferred (errkind.Deferred) lets the later stages run even under
// on_error: stop, and the run's exit status says "still deferred" (21)
// rather than "some stages failed".
func TestDeferredMailDoesNotStopTheRun(t *testing.T) {
	rec := &recorder{}
	deferred := func(context.Context) (Report, error) {
		return Report{Summary: "exim: 0 of 1 delivered, 1 deferred"}, errkind.Temporary(errkind.Deferred, "flush: exim", "outbound mail still deferred")
	}
	r := New(Options{Steps: []Step{
		{Stage: rec.stage("flush", deferred), OnError: Stop},
		{Stage: rec.stage("fetch", nil)},
	}})
	rep, err := r.Run(context.Background(), Request{})
	if got := rec.names(); !slices.Equal(got, []string{"flush", "fetch"}) {
		t.Fatalf("ran %v, want flush then fetch", got)
	}
	if err == nil || rep.ExitCode() != 21 || errkind.ExitCode(err) != 21 {
		t.Errorf("err %v exit %d, want exit 21 (outbound mail still deferred)", err, rep.ExitCode())
	}
	// Another failure besides: the usual "some stages failed".
	r = New(Options{Steps: []Step{
		{Stage: rec.stage("flush", deferred)},
		{Stage: rec.stage("fetch", fail(false)), OnError: Continue},
		{Stage: rec.stage("drop", nil)},
	}})
	if rep, _ := r.Run(context.Background(), Request{}); rep.ExitCode() != int(errkind.Partial) {
		t.Errorf("deferred plus a failed fetch: exit %d, want %d", rep.ExitCode(), errkind.Partial)
	}
}
