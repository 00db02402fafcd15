package flush

import (
	"os"
	"testing"
	"time"
)

// Every listing says when its messages were queued (dial on demand dials
// for mail older than dial.queue_age), read from the real outputs in
// testdata.
func TestListingArrival(t *testing.T) {
	old := now
	t.Cleanup(func() { now = old })
	// The listings were made on 2026-11-25; read them a week later.
	now = func() time.Time { return time.Date(2026, 12, 2, 12, 0, 0, 0, time.Local) }
	for _, c := range []struct {
		file  string
		parse func([]byte) ([]Message, error)
		id    string
		want  time.Time
	}{
		{"postfix-3.7.11-postqueue-j.txt", ParsePostfixJSON, "880709843C3", time.Unix(1795580406, 0)},
		{"postfix-3.7.11-postqueue-p.txt", ParsePostfixText, "880709843C3", time.Date(2026, 11, 25, 4, 20, 6, 0, time.Local)},
		{"sendmail-8.17.1.9-bp-queued.txt", ParseSendmail, "6AP4Bk8p007992", time.Date(2026, 11, 25, 4, 11, 0, 0, time.Local)},
		{"opensmtpd-6.8.0p2-show-queue-deferred.txt", ParseOpenSMTPD, "f93f26f4", time.Unix(1795579104, 0)},
		{"exim4-4.96-bp.txt", ParseExim, "1xW479-0002W6-25", now()}, // "0m" old
	} {
		b, err := os.ReadFile("testdata/" + c.file)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := c.parse(b)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		found := false
		for _, m := range msgs {
			if m.ID == c.id {
				found = true
				if !m.Arrival.Equal(c.want) {
					t.Errorf("%s: %s arrived %s, want %s", c.file, m.ID, m.Arrival, c.want)
				}
			}
		}
		if !found {
			t.Errorf("%s: no message %s", c.file, c.id)
		}
	}
	if got := eximArrival("3h"); !got.Equal(now().Add(-3 * time.Hour)) {
		t.Errorf("exim 3h: %s", got)
	}
	// A listing read on New Year's Day: "Dec 31" is last year's.
	now = func() time.Time { return time.Date(2027, 1, 1, 0, 10, 0, 0, time.Local) }
	if got := yearless("Mon Jan _2 15:04", "Thu Dec 31 23:50"); got.Year() != 2026 {
		t.Errorf("Dec 31 read on Jan 1: %s", got)
	}
}
