// Package daemon is `linkctl daemon`: it watches the uplink and runs the
// pipeline while the link is up, one run at a time.
//
// The flow: [New] takes state_dir/daemon.lock (one daemon per state_dir),
// listens on the control socket and builds the runner; [Daemon.Run] starts
// the link watcher and tells systemd READY=1. Then everything is a trigger
// or a cancellation:
//
//   - triggers: an up edge from the watcher, `linkctl up` on the control
//     socket, SIGUSR1, and every Interval while the link stays up ask for a
//     run of the pipeline; a notification of an IMAP watcher (idle.go) asks
//     for a fetch of its account alone. All of them go through one
//     coalescer (queue.go), which decides what runs next; the runner
//     (package pipeline) only runs what it is given. A trigger while a run
//     is in flight does not start a second run: the triggers of one kind
//     (the pipeline, or one account's fetch) coalesce into one follow-up
//     run, whose cause counts them ("linkctl up (+2 coalesced)") and which
//     starts when the current run ends (it sees the newest state of the
//     world); a queued pipeline run goes before queued IDLE fetches. A
//     `linkctl up` client gets the events and the report of the run that
//     serves its trigger.
//   - a down edge (or `linkctl down`) cancels the run in flight with the
//     cause "link down": stages stop safely (a message not yet accepted
//     locally stays on the server) and queued runs are dropped (their
//     `linkctl up` clients are told).
//   - SIGHUP calls Reload; a config that does not load is logged and the old
//     one kept. The next run takes the new steps; the IMAP watchers restart;
//     a changed interval is re-armed at once while the link is up (counted
//     from the reload; 0 stops it), so an interval added by a reload runs
//     without waiting for the next up edge; the dial policy takes the new
//     dial section (added, changed or removed) and starts its schedule
//     again, a dial in progress finishing first.
//   - SIGTERM/SIGINT (or `linkctl quit`) stop in two phases: nothing new
//     starts, queued runs are dropped, STOPPING=1 is sent, the run in
//     flight may finish for Grace (default 2s), then it is cancelled with
//     the cause "shutdown". A second signal exits at once.
//
// Cancellation always ends: a stage that does not return within
// AbandonAfter (default 6s) of its cancel is abandoned by the runner (see
// package pipeline), so SIGTERM and `linkctl quit` end the daemon, and a
// down edge ends the run, within Grace+AbandonAfter (8 s at the defaults)
// whatever a server does. The control socket is served apart from the run
// (no request waits for the run's lock), so `status` and `quit` answer
// while a stage is being cancelled: status names the run being cancelled,
// the stages it waits for (pipeline.Status Cancelling and Current) and,
// after the abandonment, the stuck stage (Status.Stuck, and its report in
// Status.Last). After a down edge the daemon is ready for the next run at
// once; a stuck stage is not started again until its goroutine returns.
//
// Every event of every run goes to Options.Sink (the CLI's renderer, which
// logs it: the runner logs no run or stage boundary itself) and to the
// `linkctl up` clients the run serves; Logger gets the daemon's own lines
// and the runner's abandoned stages. Every run is metered on its link
// (Options.Around, package meter) and leaves a record in the run history
// (Options.History, package history). After every run the metrics file is
// rewritten atomically (before any client hears the run ended;
// docs/metrics.md), and
// systemd's STATUS line always names what is going on ("run 4: fetch",
// "idle: ppp0 is up with ..."). An idle daemon wakes up for nothing: the
// interval timer only runs while the link is up.
//
// While the link is up, the accounts of Options.Idle are watched (IMAP
// IDLE, or polling): new mail there is fetched within seconds by a run of
// that account's fetch alone; see idle.go.
//
// With Options.Dial the daemon also brings the link up itself (dial.go,
// package dial): a goroutine dials when outbound mail has waited too long,
// too much of it waits, or a fixed time or interval comes, inside the
// allowed windows, never while a run is in flight or queued, the link is
// up, or the budget is spent; the up edge of the dialed link then runs the
// pipeline like any other, and its drop stage hangs up. `linkctl dial`
// dials once by hand; status shows the next dial and the last result.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/linkctl/linkctl/control"
	"github.com/linkctl/linkctl/dial"
	"github.com/linkctl/linkctl/history"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/linkwatch"
	"github.com/linkctl/linkctl/pipeline"
)

// Watcher is what the daemon needs of a link watcher (*linkwatch.Watcher;
// tests feed edges by hand).
type Watcher interface {
	Run(ctx context.Context) error
	Edges() <-chan linkwatch.Edge
}

// Reloaded is a re-read config, as far as the daemon uses it.
type Reloaded struct {
	Steps    []pipeline.Step
	Interval time.Duration
	Idle     []IdleAccount // replaces Options.Idle: the watchers restart
	Dial     *dial.Options // replaces Options.Dial (nil: no dial section)
}

// Options configures the daemon.
type Options struct {
	StateDir      string // daemon.lock lives here
	ControlSocket string // "" for none
	MetricsFile   string // "" for none
	LockPath      string // the run lock shared with `linkctl run` ("" for none)

	Steps    []pipeline.Step
	Interval time.Duration // re-run while up; 0: only on triggers
	Grace    time.Duration // SIGTERM: the run in flight may finish this long (default DefaultGrace)
	// AbandonAfter: a cancelled stage that has not returned this long
	// after its cancel is abandoned (0: pipeline.DefaultAbandonAfter).
	AbandonAfter time.Duration

	// Idle are the accounts watched while the link is up (IMAP IDLE);
	// new mail there is fetched by a run of the account's Fetch alone.
	Idle []IdleAccount

	// Dial is dial on demand (dial.go); nil: the daemon never dials.
	// Its Busy is the daemon's own.
	Dial *dial.Options

	Watcher Watcher
	// Reload re-reads the config on SIGHUP. nil: SIGHUP is logged and ignored.
	Reload func() (Reloaded, error)
	// Signals delivers SIGHUP, SIGUSR1, SIGTERM and SIGINT. nil: the daemon
	// subscribes with signal.Notify itself.
	Signals <-chan os.Signal
	Notify  Notifier   // nil: $NOTIFY_SOCKET
	Sink    event.Sink // also receives every event (the log renderer)
	Logger  *slog.Logger
	// Around is the runner's pipeline.Options.Around (the meter).
	Around func(ctx context.Context, req pipeline.Request) (context.Context, func(pipeline.RunReport))
	// History records every run (package history); nil: none.
	History *history.Recorder
}

// DefaultGrace is the default Options.Grace: with the runner's
// pipeline.DefaultAbandonAfter it keeps SIGTERM-to-exit under 10 s
// (issue 15), while a run about to end still ends on its own.
const DefaultGrace = 2 * time.Second

// Status is the daemon's answer to `linkctl status`.
type Status struct {
	PID          int             `json:"pid"`
	Link         LinkStatus      `json:"link"`
	Runner       pipeline.Status `json:"runner"`
	Pending      bool            `json:"pending"` // a follow-up run is queued
	NextInterval time.Time       `json:"next_interval,omitzero"`
	Stopping     bool            `json:"stopping,omitempty"`
	// Watchers are the IMAP watchers of the idle accounts (while up).
	Watchers []WatcherStatus `json:"watchers,omitempty"`
	// IdlePending are the accounts whose idle-triggered fetch is queued.
	IdlePending []string `json:"idle_pending,omitempty"`
	// Dial is the dial policy's state (nil: no dial section).
	Dial *dial.Status `json:"dial,omitempty"`
}

// LinkStatus is the watcher's last word.
type LinkStatus struct {
	Up     bool      `json:"up"`
	Iface  string    `json:"iface,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since,omitzero"`
}

// Daemon is a running `linkctl daemon`.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	notify  Notifier
	runner  *pipeline.Runner
	srv     *control.Server
	release func()
	dialer  *dial.Policy // never nil; without a command it never dials

	quitReq chan struct{} // `linkctl quit`
	runDone chan struct{} // a run ended (capacity 1)

	mu       sync.Mutex
	cur      *batch // the run in flight
	queue    queue  // the runs waiting for it (queue.go)
	stopping bool
	stopAt   time.Time // when stopping began
	link     LinkStatus
	nextTick time.Time
	interval time.Duration
	met      *metrics
	stage    map[string]bool // stages in flight, for STATUS
	runID    uint64
	runs     sync.WaitGroup
	runCtx   context.Context
	steps    []pipeline.Step // the pipeline (the runner's steps are set per run)

	idle     []IdleAccount
	idleGen  uint64
	watch    *watchSet // nil while no watchers run
	watchers sync.WaitGroup
}

// waiter is a `linkctl up --wait` client.
type waiter struct {
	send func(event.Event)
	done chan pipeline.RunReport
}

// Run is New followed by Daemon.Run.
func Run(ctx context.Context, opts Options) error {
	d, err := New(opts)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

// New takes the daemon lock and opens the control socket.
func New(opts Options) (*Daemon, error) {
	if opts.Watcher == nil {
		return nil, errkind.Permanent(errkind.Internal, "daemon", "no link watcher")
	}
	d := &Daemon{opts: opts, log: opts.Logger, notify: opts.Notify, quitReq: make(chan struct{}, 1),
		runDone: make(chan struct{}, 1), interval: opts.Interval, met: newMetrics(),
		stage: map[string]bool{}, steps: opts.Steps, idle: opts.Idle}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.notify == nil {
		d.notify = FromEnv()
	}
	if d.opts.Grace <= 0 {
		d.opts.Grace = DefaultGrace
	}
	d.dialer = dial.New(d.dialOptions(opts.Dial))
	release, err := lockStateDir(opts.StateDir)
	if err != nil {
		return nil, err
	}
	d.release = release
	if opts.ControlSocket != "" {
		srv, err := control.Listen(opts.ControlSocket, d.log)
		if err != nil {
			release()
			return nil, err
		}
		d.srv = srv
	}
	// The runner logs no run or stage boundary (Options.Sink renders
	// them, once); its Logger gets the abandoned stages.
	d.runner = pipeline.New(pipeline.Options{Steps: opts.Steps, LockPath: opts.LockPath, Wait: true,
		Sink: d.sink, Logger: d.log, AbandonAfter: opts.AbandonAfter, Around: opts.Around})
	return d, nil
}

// Superseded says why the drop stage of the run in flight should not hang
// up at all ("" when it may): a follow-up run is already requested, and
// that run's own drop will hang up when it is done.
func (d *Daemon) Superseded() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if b := d.queue.find(""); b != nil {
		return "a follow-up run is already requested (" + b.reqs[0].Cause + ")"
	}
	return ""
}

// Busy says what holds the link beyond the stage asking ("" for nothing):
// the drop stage's Busy hook. Another stage of this run still in flight
// keeps the link up.
func (d *Daemon) Busy(self string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var other []string
	for s := range d.stage {
		if s != self {
			other = append(other, s)
		}
	}
	if len(other) > 0 {
		sort.Strings(other)
		return "stage " + strings.Join(other, ", ") + " still running"
	}
	return ""
}

// Run serves until a shutdown completes or ctx is done (which exits at
// once, like a second signal).
func (d *Daemon) Run(ctx context.Context) error {
	defer d.release()
	sigs := d.opts.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(ch)
		sigs = ch
	}

	// runCtx outlives ctx's first phase: only an explicit cancel stops runs.
	runCtx, cancelRuns := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelRuns(errors.New("daemon exiting"))
	d.mu.Lock()
	d.runCtx = runCtx
	d.mu.Unlock()
	defer func() {
		d.stopWatchers(causeShutdown())
		d.waitWatchers()
	}()

	wctx, stopWatch := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Go(func() {
		if err := d.opts.Watcher.Run(wctx); err != nil {
			d.log.Error("link watcher stopped", "err", err)
		}
	})
	if d.srv != nil {
		bg.Go(func() { d.srv.Serve(wctx, d.handle) })
	}
	bg.Go(func() { d.runDialer(wctx) })
	defer func() {
		stopWatch()
		bg.Wait()
	}()

	d.notify("READY=1\nSTATUS=waiting for the link")
	d.log.Info("daemon started", "pid", os.Getpid(), "control_socket", d.opts.ControlSocket)

	var (
		tick   *time.Timer
		tickC  <-chan time.Time
		grace  <-chan time.Time
		edges  = d.opts.Watcher.Edges()
		startT = func() {
			d.mu.Lock()
			iv := d.interval
			if d.stopping {
				iv = 0
			}
			if iv > 0 {
				d.nextTick = time.Now().Add(iv)
			}
			d.mu.Unlock()
			if iv <= 0 {
				return
			}
			if tick == nil {
				tick = time.NewTimer(iv)
			} else {
				tick.Reset(iv)
			}
			tickC = tick.C
		}
		stopT = func() {
			if tick != nil {
				tick.Stop()
			}
			tickC = nil
			d.mu.Lock()
			d.nextTick = time.Time{}
			d.mu.Unlock()
		}
	)

	beginStop := func(why string) bool {
		d.mu.Lock()
		if d.stopping {
			d.mu.Unlock()
			return false
		}
		d.stopping, d.stopAt = true, time.Now()
		dropped := d.queue.drop(false)
		running := d.cur != nil
		d.mu.Unlock()
		fail(dropped, errkind.Temporary(errkind.Internal, "", "the daemon is stopping"))
		d.stopWatchers(causeShutdown())
		stopT()
		d.notify("STOPPING=1\nSTATUS=stopping: " + why)
		if running {
			d.log.Info("stopping: letting the run in flight finish", "why", why, "grace", d.opts.Grace)
			grace = time.After(d.opts.Grace)
		} else {
			d.log.Info("stopping", "why", why)
		}
		return true
	}
	idle := func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.cur == nil
	}

	for {
		select {
		case <-ctx.Done():
			d.exitNow(cancelRuns, "context done")
			return nil
		case e, ok := <-edges:
			if !ok {
				edges = nil
				continue
			}
			d.onEdge(e)
			if e.Up {
				d.trigger(pipeline.Request{Cause: "up edge (" + e.Cause + ")", Iface: e.Iface}, nil)
				startT()
			} else {
				stopT()
			}
		case <-tickC:
			d.trigger(pipeline.Request{Cause: "interval", Iface: d.linkIface()}, nil)
			startT()
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				if d.reload() && d.linkUp() {
					// A new interval counts from now: one added by
					// the reload runs without waiting for an up edge.
					stopT()
					startT()
				}
			case syscall.SIGUSR1:
				d.trigger(pipeline.Request{Cause: "SIGUSR1", Iface: d.linkIface()}, nil)
			default:
				if !beginStop(sig.String()) {
					d.log.Warn("second signal: exiting now", "signal", sig)
					d.exitNow(cancelRuns, "second signal")
					return nil
				}
				if idle() {
					return nil
				}
			}
		case <-d.quitReq:
			if beginStop("linkctl quit") && idle() {
				return nil
			}
		case <-grace:
			d.log.Warn("grace period over: cancelling the run in flight", "grace", d.opts.Grace)
			d.runner.Cancel(errkind.Temporary(errkind.Internal, "", "shutdown"))
		case <-d.runDone:
			d.mu.Lock()
			done := d.stopping && d.cur == nil
			d.mu.Unlock()
			if done {
				d.runs.Wait()
				d.log.Info("daemon stopped")
				return nil
			}
		}
	}
}

// exitNow cancels everything and returns without waiting for stages.
func (d *Daemon) exitNow(cancelRuns context.CancelCauseFunc, why string) {
	d.notify("STOPPING=1\nSTATUS=exiting: " + why)
	d.stopWatchers(causeShutdown())
	d.runner.Cancel(errkind.Temporary(errkind.Internal, "", "shutdown"))
	cancelRuns(errkind.Temporary(errkind.Internal, "", "shutdown"))
	d.mu.Lock()
	if !d.stopping {
		d.stopping, d.stopAt = true, time.Now()
	}
	dropped := d.queue.drop(false)
	d.mu.Unlock()
	fail(dropped, errkind.Temporary(errkind.Internal, "", "the daemon exited"))
	// Cancelled stages return within moments (the exec stage's own grace
	// aside); give them that, not more.
	done := make(chan struct{})
	go func() { d.runs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		d.log.Warn("exiting with a stage still stopping")
	}
}

func (d *Daemon) linkIface() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.link.Iface
}

func (d *Daemon) linkUp() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.link.Up
}

func (d *Daemon) onEdge(e linkwatch.Edge) {
	d.mu.Lock()
	d.link = LinkStatus{Up: e.Up, Iface: e.Iface, Reason: e.Reason, Since: e.Time}
	d.dialer.Link(e.Up) // ends a dial's wait for the link
	d.met.linkUp(e.Up, e.Time)
	d.saveMetricsLocked() // linkctl_link_up changed
	var dropped []*batch
	if !e.Up {
		// Queued runs are moot: they would find no link.
		dropped = d.queue.drop(false)
	}
	running := d.cur != nil
	d.mu.Unlock()
	if e.Up {
		d.startWatchers(false)
		d.status("")
		return
	}
	d.stopWatchers(causeLinkDown())
	fail(dropped, errkind.Temporary(errkind.Network, "", "link down"))
	if running && d.runner.Cancel(errkind.Temporary(errkind.Network, "", "link down")) {
		d.log.Warn("link down: cancelling the run in flight", "reason", e.Reason)
	}
	d.status("")
}

// trigger asks for a run of the pipeline for req; w (may be nil) waits
// for its report. It returns false when the daemon is stopping.
func (d *Daemon) trigger(req pipeline.Request, w *waiter) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.enqueueLocked("", req, w)
}

// enqueueLocked queues req for a run of account ("" for the pipeline, see
// queue) and starts it when no run is in flight. It returns false, and
// queues nothing, when the daemon is stopping.
func (d *Daemon) enqueueLocked(account string, req pipeline.Request, w *waiter) bool {
	if d.stopping {
		return false
	}
	joined := d.queue.add(account, req, w)
	if d.cur == nil {
		d.startLocked()
		return true
	}
	if joined {
		d.log.Debug("a run is in flight: the trigger joins the run queued after it", "cause", req.Cause, "account", account)
	} else {
		d.log.Info("a run is in flight: the trigger queues a run after it", "cause", req.Cause, "account", account)
	}
	if w != nil {
		w.send(event.Event{Type: event.Note, Time: time.Now(), Text: "a run is in progress; yours starts when it ends"})
	}
	return true
}

// startLocked starts the next queued run, if any; no run is in flight.
func (d *Daemon) startLocked() {
	for {
		b := d.queue.next()
		if b == nil {
			return
		}
		steps := d.steps
		if b.account != "" {
			acct := d.idleAccountLocked(b.account)
			if acct == nil || acct.Fetch == nil {
				// Reloaded away: its mail is the pipeline's now.
				fail([]*batch{b}, errkind.Temporary(errkind.Internal, "", "account %s is no longer watched", b.account))
				continue
			}
			steps = []pipeline.Step{{Stage: acct.Fetch, Timeout: acct.Timeout}}
		}
		d.cur = b
		req := b.request()
		d.runs.Add(1)
		go func() {
			defer d.runs.Done()
			// Only the daemon's runs use the runner, one at a time: the
			// steps set here are the ones Run takes.
			d.runner.SetSteps(steps)
			hist := d.opts.History.Begin(req.Iface)
			rep, _ := d.runner.Run(d.runCtx, req)
			d.mu.Lock()
			upSince := d.met.upSince
			d.mu.Unlock()
			rec := hist.End(rep, upSince)
			d.finish(b, rep, rec)
		}()
		return
	}
}

func (d *Daemon) finish(b *batch, rep pipeline.RunReport, rec history.Record) {
	d.mu.Lock()
	d.met.addRun(rep)
	d.met.addRecord(rec)
	if b.account != "" {
		d.met.idleRun(rep)
	}
	// The metrics are on disk before anyone hears the run ended.
	d.saveMetricsLocked()
	d.mu.Unlock()
	for _, w := range b.waiters {
		w.done <- rep
	}
	d.mu.Lock()
	d.cur = nil
	if !d.stopping {
		d.startLocked()
	}
	d.mu.Unlock()
	d.status("")
	select {
	case d.runDone <- struct{}{}:
	default:
	}
}

// saveMetricsLocked rewrites the metrics file (a few hundred bytes: cheap
// enough to do under the lock, and it keeps the writes in order).
func (d *Daemon) saveMetricsLocked() {
	if d.opts.MetricsFile == "" {
		return
	}
	if err := writeMetrics(d.opts.MetricsFile, d.met.render(time.Now())); err != nil {
		d.log.Warn("cannot write the metrics file", "err", err)
	}
}

// fail tells the waiters of batches that will not run why.
func fail(batches []*batch, err error) {
	for _, b := range batches {
		for _, w := range b.waiters {
			w.done <- pipeline.RunReport{Err: err, Result: event.Cancelled}
		}
	}
}

// sink receives every event of every run: it keeps the STATUS line and the
// stages in flight, and forwards the event to the `up --wait` clients the
// run serves.
func (d *Daemon) sink(e event.Event) {
	d.opts.Sink.Emit(e)
	d.mu.Lock()
	switch e.Type {
	case event.RunStart:
		d.runID = e.Run
	case event.StageStart:
		d.stage[e.Stage] = true
	case event.StageEnd:
		delete(d.stage, e.Stage)
	case event.RunEnd:
		clear(d.stage)
	}
	var waiters []*waiter
	if d.cur != nil {
		waiters = d.cur.waiters
	}
	d.mu.Unlock()
	for _, w := range waiters {
		w.send(e)
	}
	if e.Type == event.StageStart || e.Type == event.StageEnd {
		d.status("")
	}
}

// status sends systemd a STATUS line saying what is going on.
func (d *Daemon) status(extra string) {
	d.mu.Lock()
	var s string
	switch {
	case d.stopping:
		s = "stopping"
	case len(d.stage) > 0:
		names := make([]string, 0, len(d.stage))
		for n := range d.stage {
			names = append(names, n)
		}
		slices.Sort(names)
		s = fmt.Sprintf("run %d: %s", d.runID, strings.Join(names, "+"))
	case d.cur != nil:
		s = fmt.Sprintf("run %d", d.runID)
	case d.link.Up:
		s = "idle: " + d.link.Reason
		if d.watch != nil {
			s += fmt.Sprintf("; watching %d IMAP folder(s)", len(d.watch.status))
		}
	default:
		s = "waiting for the link"
		if d.link.Reason != "" {
			s += ": " + d.link.Reason
		}
	}
	d.mu.Unlock()
	if extra != "" {
		s += " (" + extra + ")"
	}
	d.notify("STATUS=" + s)
}

// reload re-reads the config (SIGHUP) and reports whether the interval
// changed: the caller re-arms the interval timer then.
func (d *Daemon) reload() (intervalChanged bool) {
	if d.opts.Reload == nil {
		d.log.Info("SIGHUP: nothing to reload")
		return false
	}
	r, err := d.opts.Reload()
	if err != nil {
		d.log.Error("config reload failed: keeping the old config", "err", err)
		d.status("reload failed")
		return false
	}
	d.mu.Lock()
	d.steps = r.Steps
	intervalChanged = d.interval != r.Interval
	d.interval = r.Interval
	d.idle = r.Idle
	restart := d.watch != nil || (d.link.Up && len(r.Idle) > 0)
	d.mu.Unlock()
	d.dialer.Update(d.dialOptions(r.Dial))
	d.log.Info("config reloaded: the next run uses it", "stages", len(r.Steps), "interval", r.Interval, "idle_accounts", len(r.Idle))
	if restart {
		// The new watchers' first connections do not notify: one catch-up
		// fetch per account covers mail that arrived in between.
		d.stopWatchers(errkind.Temporary(errkind.Internal, "", "config reloaded"))
		d.startWatchers(true)
	}
	return intervalChanged
}

// Snapshot returns the daemon's status.
func (d *Daemon) Snapshot() Status {
	st := Status{PID: os.Getpid(), Runner: d.runner.Status()}
	d.mu.Lock()
	st.Link, st.Pending, st.NextInterval, st.Stopping = d.link, d.queue.find("") != nil, d.nextTick, d.stopping
	st.Watchers = d.watcherStatusLocked()
	st.IdlePending = d.queue.accounts()
	d.mu.Unlock()
	if d.dialer.Enabled() {
		ds := d.dialer.Status()
		st.Dial = &ds
	}
	// Between edges the watcher knows the newer reason ("ppp0 has no
	// global address yet").
	if w, ok := d.opts.Watcher.(interface {
		Current() (bool, string, time.Time)
	}); ok {
		if _, reason, _ := w.Current(); reason != "" {
			st.Link.Reason = reason
		}
	}
	return st
}

// handle serves a control request.
func (d *Daemon) handle(ctx context.Context, req control.Request, send func(event.Event)) control.Reply {
	switch req.Op {
	case control.OpStatus:
		return control.Reply{Status: d.Snapshot()}
	case control.OpDial:
		return d.handleDial(ctx)
	case control.OpQuit:
		select {
		case d.quitReq <- struct{}{}:
		default:
		}
		return control.Reply{Text: "the daemon is stopping"}
	case control.OpDown:
		// The connection script says the link is going: stop now rather
		// than wait for netlink. The link state is left to the watcher.
		d.mu.Lock()
		dropped := d.queue.drop(false) // the watchers stay: the link state is the watcher's
		d.mu.Unlock()
		fail(dropped, errkind.Temporary(errkind.Network, "", "link down"))
		if d.runner.Cancel(errkind.Temporary(errkind.Network, "", "link down")) {
			d.log.Warn("linkctl down: cancelling the run in flight", "iface", req.Iface)
			return control.Reply{Text: "the run in flight was cancelled"}
		}
		return control.Reply{Text: "no run was in flight"}
	case control.OpUp:
		iface := req.Iface
		if iface == "" {
			iface = d.linkIface()
		}
		w := &waiter{send: send, done: make(chan pipeline.RunReport, 1)}
		if !d.trigger(pipeline.Request{Cause: "linkctl up", Iface: iface}, w) {
			return control.Reply{Exit: int(errkind.Internal), Error: "the daemon is stopping: no new run", Stopping: true}
		}
		if !req.Wait {
			return control.Reply{Text: "run requested"}
		}
		select {
		case rep := <-w.done:
			r := control.Reply{Exit: rep.ExitCode(), Status: rep} // the client prints the summary
			if rep.Err != nil {
				r.Error = rep.Err.Error()
			}
			return r
		case <-ctx.Done():
			return control.Reply{Exit: int(errkind.Internal), Error: "the daemon stopped before the run ended"}
		}
	}
	return control.Reply{Exit: int(errkind.Usage), Error: "unknown op " + req.Op}
}
