package fetch

import (
	"fmt"
	"strings"
	"testing"
)

// renumber gives every message on s a new UID, as a server does after an
// IMAP UIDVALIDITY change or a POP3 server migration.
func renumber(s *fakeServer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.msgs {
		s.msgs[i].uid = "new-" + s.msgs[i].uid
	}
}

// An IMAP UIDVALIDITY change after a run that delivered everything but
// could not expunge (the link dropped at the end): the messages come back
// under new UIDs and must not be delivered again (issue 15.6: 1 duplicate
// seen); they are deleted now, and a genuinely new message is delivered.
func TestUIDValidityChangeDeliveredNotExpunged(t *testing.T) {
	e := newRunEnv(t, 3)
	e.srv.key = IMAPKeyPrefix("u", "h:143", "INBOX") + "7"
	e.srv.cutQuit = true
	if _, err := e.run(); err == nil {
		t.Fatal("the cut expunge went unnoticed")
	}
	if e.srv.count() != 3 || len(e.tgt.got) != 3 {
		t.Fatalf("server %d, delivered %d", e.srv.count(), len(e.tgt.got))
	}
	e.srv.cutQuit = false
	e.srv.key = IMAPKeyPrefix("u", "h:143", "INBOX") + "8"
	renumber(e.srv)
	e.srv.add(msgText(3, ""))
	res, err := e.run()
	if err != nil {
		t.Fatal(err)
	}
	a := res.Accounts[0]
	if a.Fetched != 1 || a.Duplicates != 3 || a.Deleted != 4 {
		t.Fatalf("after the change: %+v", a)
	}
	checkOnce(t, e.tgt.ids(), 4)
	if e.srv.count() != 0 {
		t.Errorf("%d left on the server", e.srv.count())
	}
}

// A POP3 server that reuses a UIDL for another message (other size): the
// new message is fetched and delivered (before, it was taken for the old
// one: kept, or deleted unseen), the old one is not delivered again.
func TestPOP3ReusedUIDL(t *testing.T) {
	for _, keep := range []bool{true, false} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			e := newRunEnv(t, 3)
			e.acct.Keep = true
			if _, err := e.run(); err != nil {
				t.Fatal(err)
			}
			e.acct.Keep = keep
			// uid-0002 now names another, longer message.
			e.srv.mu.Lock()
			e.srv.msgs[1].body = []byte(msgText(7, "a longer body than the message it replaces\n"))
			e.srv.mu.Unlock()
			res, err := e.run()
			if err != nil {
				t.Fatal(err)
			}
			if a := res.Accounts[0]; a.Fetched != 1 {
				t.Fatalf("after the reuse: %+v", a)
			}
			got := e.tgt.ids()
			if !strings.Contains(strings.Join(got, ","), "<m7@test>") {
				t.Fatalf("the message under the reused UIDL was not delivered: %v", got)
			}
			if len(got) != 4 {
				t.Errorf("delivered %v", got)
			}
		})
	}
}

// A POP3 server that renumbered its UIDLs (a migration) under kept mail:
// nothing is delivered again, the skipped messages are reported, and a
// genuinely new message is delivered.
func TestPOP3RenumberedUIDLs(t *testing.T) {
	e := newRunEnv(t, 3)
	e.acct.Keep = true
	if _, err := e.run(); err != nil {
		t.Fatal(err)
	}
	renumber(e.srv)
	e.srv.add(msgText(3, ""))
	res, err := e.run()
	if err != nil {
		t.Fatal(err)
	}
	if a := res.Accounts[0]; a.Fetched != 1 || a.Duplicates != 3 {
		t.Fatalf("after renumbering: %+v", a)
	}
	checkOnce(t, e.tgt.ids(), 4)
	if res.Counts()["duplicates_skipped"] != 3 {
		t.Errorf("counts %v", res.Counts())
	}
}

func checkOnce(t *testing.T, got []string, n int) {
	t.Helper()
	if !sameIDs(got, idList(n)) {
		t.Errorf("delivered %v, want each of %v once", got, idList(n))
	}
}
