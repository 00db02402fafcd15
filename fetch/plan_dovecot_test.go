package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// crlfSize is the size a server lists for a message delivered with LF
// line ends: every line end counts two octets on the wire.
func crlfSize(data []byte) int64 { return int64(len(data) + bytes.Count(data, []byte("\n"))) }

// TestPlanMatchesRunDovecot: against a real Dovecot, `linkctl plan`'s
// listing (Plan) changes nothing on the server or in the seen-store, and
// the run that follows moves exactly the messages and bytes it announced:
// POP3 with limit and fetchlimit, IMAP with keep and mail fetched before.
func TestPlanMatchesRunDovecot(t *testing.T) {
	testpeer.Short(t)
	t.Parallel() // its own Dovecot
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{Users: map[string]string{"alice": "pw", "bob": "pw"}})
	for i := range 6 {
		size := 1500 + i*900
		if i == 2 {
			size = 30000 // over the limit
		}
		d.AddMessage("alice", "INBOX", realisticMessage(fmt.Sprintf("a-%d@test", i), size))
	}
	for i := range 5 {
		d.AddMessage("bob", "INBOX", realisticMessage(fmt.Sprintf("b-%d@test", i), 2000+i*1100))
	}
	state := t.TempDir()
	tgt := &fakeTarget{}
	alice := pop3Account("alice", d.POP3Addr(), "alice", tgt, 10*time.Second)
	alice.Limit, alice.FetchLimit = 20000, 4
	bobSrc := IMAPSource{Addr: d.IMAPAddr(), TLS: netconn.TLSNone, User: "bob", Password: pw("pw"), Timeout: 10 * time.Second, Keep: true}
	bob := Account{Name: "bob", Proto: "imap", Server: d.IMAPAddr(), Open: bobSrc.Open, Target: tgt, To: []string{"local@sink.test"}, Keep: true}

	// Earlier runs fetched two of bob's messages and kept them.
	early := bob
	early.FetchLimit = 2
	if res, err := Run(context.Background(), Options{StateDir: state, Accounts: []Account{early}}, nil); err != nil || res.Fetched() != 2 {
		t.Fatalf("first run: %v, %s", err, res.Summary())
	}

	server := func() string {
		var b strings.Builder
		for _, u := range []string{"alice", "bob"} {
			out, err := d.Doveadm("fetch", "-u", u, "uid flags size.virtual", "mailbox", "INBOX")
			if err != nil {
				t.Fatalf("doveadm fetch: %v %s", err, out)
			}
			// \Recent belongs to a session (RFC 3501 section 2.3.2):
			// any SELECT takes it, fetchmail's and a mail client's alike.
			b.WriteString(u + ":\n" + strings.ReplaceAll(string(out), `\Recent`, ""))
		}
		return b.String()
	}
	seenStore := func() string {
		var b strings.Builder
		ents, _ := os.ReadDir(filepath.Join(state, "seen"))
		for _, e := range ents {
			data, _ := os.ReadFile(filepath.Join(state, "seen", e.Name()))
			fmt.Fprintf(&b, "%s %x\n", e.Name(), sha256.Sum256(data))
		}
		return b.String()
	}
	beforeServer, beforeSeen := server(), seenStore()

	opts := Options{StateDir: state, Accounts: []Account{alice, bob}}
	plan := Plan(context.Background(), opts)
	again := Plan(context.Background(), opts)
	if after := server(); after != beforeServer {
		t.Fatalf("plan changed the server:\nbefore:\n%s\nafter:\n%s", beforeServer, after)
	}
	if after := seenStore(); after != beforeSeen {
		t.Fatalf("plan changed the seen-store:\nbefore:\n%s\nafter:\n%s", beforeSeen, after)
	}
	if len(tgt.got) != 2 {
		t.Fatalf("plan delivered something: %d deliveries", len(tgt.got))
	}
	for i, p := range plan {
		if p.Err != nil {
			t.Fatalf("plan %s: %v\n%s", p.Account, p.Err, d.Log())
		}
		if p.Fetch != again[i].Fetch || p.Seen != again[i].Seen {
			t.Errorf("a second plan differs: %+v then %+v", p, again[i])
		}
		t.Logf("%s: listed %+v fetch %+v largest %d seen %+v too big %+v fetchlimit %+v", p.Account, p.Listed, p.Fetch, p.Largest, p.Seen, p.TooBig, p.FetchLimit)
	}
	a, b := plan[0], plan[1]
	if a.Listed.Messages != 6 || a.Fetch.Messages != 4 || a.TooBig.Messages != 1 || a.FetchLimit.Messages != 1 || a.Seen.Messages != 0 {
		t.Errorf("alice's plan: %+v", a)
	}
	if b.Listed.Messages != 5 || b.Fetch.Messages != 3 || b.Seen.Messages != 2 || b.Delete != 0 {
		t.Errorf("bob's plan: %+v", b)
	}

	// The run moves what the plan said.
	tgt.got = nil
	res, err := Run(context.Background(), opts, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	moved := map[string]*Tally{}
	for _, g := range tgt.got {
		who := "alice"
		if strings.Contains(string(g.data), "<b-") {
			who = "bob"
		}
		if moved[who] == nil {
			moved[who] = &Tally{}
		}
		moved[who].Messages++
		moved[who].Bytes += crlfSize(g.data)
	}
	for i, p := range plan {
		r := res.Accounts[i]
		m := moved[p.Account]
		if m == nil {
			m = &Tally{}
		}
		if r.Fetched != p.Fetch.Messages || *m != p.Fetch {
			t.Errorf("%s: plan said %+v, the run delivered %d messages (%+v as listed)", p.Account, p.Fetch, r.Fetched, *m)
		}
		// What the link carried: the messages plus the protocol around them.
		if r.BytesDown < p.Fetch.Bytes || r.BytesDown > p.Fetch.Bytes+4096+p.Fetch.Bytes/20 {
			t.Errorf("%s: %d bytes down for %d bytes of messages planned", p.Account, r.BytesDown, p.Fetch.Bytes)
		}
		t.Logf("%s: plan %+v; run fetched %d, %d bytes (LF), %d bytes down, %d up", p.Account, p.Fetch, r.Fetched, r.Bytes, r.BytesDown, r.BytesUp)
	}
}
