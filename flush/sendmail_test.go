package flush

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/testpeer"
)

// sendmailOpts drives the private Sendmail through Options.Command and
// Args (its daemon's mount namespace, then sendmail -C CF).
func sendmailOpts(s *testpeer.Sendmail) Options {
	return Options{MTA: Sendmail, Command: s.DriverCommand(), Args: s.DriverArgs(), Timeout: time.Minute, Poll: 100 * time.Millisecond}
}

// TestSendmailFlushNextHopDownThenUp: deferred with Sendmail's reason
// and exit 21 while the next hop is down; delivered once it is up.
func TestSendmailFlushNextHopDownThenUp(t *testing.T) {
	testpeer.Short(t)
	hop := testpeer.ReservePort(t)
	s := testpeer.StartSendmail(t, testpeer.SendmailOptions{NextHop: hop})
	s.Submit("me@home.test", "a@far.test", "one")
	s.Submit("me@home.test", "b@far.test", "two")

	res, err := Run(context.Background(), sendmailOpts(s), nil)
	wantDeferred(t, err)
	if res.Before != 2 || len(res.Deferred) != 2 || !strings.Contains(res.Summary(), "Connection refused") {
		t.Fatalf("hop down: %+v, summary %q", res, res.Summary())
	}
	home := startHome(t, hop)
	res, err = Run(context.Background(), sendmailOpts(s), nil)
	if got := home.count(); err != nil || res.Delivered != 2 || got != 2 {
		t.Fatalf("hop up: err %v, %+v, next hop got %d", err, res, got)
	}
	t.Logf("sendmail %s: %s", s.Version, res.Summary())
}

// TestSendmailQuarantined is issue 17's third bug: `sendmail -bp` omits
// quarantined mail, so two quarantined messages read as "nothing was
// queued". They must be counted as held.
func TestSendmailQuarantined(t *testing.T) {
	testpeer.Short(t)
	home := testpeer.StartSink(t, testpeer.SinkOptions{})
	s := testpeer.StartSendmail(t, testpeer.SendmailOptions{NextHop: home.Addr()})
	for _, to := range []string{"a@far.test", "b@far.test"} {
		s.Quarantine(s.Submit("me@home.test", to, "suspicious"), "held by the test")
	}
	s.Submit("me@home.test", "c@far.test", "fine")
	res, err := Run(context.Background(), sendmailOpts(s), nil)
	if err != nil || res.Held != 2 || res.Before != 1 || res.Delivered != 1 || len(home.Messages()) != 1 {
		t.Fatalf("err %v, %+v, sink got %d: want 1 delivered and 2 held", err, res, len(home.Messages()))
	}
	if sum := res.Summary(); !strings.Contains(sum, "2 held") {
		t.Errorf("summary %q, want the quarantined mail counted", sum)
	}
}

// TestSendmailInDeliveryElsewhere: another `sendmail -q` is delivering
// the message over a slow link (the listing marks it "*"); the flush's
// own queue run skips it and the stage waits for it.
func TestSendmailInDeliveryElsewhere(t *testing.T) {
	testpeer.Short(t)
	home := testpeer.StartSink(t, testpeer.SinkOptions{Delay: testpeer.DelayData(3 * time.Second)})
	s := testpeer.StartSendmail(t, testpeer.SendmailOptions{NextHop: home.Addr()})
	s.Submit("me@home.test", "a@far.test", "slow")
	otherQueueRun(t, s.Command(context.Background(), "-q"), func() bool { return strings.Contains(s.Run("-bp"), "*") }, s.Log)
	res, err := Run(context.Background(), sendmailOpts(s), nil)
	if err != nil || res.Delivered != 1 || len(home.Messages()) != 1 {
		t.Fatalf("err %v, %+v, sink got %d: want the stage to wait for the other delivery", err, res, len(home.Messages()))
	}
}
