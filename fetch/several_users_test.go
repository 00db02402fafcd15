package fetch

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/linkctl/linkctl/fetch/pop3/pop3test"
	"github.com/linkctl/linkctl/internal/netconn"
)

// Several users on one server: two accounts with the same Server and
// different logins, each with its own local user. POP3 logs in one user
// per connection, so each account has its own session; their UIDs are the
// same strings ("uid-000001" in both maildrops), so only a seen-store
// record per user keeps alice's fetched mail from hiding bob's.
func TestSeveralUsersOnOneServer(t *testing.T) {
	dir := t.TempDir()
	tgt := &fakeTarget{}
	drops := map[string]*pop3test.Server{}
	var accts []Account
	for _, u := range []string{"alice", "bob"} {
		srv := &pop3test.Server{User: u, Pass: "pw-" + u}
		srv.Add([]byte("Message-ID: <" + u + "-1@test>\n\nfor " + u + "\n"))
		drops[u] = srv
		src := POP3Source{Addr: "pop.example.net:110", TLS: netconn.TLSNone, User: u, Password: pw("pw-" + u), Timeout: 5 * time.Second,
			Dial: func(context.Context) (net.Conn, error) { return srv.Pipe(), nil }}
		accts = append(accts, Account{Name: u + "@pop.example.net", Proto: "pop3", Server: "pop.example.net",
			Open: src.Open, Target: tgt, To: []string{u + "-local"}, Keep: true})
	}
	run := func() Result {
		t.Helper()
		res, err := Run(context.Background(), Options{Accounts: accts, StateDir: dir}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	run()
	got := deliveredTo(tgt)
	if got["<alice-1@test>"] != "alice-local" || got["<bob-1@test>"] != "bob-local" || len(got) != 2 {
		t.Fatalf("delivered %v", got)
	}
	// Kept mail is not fetched again; bob's new message (uid-000002, a UID
	// alice does not have) and then one for alice with the same UID are.
	if res := run(); res.Fetched() != 0 {
		t.Fatalf("second run fetched %d", res.Fetched())
	}
	drops["bob"].Add([]byte("Message-ID: <bob-2@test>\n\nagain\n"))
	if res := run(); res.Accounts[0].Fetched != 0 || res.Accounts[1].Fetched != 1 {
		t.Fatalf("third run %+v", res.Accounts)
	}
	drops["alice"].Add([]byte("Message-ID: <alice-2@test>\n\nagain\n"))
	if res := run(); res.Accounts[0].Fetched != 1 || res.Accounts[1].Fetched != 0 {
		t.Fatalf("fourth run %+v", res.Accounts)
	}
	if got := deliveredTo(tgt); got["<alice-2@test>"] != "alice-local" || got["<bob-2@test>"] != "bob-local" {
		t.Fatalf("delivered %v", got)
	}
}

// keep_days N: kept mail is deleted once N days have passed since it was
// first fetched, not a second earlier, and a message fetched later keeps
// its own clock.
func TestKeepDaysBoundary(t *testing.T) {
	e := newRunEnv(t, 2)
	e.acct.Keep, e.acct.KeepDays = true, 3
	if _, err := e.run(); err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(24 * time.Hour)
	e.srv.add(msgText(7, ""))
	if _, err := e.run(); err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(48*time.Hour - time.Second) // 3 days minus a second
	if res, _ := e.run(); res.Accounts[0].Deleted != 0 || e.srv.count() != 3 {
		t.Fatalf("a second early: %+v, %d on the server", res.Accounts[0], e.srv.count())
	}
	e.now = e.now.Add(time.Second)
	if res, _ := e.run(); res.Accounts[0].Deleted != 2 || e.srv.count() != 1 {
		t.Fatalf("at 3 days: %+v, %d on the server", res.Accounts[0], e.srv.count())
	}
	e.now = e.now.Add(24 * time.Hour)
	if res, _ := e.run(); res.Accounts[0].Deleted != 1 || e.srv.count() != 0 {
		t.Fatalf("the later one: %+v, %d on the server", res.Accounts[0], e.srv.count())
	}
	if len(e.tgt.got) != 3 {
		t.Fatalf("delivered %d, want 3 (each once)", len(e.tgt.got))
	}
}
