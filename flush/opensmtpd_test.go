package flush

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/testpeer"
)

func opensmtpdOpts(o *testpeer.OpenSMTPD) Options {
	return Options{MTA: OpenSMTPD, Command: o.DriverCommand(), Args: o.DriverArgs(), Timeout: time.Minute,
		Poll: 100 * time.Millisecond, Settle: time.Second}
}

// pendingWithError: every envelope has been tried and is pending again.
func pendingWithError(n int) func(string) bool {
	return func(q string) bool {
		lines := strings.Split(strings.TrimSpace(q), "\n")
		if len(lines) != n || q == "" {
			return false
		}
		for _, l := range lines {
			if !strings.Contains(l, "|pending|") {
				return false
			}
		}
		return true
	}
}

// TestOpenSMTPDFlushNextHopDownThenUp is issue 17's fourth bug: after
// failed connections OpenSMTPD keeps the route disabled, and `smtpctl
// schedule all` alone does not lift it, so the flush right after the next
// hop came back reported the mail deferred. The driver resumes disabled
// routes first: the first flush after the hop is back delivers.
func TestOpenSMTPDFlushNextHopDownThenUp(t *testing.T) {
	testpeer.Short(t)
	hop := testpeer.ReservePort(t)
	o := testpeer.StartOpenSMTPD(t, testpeer.OpenSMTPDOptions{NextHop: hop})
	o.Send("me@home.test", "a@far.test", "one")
	o.Send("me@home.test", "b@far.test", "two")
	o.WaitQueue(20*time.Second, "tried", pendingWithError(2))

	for i := range 2 {
		res, err := Run(context.Background(), opensmtpdOpts(o), nil)
		wantDeferred(t, err)
		if len(res.Deferred) != 2 {
			t.Fatalf("hop down, flush %d: %+v", i+1, res)
		}
		t.Logf("hop down: %s", res.Summary())
	}
	t.Logf("routes before the hop comes back:\n%s", o.Ctl("show", "routes"))
	home := startHome(t, hop)
	res, err := Run(context.Background(), opensmtpdOpts(o), nil)
	if got := home.count(); err != nil || res.Delivered != 2 || got != 2 {
		t.Fatalf("hop up: err %v, %+v, next hop got %d\nqueue:\n%s", err, res, got, o.Queue())
	}
	t.Logf("opensmtpd %s: %s", o.Version, res.Summary())
}

// TestOpenSMTPDPausedAndInflight: a paused envelope is counted as held
// and left alone; a message being delivered (inflight, over a slow
// next hop) is waited for.
func TestOpenSMTPDPausedAndInflight(t *testing.T) {
	testpeer.Short(t)
	home := testpeer.StartSink(t, testpeer.SinkOptions{Delay: testpeer.DelayData(2 * time.Second)})
	o := testpeer.StartOpenSMTPD(t, testpeer.OpenSMTPDOptions{NextHop: home.Addr()})
	o.Ctl("pause", "mta")
	o.Send("me@home.test", "held@far.test", "paused")
	o.WaitQueue(10*time.Second, "queued", func(q string) bool { return strings.Count(q, "\n") >= 1 })
	o.Ctl("pause", "envelope", "all")
	o.Ctl("resume", "mta")
	o.Send("me@home.test", "a@far.test", "slow")
	o.WaitQueue(10*time.Second, "inflight", func(q string) bool { return strings.Contains(q, "|inflight|") })
	res, err := Run(context.Background(), opensmtpdOpts(o), nil)
	if err != nil || res.Held != 1 || res.Delivered != 1 || len(home.Messages()) != 1 {
		t.Fatalf("err %v, %+v, sink got %d\nqueue:\n%s", err, res, len(home.Messages()), o.Queue())
	}
}
