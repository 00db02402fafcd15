package flush

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/testpeer"
)

// eximOpts drives a private Exim through Options.Command and Args, the
// way a second Exim instance is configured.
func eximOpts(e *testpeer.Exim) Options {
	return Options{MTA: Exim, Command: e.Bin, Args: []string{"-C", e.Config}, Timeout: time.Minute, Poll: 100 * time.Millisecond}
}

// TestEximFlushNextHopDownThenUp: two messages wait for a next hop that
// is down; the flush reports both deferred with Exim's reason and the
// "still deferred" error (exit 21); the next hop comes up; the next flush
// delivers both and returns only when they are out.
func TestEximFlushNextHopDownThenUp(t *testing.T) {
	testpeer.Short(t)
	hop := testpeer.ReservePort(t)
	e := testpeer.StartExim(t, testpeer.EximOptions{NextHop: hop})
	e.Submit("me@home.test", "a@far.test", "one")
	e.Submit("me@home.test", "b@far.test", "two")

	res, err := Run(context.Background(), eximOpts(e), nil)
	wantDeferred(t, err)
	if res.Before != 2 || len(res.Deferred) != 2 || res.Delivered != 0 {
		t.Fatalf("hop down: %+v\n%s", res, e.Log())
	}
	if s := res.Summary(); !strings.Contains(s, "2 deferred: Connection refused") {
		t.Errorf("summary %q, want Exim's reason from the message log", s)
	}

	home := startHome(t, hop)
	res, err = Run(context.Background(), eximOpts(e), nil)
	got := home.count()
	if err != nil || res.Delivered != 2 || len(res.Deferred) != 0 || got != 2 {
		t.Fatalf("hop up: err %v, %+v, next hop got %d\n%s", err, res, got, e.Log())
	}
	t.Logf("exim %s: %s", e.Version, res.Summary())
}

// TestEximFlushFrozen: a frozen message goes out too (exim -qff thaws
// for the run) and is counted with the others, not as held.
func TestEximFlushFrozen(t *testing.T) {
	testpeer.Short(t)
	home := testpeer.StartSink(t, testpeer.SinkOptions{})
	e := testpeer.StartExim(t, testpeer.EximOptions{NextHop: home.Addr()})
	e.Submit("me@home.test", "a@far.test", "plain")
	id := e.Submit("me@home.test", "b@far.test", "frozen")
	e.Run("-Mf", id)
	if q := e.Run("-bp"); !strings.Contains(q, "*** frozen ***") {
		t.Fatalf("not frozen:\n%s", q)
	}
	res, err := Run(context.Background(), eximOpts(e), nil)
	if err != nil || res.Before != 2 || res.Delivered != 2 || res.Held != 0 || len(home.Messages()) != 2 {
		t.Fatalf("err %v, %+v, sink got %d\n%s", err, res, len(home.Messages()), e.Log())
	}
}

// TestEximInDeliveryElsewhere is issue 17's first bug: another Exim queue
// runner (Debian's ppp ip-up hook runs `exim4 -qqf` when the link comes
// up) is delivering the message over a slow link, so its spool file is
// locked and the flush's own `exim -qff` skips it. The stage must wait
// for that delivery, not report the message deferred and return.
func TestEximInDeliveryElsewhere(t *testing.T) {
	testpeer.Short(t)
	const slow = 3 * time.Second
	home := testpeer.StartSink(t, testpeer.SinkOptions{Delay: testpeer.DelayData(slow)})
	e := testpeer.StartExim(t, testpeer.EximOptions{NextHop: home.Addr()})
	id := e.Submit("me@home.test", "a@far.test", "slow")

	// The other runner has the message in delivery once it locked it.
	otherQueueRun(t, exec.Command(e.Bin, "-C", e.Config, "-qff"), func() bool { return eximLocked(e.Spool, id) }, e.Log)

	t0 := time.Now()
	res, err := Run(context.Background(), eximOpts(e), nil)
	took := time.Since(t0)
	got := len(home.Messages())
	if err != nil || res.Delivered != 1 || len(res.Deferred) != 0 || got != 1 {
		t.Fatalf("err %v, %+v after %v, next hop got %d: want the stage to wait for the other process's delivery\n%s",
			err, res, took, got, e.Log())
	}
	if !strings.Contains(e.Log(), "is locked") {
		t.Errorf("exim's log does not show the flush skipping the locked message:\n%s", e.Log())
	}
	t.Logf("waited %v for the other queue runner; %s", took, res.Summary())
}
