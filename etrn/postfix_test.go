package etrn

import (
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/testpeer"
)

// TestPostfixRelayETRN: a real Postfix holds mail for etrn.test; linkctl's
// etrn stage asks for it; Postfix delivers it to the test's "home" SMTP
// listener over a new connection; the stage's quiet wait ends only after
// that delivery finished.
func TestPostfixRelayETRN(t *testing.T) {
	testpeer.Short(t)
	home, homePort := slowHome(t)
	// HoldRelay: the relay transport is in defer_transports, so Postfix
	// does not try home on its own; only ETRN (or a flush) releases it.
	pf := testpeer.StartPostfix(t, testpeer.PostfixOptions{RelayDomains: []string{"etrn.test"}, RelayAddr: home.Addr(), HoldRelay: true})
	if err := pf.Send("far@away.test", []string{"chavez@etrn.test", "ops@etrn.test"}, "Subject: held for ETRN\n\nhello\n"); err != nil {
		t.Fatalf("queue mail at the relay: %v", err)
	}
	pf.WaitQueue(10*time.Second, "deferred", func(q []testpeer.PostfixQueued) bool {
		return len(q) == 1 && q[0].Queue == "deferred"
	})
	if n := len(home.Messages()); n != 0 {
		t.Fatalf("home got %d messages before ETRN", n)
	}

	t0 := time.Now()
	// The quiet wait is long enough for Postfix to open its delivery
	// connection after the ETRN reply, however slow the machine.
	res, tr, err := relayStage(pf.Addr(), []string{"etrn.test", "other.test"}, homePort, 4*time.Second)
	returned := time.Now()
	t.Logf("stage took %v; transcript:\n%s", returned.Sub(t0), tr.String())
	// other.test is not a relay domain: Postfix answers 459.
	if err == nil || !IsRefused(err) || !strings.Contains(err.Error(), "459") {
		t.Errorf("err = %v, want the 459 for other.test", err)
	}
	d := res.Servers[0].Domains
	if d[0].Reply.Code != 250 || d[1].Reply.Code != 459 {
		t.Errorf("replies = %v / %v, want 250 and 459", d[0].Reply, d[1].Reply)
	}
	msgs := home.Messages()
	if len(msgs) != 1 || len(msgs[0].To) != 2 {
		t.Fatalf("home got %+v at the end of the stage, want the one held message for two recipients\nmaillog:\n%s", msgs, pf.Log())
	}
	if !res.Quiet.WentQuiet || res.Quiet.MaxSessions < 1 {
		t.Errorf("quiet = %+v, want it to have seen Postfix's session and then quiet", res.Quiet)
	}
	// The wait ended after the delivery session was gone: by now no
	// session to home is open.
	if n, err := CountInbound([]int{homePort}, true); err == nil && n != 0 {
		t.Errorf("%d sessions still open to home at %v, after the quiet wait returned", n, returned)
	}
	if q := pf.Queue(); len(q) != 0 {
		t.Errorf("relay queue after ETRN: %+v", q)
	}
}
