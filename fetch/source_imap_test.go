package fetch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	linkimap "github.com/linkctl/linkctl/fetch/imap"
	"github.com/linkctl/linkctl/fetch/imap/imaptest"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/scripted"
)

func imapSource(s *imaptest.Server) IMAPSource {
	return IMAPSource{Addr: s.Addr, TLS: netconn.TLSNone, User: s.User, Password: pw(s.Pass), Timeout: 5 * time.Second}
}

func imapMsg(i int) string {
	return "Subject: m" + string(rune('0'+i)) + "\r\n\r\nbody\r\nline two\r\n"
}

// runIMAP does what the engine does: list, retrieve all (but those to
// skip), delete them, close.
func runIMAP(t *testing.T, src IMAPSource, commit bool) (key string, got []string) {
	t.Helper()
	ctx := context.Background()
	mb, err := src.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := mb.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msgs = slices.DeleteFunc(msgs, func(m Message) bool { return m.Skip })
	got = retrieveAll(t, mb, msgs)
	if !src.Keep {
		if err := mb.Delete(ctx, msgs); err != nil {
			t.Fatal(err)
		}
	}
	key = mb.Key()
	if err := mb.Close(ctx, commit); err != nil {
		t.Fatal(err)
	}
	return key, got
}

func TestIMAPSourceWithUIDPlus(t *testing.T) {
	s := imaptest.Start(t, imaptest.Options{UIDPlus: true})
	for i := 1; i <= 3; i++ {
		s.Append(t, "INBOX", imapMsg(i))
	}
	key, got := runIMAP(t, imapSource(s), true)
	if len(got) != 3 || got[0] != "Subject: m1\n\nbody\nline two\n" {
		t.Fatalf("got %q", got)
	}
	prefix, uv, ok := ParseIMAPKey(key)
	if !ok || uv == 0 || prefix != IMAPKeyPrefix("alice", s.Addr, "INBOX") {
		t.Fatalf("key %q: prefix %q uidvalidity %d", key, prefix, uv)
	}
	if n := s.Messages(t, "INBOX"); n != 0 {
		t.Fatalf("%d messages left after commit", n)
	}
}

func TestIMAPSourceWithoutUIDPlusLeavesFlag(t *testing.T) {
	s := imaptest.Start(t, imaptest.Options{})
	s.Append(t, "INBOX", imapMsg(1))
	s.Append(t, "INBOX", imapMsg(2))
	var log bytes.Buffer
	src := imapSource(s)
	src.Logger = slog.New(slog.NewTextHandler(&log, nil))
	runIMAP(t, src, true)
	// No UIDPLUS and expunge: auto: a plain EXPUNGE could remove other
	// clients' \Deleted mail, so the flag stays and a warning says why.
	if n, d := s.Messages(t, "INBOX"), s.Count(t, "INBOX", imap.FlagDeleted); n != 2 || d != 2 {
		t.Fatalf("%d messages, %d flagged \\Deleted; want 2 and 2", n, d)
	}
	if !strings.Contains(log.String(), "UIDPLUS") {
		t.Fatalf("no warning about UIDPLUS in the log:\n%s", log.String())
	}
}

func TestIMAPSourceExpungeAll(t *testing.T) {
	s := imaptest.Start(t, imaptest.Options{})
	s.Append(t, "INBOX", imapMsg(1))
	src := imapSource(s)
	src.Expunge = "all"
	runIMAP(t, src, true)
	if n := s.Messages(t, "INBOX"); n != 0 {
		t.Fatalf("%d messages left with expunge: all", n)
	}
}

func TestIMAPSourceRollback(t *testing.T) {
	s := imaptest.Start(t, imaptest.Options{UIDPlus: true})
	s.Append(t, "INBOX", imapMsg(1))
	runIMAP(t, imapSource(s), false)
	if n, d := s.Messages(t, "INBOX"), s.Count(t, "INBOX", imap.FlagDeleted); n != 1 || d != 0 {
		t.Fatalf("after Close(false): %d messages, %d \\Deleted; want 1 and 0", n, d)
	}
}

func TestIMAPSourceMove(t *testing.T) {
	for _, move := range []bool{true, false} {
		s := imaptest.Start(t, imaptest.Options{UIDPlus: true, Move: move})
		s.Create(t, "Archive")
		s.Append(t, "INBOX", imapMsg(1))
		s.Append(t, "INBOX", imapMsg(2))
		src := imapSource(s)
		src.MoveTo = "Archive"
		runIMAP(t, src, true)
		if n, a := s.Messages(t, "INBOX"), s.Messages(t, "Archive"); n != 0 || a != 2 {
			t.Fatalf("MOVE offered %v: INBOX %d, Archive %d; want 0 and 2", move, n, a)
		}
	}
}

func TestIMAPSourceKeepMarkSeenAndUnseen(t *testing.T) {
	s := imaptest.Start(t, imaptest.Options{UIDPlus: true})
	s.Append(t, "INBOX", imapMsg(1), imap.FlagSeen)
	s.Append(t, "INBOX", imapMsg(2))
	src := imapSource(s)
	src.Keep, src.MarkSeen, src.Unseen = true, true, true
	_, got := runIMAP(t, src, true)
	if len(got) != 1 || !strings.HasPrefix(got[0], "Subject: m2") {
		t.Fatalf("unseen: got %q, want only m2", got)
	}
	if n, seen := s.Messages(t, "INBOX"), s.Count(t, "INBOX", imap.FlagSeen); n != 2 || seen != 2 {
		t.Fatalf("keep+mark_seen: %d messages, %d seen; want 2 and 2", n, seen)
	}
	// Without mark_seen, PEEK leaves the flag alone.
	s.Append(t, "INBOX", imapMsg(3))
	src.MarkSeen = false
	runIMAP(t, src, true)
	if seen := s.Count(t, "INBOX", imap.FlagSeen); seen != 2 {
		t.Fatalf("keep without mark_seen: %d seen, want 2", seen)
	}
}

// With keep and unseen, a message the user has read (\Seen) is not
// fetched, but its seen-store record stays: once marked unread again it
// must not come a second time.
func TestIMAPUnseenKeepsRecordOfReadMail(t *testing.T) {
	s := imaptest.Start(t, imaptest.Options{UIDPlus: true})
	s.Append(t, "INBOX", imapMsg(1))
	s.Append(t, "INBOX", imapMsg(2), imap.FlagSeen)
	src := imapSource(s)
	src.Keep, src.Unseen = true, true
	tgt := &fakeTarget{}
	acct := Account{Name: "u", Proto: "imap", Server: s.Addr, Open: src.Open, Keep: true, To: []string{"me"}, Target: tgt}
	subjects := func() (out []string) {
		for _, d := range tgt.got {
			_, rest, _ := strings.Cut(string(d.data), "Subject: ")
			out = append(out, strings.SplitN(rest, "\n", 2)[0])
		}
		return out
	}
	state := t.TempDir()
	run := func() {
		t.Helper()
		if _, err := Run(context.Background(), Options{StateDir: state, Workers: 1, Accounts: []Account{acct}}, nil); err != nil && errkind.KindOf(err) != errkind.NoMail {
			t.Fatal(err)
		}
	}
	// flag sets or clears \Seen on UID 1 as a mail client would.
	flag := func(add bool) {
		t.Helper()
		cl, err := linkimap.Dial(context.Background(), linkimap.Options{Addr: s.Addr, TLS: netconn.TLSNone, User: s.User, Password: pw(s.Pass), Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := cl.Select(context.Background(), "INBOX"); err != nil {
			t.Fatal(err)
		}
		if err := cl.Store(context.Background(), []uint32{1}, `\Seen`, add); err != nil {
			t.Fatal(err)
		}
	}
	run()
	if got := subjects(); strings.Join(got, ",") != "m1" {
		t.Fatalf("first run delivered %q, want m1 only (m2 is read)", got)
	}
	flag(true) // read in a mail client
	s.Append(t, "INBOX", imapMsg(3))
	run()       // lists m3 alone
	flag(false) // m1 marked unread again
	run()
	if got := subjects(); strings.Join(got, ",") != "m1,m3" {
		t.Fatalf("delivered %q, want m1 and m3 once each: m1 must not come again after being read and marked unread", got)
	}
	if n := s.Messages(t, "INBOX"); n != 3 {
		t.Fatalf("%d messages on the server, want all 3 kept", n)
	}
}

func TestIMAPSourceUIDValidityChangeWarned(t *testing.T) {
	s := imaptest.Start(t, imaptest.Options{UIDPlus: true})
	s.Append(t, "INBOX", imapMsg(1))
	src := imapSource(s)
	mb, err := src.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, uv, _ := ParseIMAPKey(mb.Key())
	mb.Close(context.Background(), false)

	var log bytes.Buffer
	src.Logger = slog.New(slog.NewTextHandler(&log, nil))
	src.LastUIDValidity = uv + 1
	mb, err = src.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close(context.Background(), false)
	if !strings.Contains(log.String(), "UIDVALIDITY changed") {
		t.Fatalf("no warning for a changed UIDVALIDITY:\n%s", log.String())
	}
}

func TestIMAPSourceRetrieveBatches(t *testing.T) {
	s := imaptest.Start(t, imaptest.Options{UIDPlus: true})
	n := imapBatchMessages + 5
	for i := 0; i < n; i++ {
		s.Append(t, "INBOX", "Subject: x\r\n\r\nbody\r\n")
	}
	mb, err := imapSource(s).Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close(context.Background(), false)
	msgs, err := mb.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	err = mb.Retrieve(context.Background(), msgs, func(m Message, r io.Reader) error {
		order = append(order, m.UID)
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if err != nil || len(order) != n {
		t.Fatalf("retrieved %d of %d, err %v", len(order), n, err)
	}
	for i := range order {
		if order[i] != msgs[i].UID {
			t.Fatalf("message %d: got UID %s, want %s (listed order)", i, order[i], msgs[i].UID)
		}
	}
}

func TestParseIMAPKey(t *testing.T) {
	k := IMAPKeyPrefix("u", "h:993", "") + "77"
	if p, uv, ok := ParseIMAPKey(k); !ok || uv != 77 || p != "imap:u@h:993/INBOX;UIDVALIDITY=" {
		t.Fatalf("%q: %q %d %v", k, p, uv, ok)
	}
	for _, bad := range []string{"pop3:u@h", "imap:u@h/INBOX;UIDVALIDITY=x", "imap:u@h/INBOX"} {
		if _, _, ok := ParseIMAPKey(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestIMAPSourceUIDValidityChangeInSession: a second listing in the same
// session that finds another UIDVALIDITY fails instead of mixing two
// numberings under one Key.
func TestIMAPSourceUIDValidityChangeInSession(t *testing.T) {
	sel := func(tagSel, tagFetch string, uv string) []string {
		return []string{
			"C: " + tagSel + " SELECT INBOX",
			"C~ " + tagFetch + " UID FETCH 1:* (UID ",
			"S: * 1 EXISTS",
			"S: * OK [UIDVALIDITY " + uv + "] ok",
			"S: " + tagSel + " OK [READ-WRITE] selected",
			`S: * 1 FETCH (UID 5 RFC822.SIZE 12 FLAGS ())`,
			"S: " + tagFetch + " OK fetched",
		}
	}
	steps := []string{"S: * OK [CAPABILITY IMAP4rev1 UIDPLUS] ready", `C: L1 LOGIN "alice" "secret"`, "S: L1 OK [CAPABILITY IMAP4rev1 UIDPLUS] in"}
	steps = append(steps, sel("T1", "T2", "42")...)
	steps = append(steps, sel("T3", "T4", "43")...)
	steps = append(steps, "C: T5 LOGOUT", "S: * BYE bye", "S: T5 OK done")
	srv := scripted.Start(t, steps)
	src := IMAPSource{Addr: "imap.test:143", TLS: netconn.TLSNone, User: "alice", Password: pw("secret"), Timeout: 5 * time.Second,
		Dial: func(context.Context) (net.Conn, error) { return srv.Conn, nil }}
	ctx := context.Background()
	mb, err := src.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(mb.Key(), ";UIDVALIDITY=42") {
		t.Fatalf("key %q", mb.Key())
	}
	if l, err := mb.List(ctx); err != nil || len(l) != 1 || l[0].UID != "5" {
		t.Fatalf("first list %v, %v", l, err)
	}
	if _, err := mb.List(ctx); err == nil || !strings.Contains(err.Error(), "UIDVALIDITY changed") {
		t.Fatalf("second list after a UIDVALIDITY change: %v", err)
	}
	mb.Close(ctx, false)
	srv.Wait(t)
}

func TestIMAPSourceTLSRequiredByDefault(t *testing.T) {
	s := imaptest.Start(t, imaptest.Options{})
	src := imapSource(s)
	src.TLS = "" // unset: STARTTLS, required
	if _, err := src.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("plaintext server with TLS unset: %v, want a STARTTLS error", err)
	}
}

// TestSourcesTakeResolvedAddresses: the config alone defaults ports
// (config.DefaultPort); a source given a bare host reports the caller's
// bug (errkind.Internal) before dialing, where it used to pick a port of
// its own.
func TestSourcesTakeResolvedAddresses(t *testing.T) {
	dialed := false
	dial := func(context.Context) (net.Conn, error) { dialed = true; return nil, errors.New("dialed") }
	for name, open := range map[string]func(context.Context) (Mailbox, error){
		"imap": IMAPSource{Addr: "mail.example.net", TLS: netconn.TLSImplicit, User: "u", Password: pw("p"), Dial: dial}.Open,
		"pop3": POP3Source{Addr: "mail.example.net", TLS: netconn.TLSImplicit, User: "u", Password: pw("p"), Dial: dial}.Open,
	} {
		_, err := open(context.Background())
		if errkind.KindOf(err) != errkind.Internal || dialed {
			t.Errorf("%s source with a bare host: %v (%v), dialed %v; want an internal error before dialing", name, err, errkind.KindOf(err), dialed)
		}
	}
}

// A COPY that fails (no such folder) must not be followed by the delete:
// the messages stay, unflagged, and the commit reports the failure.
func TestIMAPSourceFailedCopyKeepsMail(t *testing.T) {
	s := imaptest.Start(t, imaptest.Options{UIDPlus: true}) // no MOVE
	s.Append(t, "INBOX", imapMsg(1))
	s.Append(t, "INBOX", imapMsg(2))
	src := imapSource(s)
	src.MoveTo = "NoSuchFolder"
	ctx := context.Background()
	mb, err := src.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := mb.List(ctx)
	retrieveAll(t, mb, msgs)
	mb.Delete(ctx, msgs)
	if err := mb.Close(ctx, true); err == nil {
		t.Fatal("commit with a failed COPY reported success")
	}
	if n, d := s.Messages(t, "INBOX"), s.Count(t, "INBOX", imap.FlagDeleted); n != 2 || d != 0 {
		t.Fatalf("after a failed COPY: %d messages, %d \\Deleted; want 2 and 0", n, d)
	}
}
