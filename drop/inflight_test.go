package drop

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/sessions"
)

const ms = time.Millisecond

// mtimeSlack allows for the coarse clock of file times.
const mtimeSlack = 30 * ms

// hungUpAt runs the drop and returns how long after start the hang-up
// command ran (the marker file's time), failing when it did not.
func hungUpAt(t *testing.T, start time.Time, opts Options) time.Duration {
	t.Helper()
	argv, marker := hangupCommand(t)
	opts.Command = argv
	opts.Logger = testLogger(t)
	res, err := Run(context.Background(), opts, nil)
	if err != nil || !res.Dropped {
		t.Fatalf("res %+v err %v: want dropped", res, err)
	}
	fi, err := os.Stat(marker)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime().Sub(start)
}

// fakeSessions lists one inbound session during in and one outbound
// session during out (offsets from start).
func fakeSessions(start time.Time, in, out [][2]time.Duration) sessions.Lister {
	during := func(ivs [][2]time.Duration) bool {
		t := time.Since(start)
		for _, iv := range ivs {
			if t >= iv[0] && t < iv[1] {
				return true
			}
		}
		return false
	}
	return func(f sessions.Filter) ([]sessions.Session, error) {
		if len(f.LocalPorts) > 0 && during(in) {
			return []sessions.Session{{Local: netip.MustParseAddrPort("192.0.2.1:25"), Peer: netip.MustParseAddrPort("198.51.100.7:40000")}}, nil
		}
		if len(f.PeerPorts) > 0 && during(out) {
			return []sessions.Session{{Local: netip.MustParseAddrPort("192.0.2.1:51000"), Peer: netip.MustParseAddrPort("203.0.113.9:25")}}, nil
		}
		return nil, nil
	}
}

// TestDropInboundReopensDuringSettle: a relay that reconnects (its next
// batch) while the drop settles holds the link again, and the settle
// starts over when that session closes.
func TestDropInboundReopensDuringSettle(t *testing.T) {
	start := time.Now()
	at := hungUpAt(t, start, Options{Idle: 300 * ms, Poll: 5 * ms, SMTPPorts: []int{25},
		Sessions: fakeSessions(start, [][2]time.Duration{{0, 100 * ms}, {250 * ms, 600 * ms}}, nil)})
	if at < 900*ms-mtimeSlack {
		t.Fatalf("hung up %v after start: the second session closed at 600 ms, the settle (300 ms) was not over", at)
	}
}

// TestDropOutboundDeliveryHoldsTheLink: the local MTA's queue run still
// delivering (an outbound SMTP session) holds the link.
func TestDropOutboundDeliveryHoldsTheLink(t *testing.T) {
	start := time.Now()
	at := hungUpAt(t, start, Options{Idle: 100 * ms, Poll: 5 * ms, OutboundPorts: SMTPOutboundPorts,
		Sessions: fakeSessions(start, nil, [][2]time.Duration{{0, 700 * ms}})})
	if at < 800*ms-mtimeSlack {
		t.Fatalf("hung up %v after start, while outbound mail was in delivery until 700 ms", at)
	}
}

// TestDropOutboundLive: the same with a real loopback session to a
// "remote MTA" port, found by sock_diag.
func TestDropOutboundLive(t *testing.T) {
	port, c, s := loopbackSession(t)
	if _, err := sessions.List(sessions.Filter{PeerPorts: []int{port}, Loopback: true}); err != nil {
		t.Skipf("sock_diag not available here: %v", err)
	}
	start := time.Now()
	go func() { time.Sleep(500 * ms); c.Close(); s.Close() }()
	if at := hungUpAt(t, start, Options{Idle: 50 * ms, Poll: 5 * ms, OutboundPorts: []int{port}, CountLoopback: true}); at < 550*ms-mtimeSlack {
		t.Fatalf("hung up %v after start with an outbound delivery open until 500 ms", at)
	}
}

// TestDropIgnoresIMAPIdle: an IMAP IDLE connection carries no mail to
// wait for: it does not hold the link, and at default settings the link
// goes about a second after the last stage, not after a fixed 30 s.
func TestDropIgnoresIMAPIdle(t *testing.T) {
	idle := func(f sessions.Filter) ([]sessions.Session, error) {
		// An IDLE session to port 993 is open the whole time; only a
		// filter asking for every port would see it.
		for _, p := range append(f.LocalPorts, f.PeerPorts...) {
			if p == 993 {
				return []sessions.Session{{Peer: netip.MustParseAddrPort("203.0.113.9:993")}}, nil
			}
		}
		return nil, nil
	}
	start := time.Now()
	at := hungUpAt(t, start, Options{SMTPPorts: []int{25}, OutboundPorts: SMTPOutboundPorts, Sessions: idle})
	if at > 3*time.Second {
		t.Fatalf("hung up %v after start at default settings: want about DefaultIdle (%v)", at, DefaultIdle)
	}
}
