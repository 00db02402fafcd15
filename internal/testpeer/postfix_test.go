package testpeer

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestPostfixSinkAndRelay starts a private Postfix and checks what the
// flush and ETRN tests rely on: mail for the sink domain and for a bare
// local part is delivered to the sink Maildir, mail for the relay domain
// waits deferred with "Connection refused" while nothing listens at the
// relay address, a held message shows in the hold queue, and mail for any
// other domain is refused rather than sent anywhere.
func TestPostfixSinkAndRelay(t *testing.T) {
	Short(t)
	t.Parallel()
	relay := ReservePort(t) // nothing listens here
	p := StartPostfix(t, PostfixOptions{RelayDomains: []string{"etrn.test"}, RelayAddr: relay})

	if err := p.Send("a@x.test", []string{"bob@sink.test", "chavez"}, "Subject: sink\n\nhello\n"); err != nil {
		t.Fatalf("send to sink: %v", err)
	}
	msgs := p.WaitMessages(2, 10*time.Second)
	var tos []string
	for _, m := range msgs {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		head, _, _ := strings.Cut(string(b), "\n\n")
		tos = append(tos, head)
	}
	got := strings.Join(tos, "|")
	for _, want := range []string{"Delivered-To: bob@sink.test", "Delivered-To: chavez@sink.test"} {
		if !strings.Contains(got, want) {
			t.Errorf("sink message headers %q, want one with %q", got, want)
		}
	}

	if err := p.Send("a@x.test", []string{"u@etrn.test"}, "Subject: relay\n\nhi\n"); err != nil {
		t.Fatalf("send to relay domain: %v", err)
	}
	q := p.WaitQueue(10*time.Second, "deferred", func(q []PostfixQueued) bool {
		return len(q) == 1 && q[0].Queue == "deferred"
	})
	if r := q[0].Recipients; len(r) != 1 || r[0].Address != "u@etrn.test" || !strings.Contains(r[0].DelayReason, "Connection refused") {
		t.Errorf("deferred recipients = %+v, want u@etrn.test with Connection refused", r)
	}
	p.Run("postsuper", "-h", q[0].ID)
	q = p.Queue()
	if len(q) != 1 || q[0].Queue != "hold" {
		t.Errorf("after postsuper -h: queue = %+v, want one message on hold", q)
	}

	err := p.Send("a@x.test", []string{"u@elsewhere.test"}, "Subject: away\n\nno\n")
	if err == nil || !strings.Contains(err.Error(), "550") {
		t.Errorf("send to a foreign domain: err = %v, want a 550 refusal", err)
	}
	if !strings.Contains(p.Log(), "status=sent (delivered to maildir)") {
		t.Errorf("maillog lacks the sink deliveries:\n%s", p.Log())
	}
}
