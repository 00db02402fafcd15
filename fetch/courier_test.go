package fetch

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/linkctl/linkctl/fetch/deliver"
	"github.com/linkctl/linkctl/internal/linksim"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// courierAccount is user's INBOX on Courier at addr over proto.
func courierAccount(proto, addr, user string, tgt deliver.Target) Account {
	return protoAccount(proto, addr, addr, user, tgt)
}

func fillCourier(c *testpeer.Courier, user, prefix string, n int) []string {
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%d@test", prefix, i)
		c.AddMessage(user, realisticMessage(id, 1500+i*900))
		ids = append(ids, id)
	}
	return ids
}

// TestCourier runs the fetch stage against Courier IMAP and POP3, a
// second mailbox server besides Dovecot: fetch with delete, a second run
// that fetches nothing, and a link cut mid-session followed by a clean
// run that delivers every message exactly once and empties the mailbox.
func TestCourier(t *testing.T) {
	testpeer.Short(t)
	c := testpeer.StartCourier(t, testpeer.CourierOptions{Users: map[string]string{"pop": "pw", "imap": "pw"}})
	t.Logf("courier %s", c.Version)
	for _, proto := range []string{"pop3", "imap"} {
		user, addr := "pop", c.POP3Addr()
		if proto == "imap" {
			user, addr = "imap", c.IMAPAddr()
		}
		t.Run(proto, func(t *testing.T) {
			sink := testpeer.StartSink(t, testpeer.SinkOptions{})
			tgt := deliver.NewSMTP(deliver.SMTPOptions{Addr: sink.Addr(), Sessions: 2})
			defer tgt.Close()
			state := t.TempDir()

			want := fillCourier(c, user, proto+"-a", 6)
			res, err := Run(context.Background(), Options{StateDir: state, Accounts: []Account{courierAccount(proto, addr, user, tgt)}}, nil)
			if err != nil || res.Fetched() != 6 {
				t.Fatalf("fetch: %v, %s\n%s", err, res.Summary(), c.Log())
			}
			checkExactlyOnce(t, idsOf(sink), want)
			if n := c.Count(user); n != 0 {
				t.Errorf("%d messages left on Courier after fetch with delete", n)
			}

			res, err = Run(context.Background(), Options{StateDir: state, Accounts: []Account{courierAccount(proto, addr, user, tgt)}}, nil)
			if err != nil || res.Fetched() != 0 {
				t.Errorf("second run: %v, %s: want nothing fetched", err, res.Summary())
			}

			// The link is cut halfway through the first session's
			// downstream bytes; the next run over a good link finishes.
			sink.Clear()
			want = fillCourier(c, user, proto+"-cut", 6)
			var conns atomic.Int32
			link := &linksim.Link{ConnFault: func(int) *linksim.Fault {
				if conns.Add(1) == 1 {
					return &linksim.Fault{Dir: linksim.Down, After: 6000, Mode: linksim.Reset}
				}
				return nil
			}}
			p, err := link.Listen(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			res1, err1 := Run(context.Background(), Options{StateDir: state, Accounts: []Account{courierAccount(proto, p.Addr(), user, tgt)}}, nil)
			if err1 == nil {
				t.Errorf("the cut run reported no error: %s", res1.Summary())
			}
			res2, err2 := Run(context.Background(), Options{StateDir: state, Accounts: []Account{courierAccount(proto, p.Addr(), user, tgt)}}, nil)
			if err2 != nil {
				t.Fatalf("clean rerun: %v (cut run: %v, %s)\n%s", err2, err1, res1.Summary(), c.Log())
			}
			t.Logf("cut run: %s (%v); rerun: %s", res1.Summary(), err1, res2.Summary())
			checkExactlyOnce(t, idsOf(sink), want)
			if n := c.Count(user); n != 0 {
				t.Errorf("%d messages left on Courier after the clean rerun", n)
			}
		})
	}
}
