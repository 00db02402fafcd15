package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/pipeline"
)

// fakeIMAP stands in for imap.Watch: each call registers a watch the test
// drives (notify) and reports how it ended (the context's cause).
type fakeIMAP struct {
	started chan *fakeWatch
	fail    error // returned at once instead of watching, when set
}

type fakeWatch struct {
	folder string
	notify func()
	ended  chan error
}

func newFakeIMAP() *fakeIMAP { return &fakeIMAP{started: make(chan *fakeWatch, 16)} }

func (f *fakeIMAP) account(name string, fetch *gate, folders ...string) IdleAccount {
	return IdleAccount{Name: name, Folders: folders, Fetch: fetch.stage(),
		Watch: func(ctx context.Context, folder string, mode func(string), notify func()) error {
			if f.fail != nil {
				return f.fail
			}
			mode("idle")
			w := &fakeWatch{folder: folder, notify: notify, ended: make(chan error, 1)}
			f.started <- w
			<-ctx.Done()
			w.ended <- context.Cause(ctx)
			return nil
		}}
}

// watches waits for n watchers to start, by folder.
func (f *fakeIMAP) watches(t *testing.T, n int) map[string]*fakeWatch {
	t.Helper()
	m := map[string]*fakeWatch{}
	for range n {
		w := wait(t, f.started, "a watcher to start")
		m[w.folder] = w
	}
	return m
}

// waitFor polls the daemon's status until ok (a hang guard, not a timing).
func waitFor(t *testing.T, d *Daemon, what string, ok func(Status) bool) Status {
	t.Helper()
	for range 2000 {
		if st := d.Snapshot(); ok(st) {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: %+v", what, d.Snapshot())
	return Status{}
}

func TestIdleNotificationFetchesThatAccountAfterTheRunInFlight(t *testing.T) {
	pipe, work := newGate("pipeline"), newGate("fetch")
	imap := newFakeIMAP()
	h := start(t, []pipeline.Step{{Stage: pipe.stage()}}, func(o *Options) {
		o.Idle = []IdleAccount{imap.account("work", work, "INBOX", "Lists")}
	})
	h.edge(up("ppp0"))
	wait(t, pipe.started, "the up-edge run")
	ws := imap.watches(t, 2)

	// New mail while the pipeline runs: the account's fetch waits for it,
	// and three notifications become one fetch.
	ws["INBOX"].notify()
	ws["INBOX"].notify()
	ws["Lists"].notify()
	st := waitFor(t, h.d, "the idle fetch to be queued", func(s Status) bool { return len(s.IdlePending) == 1 })
	if st.IdlePending[0] != "work" || len(st.Watchers) != 2 {
		t.Errorf("status %+v", st)
	}
	select {
	case r := <-work.started:
		t.Fatalf("the idle fetch ran beside the pipeline run: %+v", r)
	default:
	}
	pipe.release <- struct{}{}
	req := wait(t, work.started, "the idle fetch")
	if req.Cause != "new mail (IDLE): work/INBOX (+2 coalesced)" || req.Iface != "ppp0" {
		t.Errorf("idle fetch request %+v", req)
	}
	// A notification while the account's fetch runs queues one more: the
	// running fetch may have listed the folder before that mail came.
	ws["INBOX"].notify()
	work.release <- struct{}{}
	if req := wait(t, work.started, "the follow-up idle fetch"); req.Cause != "new mail (IDLE): work/INBOX" {
		t.Errorf("follow-up cause %q", req.Cause)
	}
	work.release <- struct{}{}
	rep := h.lastRun(3)
	if rep.Result != event.OK || len(rep.Stages) != 1 || rep.Stages[0].Name != "fetch" {
		t.Errorf("idle run report %+v", rep)
	}
	select {
	case r := <-pipe.started:
		t.Errorf("a pipeline run started: %+v", r)
	case r := <-work.started:
		t.Errorf("a third idle fetch started: %+v", r)
	default:
	}

	st = h.d.Snapshot()
	var inbox WatcherStatus
	for _, w := range st.Watchers {
		if w.Folder == "INBOX" {
			inbox = w
		}
	}
	if inbox.Account != "work" || inbox.Mode != "idle" || inbox.Notifications != 3 || inbox.LastNotify.IsZero() {
		t.Errorf("INBOX watcher status %+v", inbox)
	}
	b, err := os.ReadFile(filepath.Join(h.dir, "linkctl.prom"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`linkctl_idle_notifications_total{account="work",folder="INBOX"} 3`,
		`linkctl_idle_notifications_total{account="work",folder="Lists"} 1`,
		`linkctl_idle_fetch_runs_total{result="ok"} 2`, `linkctl_runs_total{result="ok"} 3`,
		`linkctl_fetched_messages_total 4`} {
		if !strings.Contains(string(b), line+"\n") {
			t.Errorf("metrics file lacks %q:\n%s", line, b)
		}
	}

	// The down edge stops every watcher with the cause, and status no
	// longer lists them.
	h.edge(down())
	for _, w := range ws {
		if c := wait(t, w.ended, "the watcher to stop"); c == nil || c.Error() != "link down" {
			t.Errorf("watcher %s ended with %v, want link down", w.folder, c)
		}
	}
	if st := h.d.Snapshot(); len(st.Watchers) != 0 {
		t.Errorf("watchers after the down edge: %+v", st.Watchers)
	}
	// A late notification from a stopped watcher starts nothing.
	ws["INBOX"].notify()
	if st := h.d.Snapshot(); len(st.IdlePending) != 0 || st.Runner.Running {
		t.Errorf("a stopped watcher's notification was served: %+v", st)
	}
}

func TestIdleFetchCancelledByDownEdgeAndWatchersRestartOnUp(t *testing.T) {
	work := newGate("fetch")
	imap := newFakeIMAP()
	h := start(t, nil, func(o *Options) { o.Idle = []IdleAccount{imap.account("work", work, "INBOX")} })
	h.edge(up("ppp0"))
	w := imap.watches(t, 1)["INBOX"]
	h.lastRun(1) // the (empty) up-edge run
	w.notify()
	wait(t, work.started, "the idle fetch")
	h.edge(down())
	if c := wait(t, work.cause, "the idle fetch to be cancelled"); c == nil || c.Error() != "link down" {
		t.Errorf("idle fetch cancelled with %v, want link down", c)
	}
	if c := wait(t, w.ended, "the watcher to stop"); c.Error() != "link down" {
		t.Errorf("watcher ended with %v", c)
	}
	if rep := h.lastRun(2); rep.Result != event.Cancelled || rep.Stages[0].Err != "link down" {
		t.Errorf("idle run report %+v", rep)
	}
	h.edge(up("ppp0"))
	w = imap.watches(t, 1)["INBOX"]
	h.lastRun(3)
	w.notify()
	wait(t, work.started, "an idle fetch after the next up edge")
	work.release <- struct{}{}
	if rep := h.lastRun(4); rep.Result != event.OK {
		t.Errorf("run 4 %+v", rep)
	}
}

func TestIdleWatchersRestartOnReload(t *testing.T) {
	work, other := newGate("fetch"), newGate("fetch")
	imap := newFakeIMAP()
	var mu sync.Mutex
	var next []IdleAccount
	h := start(t, nil, func(o *Options) {
		o.Idle = []IdleAccount{imap.account("work", work, "INBOX")}
		o.Reload = func() (Reloaded, error) {
			mu.Lock()
			defer mu.Unlock()
			return Reloaded{Idle: next}, nil
		}
	})
	h.edge(up("ppp0"))
	old := imap.watches(t, 1)["INBOX"]
	h.lastRun(1)
	mu.Lock()
	next = []IdleAccount{imap.account("other", other, "Archive")}
	mu.Unlock()
	h.sigs <- syscall.SIGHUP
	if c := wait(t, old.ended, "the old watcher to stop"); c.Error() != "config reloaded" {
		t.Errorf("old watcher ended with %v", c)
	}
	nw := imap.watches(t, 1)
	if nw["Archive"] == nil {
		t.Fatalf("new watchers %v", nw)
	}
	// One catch-up fetch per account: mail that came between the two
	// watchers is not left waiting for the next notification.
	if req := wait(t, other.started, "the catch-up fetch"); req.Cause != "catch-up fetch (IDLE): other" {
		t.Errorf("cause %q", req.Cause)
	}
	other.release <- struct{}{}
	h.lastRun(2)
	old.notify() // the old config's watcher: ignored
	nw["Archive"].notify()
	if req := wait(t, other.started, "the new account's fetch"); req.Cause != "new mail (IDLE): other/Archive" {
		t.Errorf("cause %q", req.Cause)
	}
	other.release <- struct{}{}
	h.lastRun(3)
	select {
	case r := <-work.started:
		t.Errorf("the reloaded-away account was fetched: %+v", r)
	default:
	}
}

func TestIdleWatchersStopOnShutdown(t *testing.T) {
	work := newGate("fetch")
	imap := newFakeIMAP()
	h := start(t, nil, func(o *Options) { o.Idle = []IdleAccount{imap.account("work", work, "INBOX")} })
	h.edge(up("ppp0"))
	w := imap.watches(t, 1)["INBOX"]
	h.lastRun(1)
	want := "STATUS=idle: ppp0 is up with 192.0.2.7/32; watching 1 IMAP folder(s)"
	for n := wait(t, h.notes, "STATUS"); n != want; n = wait(t, h.notes, "STATUS") {
	}
	h.sigs <- syscall.SIGTERM
	if c := wait(t, w.ended, "the watcher to stop"); c.Error() != "shutdown" {
		t.Errorf("watcher ended with %v", c)
	}
	wait(t, h.done, "the daemon to exit")
}

func TestIdleWatcherThatGivesUpShowsInStatus(t *testing.T) {
	work := newGate("fetch")
	imap := newFakeIMAP()
	imap.fail = errkind.Permanent(errkind.Auth, "imap 127.0.0.1:143", "LOGIN refused: NO [AUTHENTICATIONFAILED]")
	h := start(t, nil, func(o *Options) { o.Idle = []IdleAccount{imap.account("work", work, "INBOX")} })
	h.edge(up("ppp0"))
	st := waitFor(t, h.d, "the watcher to give up", func(s Status) bool {
		return len(s.Watchers) == 1 && s.Watchers[0].Mode == "failed"
	})
	if !strings.Contains(st.Watchers[0].Error, "AUTHENTICATIONFAILED") {
		t.Errorf("watcher status %+v", st.Watchers[0])
	}
}

func TestNoWatchersWhileDown(t *testing.T) {
	work := newGate("fetch")
	imap := newFakeIMAP()
	h := start(t, nil, func(o *Options) {
		o.Idle = []IdleAccount{imap.account("work", work, "INBOX")}
		o.Reload = func() (Reloaded, error) {
			return Reloaded{Idle: []IdleAccount{imap.account("work", work, "INBOX")}}, nil
		}
	})
	h.sigs <- syscall.SIGHUP // a reload while down starts nothing
	h.sigs <- syscall.SIGUSR1
	h.lastRun(1)
	select {
	case w := <-imap.started:
		t.Fatalf("a watcher started while the link is down: %+v", w)
	default:
	}
	if st := h.d.Snapshot(); len(st.Watchers) != 0 {
		t.Errorf("watchers while down: %+v", st.Watchers)
	}
}
