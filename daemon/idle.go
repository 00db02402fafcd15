package daemon

// IMAP IDLE while the link is up (issue 6 item 4).
//
// The flow: an up edge starts one watcher per (account, folder) of the
// accounts with `idle: true`; a down edge, `linkctl quit`/SIGTERM, or a
// SIGHUP reload (which then starts the new config's watchers) cancels them
// all through one context. A watcher's notification is a trigger for a
// fetch of that account alone, and goes through the daemon's one coalescer
// (queue.go) like every other trigger. That fetch is an ordinary run of
// the daemon's runner (the same run lock, the same sink, the same run
// numbers, `linkctl status` and metrics), whose only step is the account's
// fetch stage, looked up when the run starts (an account a reload removed
// meanwhile is not fetched):
//
//   - never two runs at once: a notification while any run is in flight
//     waits for it to end; a queued pipeline run goes first (it sees the
//     newest state of the world), then the queued idle fetches, one run per
//     account in the order they were first notified.
//   - notifications coalesce: while an account's fetch is queued, more
//     notifications (from any of its folders) join it, and the run's cause
//     is the first one's and says how many joined ("new mail (IDLE):
//     work/INBOX (+2 coalesced)"). One arriving while the account's fetch
//     runs queues one follow-up fetch, since the running one may have
//     listed the folder before the new message arrived.
//   - a down edge cancels an idle fetch in flight like any run (cause "link
//     down": what was not accepted locally stays on the server) and drops
//     the queued ones: the next up edge's pipeline fetches everything.
//     Stopping the watchers (reload, shutdown) drops the queued idle
//     fetches too.
//
// The first connection of a watcher does not notify: the up edge's own
// pipeline run fetches what arrived while the link was down. After a
// reload, whose new watchers might miss mail that arrived between the old
// watcher's end and the new one's SELECT, every idle account gets one
// catch-up fetch ("catch-up fetch (IDLE): work"). Mail that lands after the up edge's pipeline run listed
// a folder but before its watcher's first SELECT is noticed with the next
// notification (or interval run), not at once.
//
// In status and metrics an idle-triggered fetch is a run like any other:
// it takes the next run number, `linkctl status` shows it as the last run
// with its cause, its stage is named "fetch" (so the fetch stage's last
// report is the idle fetch's, and linkctl_runs_total, linkctl_stage_* and
// linkctl_fetched_* count it). Two series tell it apart:
// linkctl_idle_fetch_runs_total{result} (a subset of linkctl_runs_total)
// and linkctl_idle_notifications_total{account,folder}. Status lists the
// watchers (WatcherStatus) and the accounts with a queued fetch, and the
// systemd STATUS line says "idle: ...; watching N IMAP folder(s)".

import (
	"context"
	"errors"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/pipeline"
)

// IdleAccount is an account watched while the link is up (an IMAP account
// with `idle: true`; cmd/linkctl builds it from the config).
type IdleAccount struct {
	Name    string
	Folders []string // one watcher each
	// Watch watches folder until ctx is done (imap.Watch), calling notify
	// when new mail arrives and mode ("idle" or "polling") once it knows
	// how it waits. It returns nil when ctx is done, and an error only for
	// a failure retrying cannot fix (refused login): the watcher then stops
	// and status shows the error until the next up edge or reload.
	Watch func(ctx context.Context, folder string, mode func(string), notify func()) error
	// Fetch fetches this account alone (all its folders).
	Fetch pipeline.Stage
	// Timeout bounds one idle-triggered fetch (0: none).
	Timeout time.Duration
}

// WatcherStatus is one watcher as `linkctl status` shows it.
type WatcherStatus struct {
	Account string `json:"account"`
	Folder  string `json:"folder"`
	// Mode is "connecting" until the watcher knows whether the server
	// offers IDLE, then "idle" or "polling" ("unknown" when it could not
	// ask: the watcher retries on its own); "failed" when it gave up
	// (Error says why).
	Mode          string    `json:"mode"`
	Since         time.Time `json:"since"`
	Notifications int64     `json:"notifications"`
	LastNotify    time.Time `json:"last_notification,omitzero"`
	Error         string    `json:"error,omitempty"`
}

// watchSet is the watchers of one up period (or one config).
type watchSet struct {
	gen    uint64
	cancel context.CancelCauseFunc
	status []*WatcherStatus
}

// causeLinkDown and causeShutdown are the cancellation causes.
func causeLinkDown() error { return errkind.Temporary(errkind.Network, "", "link down") }
func causeShutdown() error { return errkind.Temporary(errkind.Internal, "", "shutdown") }

// startWatchers starts the watchers of the configured idle accounts if the
// link is up and none run. catchUp queues a fetch of each account.
func (d *Daemon) startWatchers(catchUp bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.watch != nil || d.stopping || !d.link.Up || len(d.idle) == 0 || d.runCtx == nil {
		return
	}
	d.idleGen++
	ctx, cancel := context.WithCancelCause(d.runCtx)
	ws := &watchSet{gen: d.idleGen, cancel: cancel}
	d.watch = ws
	now := time.Now()
	for _, a := range d.idle {
		for _, f := range a.Folders {
			st := &WatcherStatus{Account: a.Name, Folder: f, Mode: "connecting", Since: now}
			ws.status = append(ws.status, st)
			d.watchers.Go(func() { d.runWatch(ctx, ws.gen, a, f, st) })
		}
		if catchUp {
			d.enqueueLocked(a.Name, pipeline.Request{Cause: "catch-up fetch (IDLE): " + a.Name, Iface: d.link.Iface}, nil)
		}
	}
	d.log.Info("IMAP watchers started", "watchers", len(ws.status))
}

// stopWatchers cancels the watchers with cause and drops the queued idle
// fetches. It does not wait: imap.Watch returns without waiting for the
// server, and Run waits for the goroutines when the daemon exits.
func (d *Daemon) stopWatchers(cause error) {
	d.mu.Lock()
	ws := d.watch
	d.watch = nil
	dropped := d.queue.drop(true)
	d.mu.Unlock()
	fail(dropped, cause)
	if ws == nil {
		return
	}
	ws.cancel(cause)
	d.log.Info("IMAP watchers stopped", "watchers", len(ws.status), "cause", cause)
}

func (d *Daemon) runWatch(ctx context.Context, gen uint64, a IdleAccount, folder string, st *WatcherStatus) {
	mode := func(m string) {
		d.mu.Lock()
		st.Mode, st.Since = m, time.Now()
		d.mu.Unlock()
	}
	err := a.Watch(ctx, folder, mode, func() { d.idleNotify(gen, a.Name, folder, st) })
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		err = errors.New("the watcher ended")
	}
	d.log.Error("IMAP watch gave up: new mail there waits for the next pipeline run", "account", a.Name, "folder", folder, "err", err)
	d.mu.Lock()
	st.Mode, st.Since, st.Error = "failed", time.Now(), err.Error()
	d.mu.Unlock()
}

// idleNotify is a watcher's notification: new mail in account's folder.
func (d *Daemon) idleNotify(gen uint64, account, folder string, st *WatcherStatus) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.watch == nil || d.watch.gen != gen || d.stopping {
		return // from watchers already cancelled
	}
	st.Notifications++
	st.LastNotify = time.Now()
	d.met.idleNotify(account, folder)
	d.enqueueLocked(account, pipeline.Request{Cause: "new mail (IDLE): " + account + "/" + folder, Iface: d.link.Iface}, nil)
}

// idleAccountLocked returns the configured idle account name, or nil.
func (d *Daemon) idleAccountLocked(name string) *IdleAccount {
	for i := range d.idle {
		if d.idle[i].Name == name {
			return &d.idle[i]
		}
	}
	return nil
}

// watcherStatus copies the watchers' status for Snapshot (under d.mu).
func (d *Daemon) watcherStatusLocked() []WatcherStatus {
	if d.watch == nil {
		return nil
	}
	out := make([]WatcherStatus, len(d.watch.status))
	for i, st := range d.watch.status {
		out[i] = *st
	}
	return out
}

// waitWatchers waits (a little) for the watcher goroutines at exit.
//
// The watchers were cancelled when the stop began: the 2 s count from
// then, not from now, so that a stuck watcher does not add 2 s to a
// shutdown that already waited for a stuck stage.
func (d *Daemon) waitWatchers() {
	limit := 2 * time.Second
	d.mu.Lock()
	if !d.stopAt.IsZero() {
		limit = max(100*time.Millisecond, limit-time.Since(d.stopAt))
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.watchers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		d.log.Warn("exiting with an IMAP watcher still closing")
	}
}
