package etrn

import (
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/testpeer"
)

// TestSendmailRelayETRN: a real Sendmail holds mail for etrn.test
// (DeliveryMode=queue); ETRN etrn.test makes it run the queue for those
// recipients (docs/troubleshooting.md's recipe: ETRN needs nothing but
// no PrivacyOptions=noetrn); the stage returns after the delivery to
// home, and the 250 is explained as Sendmail's.
func TestSendmailRelayETRN(t *testing.T) {
	testpeer.Short(t)
	home, homePort := slowHome(t)
	s := testpeer.StartSendmail(t, testpeer.SendmailOptions{NextHop: home.Addr()})
	s.Submit("far@away.test", "chavez@etrn.test", "held for ETRN")
	s.Submit("far@away.test", "someone@other.test", "not ours")

	res, tr, err := relayStage(s.Addr(), []string{"etrn.test"}, homePort, 3*time.Second)
	t.Logf("sendmail %s transcript:\n%s", s.Version, tr.String())
	if err != nil {
		t.Fatalf("etrn: %v\n%s", err, s.Log())
	}
	d := res.Servers[0].Domains[0]
	if d.Reply.Code != 250 || !strings.Contains(d.Reading, "Sendmail answers") {
		t.Errorf("reply %v reading %q, want 250 explained as Sendmail's", d.Reply, d.Reading)
	}
	msgs := home.Messages()
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != "chavez@etrn.test" {
		t.Fatalf("home got %+v, want only the etrn.test message", msgs)
	}
	if ids := s.IDs(); len(ids) != 1 {
		t.Errorf("queue after ETRN: %v, want the other.test message left", ids)
	}
}
