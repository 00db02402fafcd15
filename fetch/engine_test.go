package fetch

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/linkctl/linkctl/fetch/seen"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
)

type runEnv struct {
	t          *testing.T
	dir        string
	srv        *fakeServer
	tgt        *fakeTarget
	acct       Account
	now        time.Time
	mu         sync.Mutex
	evs        []event.Event
	opts       Options
	noReceived bool
}

func newRunEnv(t *testing.T, n int) *runEnv {
	e := &runEnv{t: t, dir: t.TempDir(), srv: newFakeServer("fake:user@server"), tgt: &fakeTarget{}, now: time.Unix(1_800_000_000, 0)}
	for i := range n {
		e.srv.add(msgText(i, ""))
	}
	e.acct = Account{Name: "isp", Proto: "pop3", Server: "pop.example.net", Open: e.srv.open, Target: e.tgt, To: []string{"chavez"}}
	return e
}

func (e *runEnv) run() (Result, error) {
	e.t.Helper()
	opts := e.opts
	opts.Accounts = []Account{e.acct}
	opts.StateDir = e.dir
	opts.Hostname = "gw.example.org"
	opts.Received = !e.noReceived
	opts.Now = func() time.Time { return e.now }
	return Run(context.Background(), opts, func(ev event.Event) {
		e.mu.Lock()
		e.evs = append(e.evs, ev)
		e.mu.Unlock()
	})
}

func TestFetchDeliversAndDeletes(t *testing.T) {
	e := newRunEnv(t, 5)
	res, err := e.run()
	if err != nil {
		t.Fatal(err)
	}
	a := res.Accounts[0]
	if a.Fetched != 5 || a.Deleted != 5 || res.NoMail() {
		t.Fatalf("result %+v", a)
	}
	if !sameIDs(e.tgt.ids(), idList(5)) {
		t.Fatalf("delivered %v", e.tgt.ids())
	}
	if e.srv.count() != 0 {
		t.Errorf("%d messages left on the server", e.srv.count())
	}
	// Envelope and trace field.
	for _, d := range e.tgt.got {
		id := parseHead(d.data).MessageID
		var i int
		fmt.Sscanf(id, "<m%d@test>", &i)
		if want := fmt.Sprintf("sender%d@example.org", i); d.env.From != want {
			t.Errorf("MAIL FROM %q, want %q (from Return-Path)", d.env.From, want)
		}
		if len(d.env.To) != 1 || d.env.To[0] != "chavez" {
			t.Errorf("RCPT %v", d.env.To)
		}
		if !bytes.HasPrefix(d.data, []byte("Received: from pop.example.net\n\tby gw.example.org (linkctl, account isp) with POP3\n\tfor <chavez>; ")) {
			t.Errorf("no Received line:\n%s", d.data)
		}
		if !bytes.Contains(d.data, []byte(msgText(i, ""))) {
			t.Errorf("message body altered:\n%s", d.data)
		}
	}
	msgs := 0
	for _, ev := range e.evs {
		if ev.Type == event.Message && ev.Account == "isp" {
			msgs++
		}
	}
	if msgs != 5 {
		t.Errorf("%d message events, want 5", msgs)
	}
	if !strings.Contains(res.Summary(), "isp: 5 messages") {
		t.Errorf("summary %q", res.Summary())
	}
}

func TestFetchNoMail(t *testing.T) {
	e := newRunEnv(t, 0)
	res, err := e.run()
	if err != nil || !res.NoMail() {
		t.Fatalf("err %v, NoMail %v", err, res.NoMail())
	}
	if !strings.Contains(res.Summary(), "no new mail") {
		t.Errorf("summary %q", res.Summary())
	}
}

func TestFetchNullSenderWithoutReturnPath(t *testing.T) {
	e := newRunEnv(t, 0)
	e.srv.add("Message-ID: <x@test>\n\nno return path\n")
	e.srv.add("Return-Path: <>\nMessage-ID: <y@test>\n\nbounce\n")
	e.noReceived = true
	if _, err := e.run(); err != nil {
		t.Fatal(err)
	}
	for _, d := range e.tgt.got {
		if d.env.From != "" {
			t.Errorf("MAIL FROM %q, want <>", d.env.From)
		}
	}
}

func TestFetchKeepAndKeepDays(t *testing.T) {
	e := newRunEnv(t, 3)
	e.acct.Keep = true
	e.acct.KeepDays = 2
	if _, err := e.run(); err != nil {
		t.Fatal(err)
	}
	if e.srv.count() != 3 || len(e.tgt.got) != 3 {
		t.Fatalf("keep: server %d, delivered %d", e.srv.count(), len(e.tgt.got))
	}
	e.srv.add(msgText(3, ""))
	e.now = e.now.Add(24 * time.Hour)
	res, err := e.run()
	if err != nil {
		t.Fatal(err)
	}
	if a := res.Accounts[0]; a.Fetched != 1 || a.Kept != 3 || a.Deleted != 0 {
		t.Fatalf("second run %+v", a)
	}
	e.now = e.now.Add(24 * time.Hour) // the first three are two days old now
	res, err = e.run()
	if err != nil {
		t.Fatal(err)
	}
	if a := res.Accounts[0]; a.Fetched != 0 || a.Deleted != 3 || a.Kept != 1 {
		t.Fatalf("third run %+v", a)
	}
	if e.srv.count() != 1 || len(e.tgt.got) != 4 {
		t.Fatalf("server %d, delivered %d", e.srv.count(), len(e.tgt.got))
	}
	// fetchall ignores the store.
	e.acct.FetchAll = true
	if _, err := e.run(); err != nil {
		t.Fatal(err)
	}
	if len(e.tgt.got) != 5 {
		t.Fatalf("fetchall delivered %d in all, want 5", len(e.tgt.got))
	}
}

// A link cut in the middle of message k (at every k): what was delivered
// before the cut is recorded; nothing is deleted (no QUIT); the next run
// delivers the rest and deletes everything; every message arrives once.
func TestFetchLinkCutThenRerun(t *testing.T) {
	for cut := 1; cut <= 6; cut++ {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			e := newRunEnv(t, 6)
			e.srv.cutAfter = cut
			res, err := e.run()
			if err == nil || errkind.KindOf(err) != errkind.Network {
				t.Fatalf("cut run: err %v, want a network error", err)
			}
			if res.Accounts[0].Fetched != cut-1 {
				t.Fatalf("cut run fetched %d, want %d", res.Accounts[0].Fetched, cut-1)
			}
			if e.srv.count() != 6 {
				t.Fatalf("a cut session deleted mail: %d left", e.srv.count())
			}
			e.srv.cutAfter = 0
			res, err = e.run()
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Accounts[0].Fetched; got != 6-(cut-1) {
				t.Errorf("rerun fetched %d, want %d (the seen ones are not downloaded again)", got, 6-(cut-1))
			}
			if !sameIDs(e.tgt.ids(), idList(6)) {
				t.Fatalf("delivered %v", e.tgt.ids())
			}
			if e.srv.count() != 0 {
				t.Errorf("%d left on the server", e.srv.count())
			}
		})
	}
}

// QUIT never answered: the DELEs roll back, the next run deletes the
// recorded messages without downloading them again.
func TestFetchQuitLost(t *testing.T) {
	e := newRunEnv(t, 4)
	e.srv.cutQuit = true
	if _, err := e.run(); err == nil {
		t.Fatal("lost QUIT not reported")
	}
	e.srv.cutQuit = false
	before := e.srv.retrieved
	res, err := e.run()
	if err != nil {
		t.Fatal(err)
	}
	if a := res.Accounts[0]; a.Fetched != 0 || a.Deleted != 4 || e.srv.retrieved != before {
		t.Fatalf("rerun %+v, %d downloads", a, e.srv.retrieved-before)
	}
	if len(e.tgt.got) != 4 || e.srv.count() != 0 {
		t.Fatalf("delivered %d, left %d", len(e.tgt.got), e.srv.count())
	}
}

// The UID is on disk before the DELE for it goes out.
func TestFetchRecordsBeforeDelete(t *testing.T) {
	e := newRunEnv(t, 3)
	checked := 0
	e.srv.deleteHook = func(ms []Message) {
		b, err := os.ReadFile(filepath.Join(e.dir, "seen", seen.FileName(e.srv.key)))
		if err != nil {
			t.Error(err)
			return
		}
		for _, m := range ms {
			if !bytes.Contains(b, []byte("D "+m.UID+" ")) {
				t.Errorf("DELE %s before its UID was written", m.UID)
			}
			checked++
		}
	}
	if _, err := e.run(); err != nil {
		t.Fatal(err)
	}
	if checked != 3 {
		t.Fatalf("checked %d deletions", checked)
	}
}

func TestFetchDeliveryRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		temp bool
	}{
		{"4xx", errkind.WrapTemporary(errkind.Delivery, "SMTP DATA", &smtp.SMTPError{Code: 451, Message: "try later"}), true},
		{"5xx", errkind.WrapPermanent(errkind.Delivery, "SMTP DATA", &smtp.SMTPError{Code: 554, Message: "no"}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newRunEnv(t, 4)
			e.tgt.fail = func(id string, _ int) error {
				if id == "<m2@test>" {
					return tc.err
				}
				return nil
			}
			res, err := e.run()
			if errkind.KindOf(err) != errkind.Delivery || errkind.IsTemporary(err) != tc.temp {
				t.Fatalf("err %v (kind %v, temp %v)", err, errkind.KindOf(err), errkind.IsTemporary(err))
			}
			if a := res.Accounts[0]; a.Fetched != 3 || a.Failed != 1 || a.Deleted != 3 {
				t.Fatalf("result %+v", a)
			}
			if e.srv.count() != 1 || e.srv.msgs[0].uid != "uid-0003" {
				t.Fatalf("the refused message must stay on the server: %+v", e.srv.msgs)
			}
		})
	}
}

// A message the MTA rejects every time is skipped after MaxFailures runs
// and reported, and the account's other mail keeps flowing.
func TestFetchPoisonMessage(t *testing.T) {
	e := newRunEnv(t, 2)
	e.tgt.fail = func(id string, _ int) error {
		if id == "<m0@test>" {
			return errkind.WrapPermanent(errkind.Delivery, "SMTP DATA", &smtp.SMTPError{Code: 554, Message: "content rejected"})
		}
		return nil
	}
	for run := 1; run <= MaxFailures; run++ {
		if _, err := e.run(); err == nil {
			t.Fatalf("run %d: failure not reported", run)
		}
		e.srv.add(msgText(10+run, ""))
	}
	res, err := e.run()
	if err != nil {
		t.Fatalf("run after poisoning: %v", err)
	}
	a := res.Accounts[0]
	if len(a.Poison) != 1 || a.Poison[0].UID != "uid-0001" || a.Fetched != 1 {
		t.Fatalf("result %+v", a)
	}
	if !strings.Contains(res.Summary(), "skipped after 3 failed deliveries") {
		t.Errorf("summary %q", res.Summary())
	}
	if e.srv.count() != 1 {
		t.Errorf("poison message should stay on the server alone, %d left", e.srv.count())
	}
}

// An unreachable MTA does not count towards poisoning, and stops the
// download early instead of pulling everything over the link for nothing.
func TestFetchTargetDownStopsEarly(t *testing.T) {
	e := newRunEnv(t, 40)
	e.opts.Workers = 1
	e.tgt.fail = func(string, int) error {
		return errkind.Temporary(errkind.Delivery, "SMTP connect", "connection refused")
	}
	for range MaxFailures + 1 {
		res, err := e.run()
		if errkind.KindOf(err) != errkind.Delivery {
			t.Fatalf("err %v", err)
		}
		if len(res.Accounts[0].Poison) != 0 {
			t.Fatal("an unreachable MTA poisoned messages")
		}
	}
	if e.srv.retrieved > 4*(maxConsecutiveFailures+3) {
		t.Errorf("downloaded %d messages in 4 runs while the MTA was down", e.srv.retrieved)
	}
	if e.srv.count() != 40 {
		t.Errorf("lost mail: %d left", e.srv.count())
	}
}

func TestFetchLimits(t *testing.T) {
	e := newRunEnv(t, 5)
	e.srv.add(msgText(5, strings.Repeat("x", 5000)))
	e.acct.Limit = 1000
	e.acct.FetchLimit = 2
	res, err := e.run()
	if err != nil {
		t.Fatal(err)
	}
	a := res.Accounts[0]
	if a.Fetched != 2 || len(a.TooBig) != 1 || a.Left != 3 || !res.AtFetchLimit() {
		t.Fatalf("result %+v", a)
	}
	if !strings.Contains(res.Summary(), "stopped at fetchlimit, 3 left for the next run") {
		t.Errorf("summary %q does not say the run stopped at fetchlimit", res.Summary())
	}
	res, _ = e.run()
	if !res.AtFetchLimit() {
		t.Errorf("second run (2 of 3 taken): %+v, want stopped at the limit", res.Accounts[0])
	}
	res, _ = e.run()
	if res.AtFetchLimit() {
		t.Errorf("third run (the last one, under the limit): %+v, want not at the limit", res.Accounts[0])
	}
	if e.srv.count() != 1 || len(e.tgt.got) != 5 {
		t.Fatalf("after 3 runs: %d left, %d delivered", e.srv.count(), len(e.tgt.got))
	}
}

func TestFetchCommitEvery(t *testing.T) {
	e := newRunEnv(t, 7)
	e.acct.CommitEvery = 3
	sessions := 0
	e.srv.deleteHook = func(ms []Message) {
		sessions++
		if len(ms) > 3 {
			t.Errorf("a session deleted %d messages, commit_every is 3", len(ms))
		}
	}
	res, err := e.run()
	if err != nil {
		t.Fatal(err)
	}
	if a := res.Accounts[0]; a.Fetched != 7 || a.Sessions != 3 || sessions != 3 {
		t.Fatalf("result %+v, %d deleting sessions", a, sessions)
	}
	if e.srv.count() != 0 {
		t.Fatal("mail left")
	}
}

func TestFetchLargeMessageSpooled(t *testing.T) {
	e := newRunEnv(t, 0)
	big := msgText(0, strings.Repeat("0123456789abcdef\n", 1<<16)) // ~1.1 MB
	e.srv.add(big)
	e.noReceived = true
	if _, err := e.run(); err != nil {
		t.Fatal(err)
	}
	if len(e.tgt.got) != 1 || !bytes.Equal(e.tgt.got[0].data, []byte(big)) {
		t.Fatal("large message not delivered byte for byte")
	}
	// The spool file was unlinked: nothing is left in the state dir.
	ents, _ := os.ReadDir(e.dir)
	for _, de := range ents {
		if strings.HasPrefix(de.Name(), ".spool") {
			t.Errorf("spool file left: %s", de.Name())
		}
	}
}

// One account that hangs does not hold up another; and one that fails to
// log in is reported with its own kind while the other succeeds.
func TestFetchAccountsIndependent(t *testing.T) {
	dir := t.TempDir()
	slow := newFakeServer("slow")
	slow.add(msgText(0, ""))
	release := make(chan struct{})
	slow.openHook = func(ctx context.Context) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	bad := newFakeServer("bad")
	bad.openErr = errkind.Permanent(errkind.Auth, "pop3 PASS", "-ERR [AUTH] invalid password")
	good := newFakeServer("good")
	good.add(msgText(1, ""))
	good.add(msgText(2, ""))
	tgt := &fakeTarget{}
	done := make(chan struct{})
	var once sync.Once
	sink := func(ev event.Event) {
		if ev.Type == event.Message && ev.Account == "good" && ev.Count == 2 {
			once.Do(func() { close(done) })
		}
	}
	go func() {
		<-done // the good account finished while the slow one still waits
		close(release)
	}()
	res, err := Run(context.Background(), Options{
		StateDir: dir, Parallel: 3,
		Accounts: []Account{
			{Name: "slow", Open: slow.open, Target: tgt, To: []string{"a"}},
			{Name: "bad", Open: bad.open, Target: tgt, To: []string{"a"}},
			{Name: "good", Open: good.open, Target: tgt, To: []string{"a"}},
		},
	}, sink)
	if errkind.KindOf(err) != errkind.Auth {
		t.Fatalf("err %v, want the auth failure", err)
	}
	if res.Accounts[0].Fetched != 1 || res.Accounts[2].Fetched != 2 || res.Accounts[1].Err == nil {
		t.Fatalf("results %+v", res.Accounts)
	}
	if !strings.Contains(res.Summary(), "bad: no new mail; error: pop3 PASS: -ERR [AUTH] invalid password") {
		t.Errorf("summary %q", res.Summary())
	}
}

func TestFetchCancelled(t *testing.T) {
	e := newRunEnv(t, 3)
	e.tgt.block = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	e.srv.retrieveHook = func(m Message) {
		if m.Num == 2 {
			cancel()
		}
	}
	res, err := Run(ctx, Options{StateDir: e.dir, Accounts: []Account{e.acct}}, nil)
	if err == nil || !errkind.IsTemporary(err) {
		t.Fatalf("err %v", err)
	}
	if res.Accounts[0].Fetched != 0 || e.srv.count() != 3 {
		t.Fatalf("cancelled run: %+v, %d left", res.Accounts[0], e.srv.count())
	}
}

func TestParseHead(t *testing.T) {
	for _, tc := range []struct {
		in, rp, id string
	}{
		{"Return-Path: <a@b>\nMessage-ID: <1@x>\n\nbody", "a@b", "<1@x>"},
		{"return-path:\n <folded@b>\n\n", "folded@b", ""},
		{"Return-Path: <>\n\n", "", ""},
		{"Received: x\nReturn-Path: <first@b>\nReturn-Path: <second@b>\n\n", "first@b", ""},
		{"Subject: hi\n\nReturn-Path: <in@body>\n", "", ""},
		{"Return-Path: bare@b\r\n\r\n", "bare@b", ""},
		{"Return-Path: <a b@c>\n\n", "", ""},
	} {
		h := parseHead([]byte(tc.in))
		if h.ReturnPath != tc.rp || h.MessageID != tc.id {
			t.Errorf("%q: got %q %q, want %q %q", tc.in, h.ReturnPath, h.MessageID, tc.rp, tc.id)
		}
	}
}

func FuzzParseHead(f *testing.F) {
	f.Add([]byte("Return-Path: <a@b>\nMessage-ID: <1@x>\n\nbody"))
	f.Add([]byte("Return-Path:\n\t<\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h := parseHead(b)
		if strings.ContainsAny(h.ReturnPath, "<> \r\n") {
			t.Fatalf("unsafe envelope sender %q", h.ReturnPath)
		}
	})
}

// A changed IMAP UIDVALIDITY voids the old UIDs: the messages already
// delivered are recognised by their digest and not delivered again (issue
// 15.6: all 3 kept messages came again), the user is told, the old record
// is removed, and the new record holds.
func TestFetchUIDValidityChanged(t *testing.T) {
	e := newRunEnv(t, 3)
	e.srv.key = IMAPKeyPrefix("u", "h:143", "INBOX") + "7"
	e.acct.Keep = true
	if _, err := e.run(); err != nil {
		t.Fatal(err)
	}
	e.srv.key = IMAPKeyPrefix("u", "h:143", "INBOX") + "8"
	renumber(e.srv)
	res, err := e.run()
	if err != nil {
		t.Fatal(err)
	}
	if a := res.Accounts[0]; a.Fetched != 0 || a.Duplicates != 3 || !strings.Contains(a.Summary(), "3 already delivered under another UID") {
		t.Fatalf("after the change: %+v", a)
	}
	if got := e.tgt.ids(); !sameIDs(got, idList(3)) {
		t.Errorf("delivered %v", got)
	}
	noted := false
	for _, ev := range e.evs {
		if ev.Type == event.Note && strings.Contains(ev.Text, "UIDVALIDITY changed from 7 to 8") {
			noted = true
		}
	}
	if !noted {
		t.Error("no note about the UIDVALIDITY change")
	}
	if _, err := os.Stat(filepath.Join(e.dir, "seen", seen.FileName(IMAPKeyPrefix("u", "h:143", "INBOX")+"7"))); !os.IsNotExist(err) {
		t.Errorf("the void record is still there: %v", err)
	}
	// And the new record holds: a third run fetches nothing.
	if res, _ := e.run(); res.Accounts[0].Fetched != 0 {
		t.Errorf("third run fetched %d", res.Accounts[0].Fetched)
	}
}
