package imap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/scripted"
)

// scriptOpts connects to a scripted server over net.Pipe.
func scriptOpts(t *testing.T, srv *scripted.Server) Options {
	return Options{Addr: "imap.test:143", TLS: netconn.TLSNone, User: "alice", Password: pass("secret"),
		Timeout: 5 * time.Second, Logger: testLogger(t),
		Dial: func(context.Context) (net.Conn, error) { return srv.Conn, nil }}
}

var login = []string{
	"S: * OK [CAPABILITY IMAP4rev1 UIDPLUS] ready",
	`C: L1 LOGIN "alice" "secret"`,
	"S: L1 OK [CAPABILITY IMAP4rev1 UIDPLUS] in",
}

// selectList is the pipelined SELECT and listing of two messages, UIDs 5
// and 7, UIDVALIDITY 42.
var selectList = []string{
	"C: T1 SELECT INBOX",
	"C~ T2 UID FETCH 1:* (UID ",
	"S: * 2 EXISTS",
	"S: * OK [UIDVALIDITY 42] ok",
	"S: * OK [UIDNEXT 8] ok",
	"S: T1 OK [READ-WRITE] selected",
	`S: * 1 FETCH (UID 5 RFC822.SIZE 12 FLAGS ())`,
	`S: * 2 FETCH (UID 7 RFC822.SIZE 9 FLAGS (\Seen))`,
	"S: T2 OK fetched",
}

func script(parts ...[]string) []string {
	var s []string
	for _, p := range parts {
		s = append(s, p...)
	}
	return s
}

func dialScript(t *testing.T, steps []string) (*Client, *scripted.Server) {
	t.Helper()
	srv := scripted.Start(t, steps)
	cl, err := Dial(ctxT(t), scriptOpts(t, srv))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl, srv
}

func TestScriptedListing(t *testing.T) {
	cl, srv := dialScript(t, script(login, selectList))
	sel, list, err := cl.SelectList(ctxT(t), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if sel.UIDValidity != 42 || sel.UIDNext != 8 || len(list) != 2 ||
		list[0] != (Entry{UID: 5, Size: 12}) || list[1] != (Entry{UID: 7, Size: 9, Seen: true}) {
		t.Fatalf("select %+v list %+v", sel, list)
	}
	srv.Wait(t)
}

// collect fetches uids and returns "uid:body" strings in arrival order.
func collect(t *testing.T, cl *Client, uids []uint32) ([]string, error) {
	var got []string
	err := cl.Fetch(ctxT(t), uids, func(uid uint32, r io.Reader) error {
		b, err := io.ReadAll(r)
		got = append(got, strings.Join([]string{uidString(uid), string(b)}, ":"))
		return err
	})
	return got, err
}

func TestBodyBeforeUID(t *testing.T) {
	cl, srv := dialScript(t, script(login, selectList, []string{
		"C: T3 UID FETCH 5,7 (UID BODY.PEEK[])",
		// RFC 3501 does not order the items: BODY[] may come first.
		"RAW: * 1 FETCH (BODY[] {12}\r\nab\r\ncd\r\nef\r\n UID 5)\r\n",
		"RAW: * 2 FETCH (UID 7 BODY[] {10}\r\nxyz\r\n\r\n.\r\n)\r\n",
		"S: T3 OK done",
	}))
	if _, _, err := cl.SelectList(ctxT(t), "INBOX"); err != nil {
		t.Fatal(err)
	}
	got, err := collect(t, cl, []uint32{5, 7})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"5:ab\ncd\nef\n", "7:xyz\n\n.\n"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
	srv.Wait(t)
}

// A FETCH response for a UID that was not asked for, or a body with no
// UID at all, is a protocol error: nothing is delivered under a guess.
func TestBodyUnderWrongOrNoUIDIsProtocolError(t *testing.T) {
	for name, raw := range map[string]string{
		"unrequested UID": "RAW: * 2 FETCH (BODY[] {3}\r\nabc UID 7)\r\n",
		"no UID":          "RAW: * 1 FETCH (BODY[] {3}\r\nabc)\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			cl, _ := dialScript(t, script(login, selectList, []string{
				"C: T3 UID FETCH 5 (UID BODY.PEEK[])",
				raw,
				"S: T3 OK done",
			}))
			if _, _, err := cl.SelectList(ctxT(t), "INBOX"); err != nil {
				t.Fatal(err)
			}
			got, err := collect(t, cl, []uint32{5})
			if errkind.KindOf(err) != errkind.Protocol || len(got) != 0 {
				t.Fatalf("delivered %q, err %v: want nothing delivered and a protocol error", got, err)
			}
		})
	}
}

func TestVanishedMessageSkipped(t *testing.T) {
	cl, srv := dialScript(t, script(login, selectList, []string{
		"C: T3 UID FETCH 5,7 (UID BODY.PEEK[])",
		"RAW: * 1 FETCH (UID 5 BODY[] {3}\r\nabc)\r\n",
		"S: T3 OK done", // 7 was expunged by another client meanwhile
	}))
	if _, _, err := cl.SelectList(ctxT(t), "INBOX"); err != nil {
		t.Fatal(err)
	}
	got, err := collect(t, cl, []uint32{5, 7})
	if err != nil || len(got) != 1 || got[0] != "5:abc" {
		t.Fatalf("got %q, err %v", got, err)
	}
	srv.Wait(t)
}

func TestLinkCutMidLiteral(t *testing.T) {
	cl, _ := dialScript(t, script(login, selectList, []string{
		"C: T3 UID FETCH 5 (UID BODY.PEEK[])",
		"RAW: * 1 FETCH (UID 5 BODY[] {100}\r\nonly the first part",
		"CLOSE",
	}))
	if _, _, err := cl.SelectList(ctxT(t), "INBOX"); err != nil {
		t.Fatal(err)
	}
	var readErr error
	err := cl.Fetch(ctxT(t), []uint32{5}, func(uid uint32, r io.Reader) error {
		_, readErr = io.ReadAll(r)
		return readErr
	})
	if readErr == nil {
		t.Fatal("the reader of a cut message ended without error: a partial message could be delivered")
	}
	if errkind.KindOf(err) != errkind.Network || !errkind.IsTemporary(err) {
		t.Fatalf("Fetch: %v (kind %v), want a temporary network error", err, errkind.KindOf(err))
	}
}

func TestNoUIDValidityRefused(t *testing.T) {
	cl, _ := dialScript(t, script(login, []string{
		"C: T1 SELECT INBOX",
		"C~ T2 UID FETCH 1:* (UID ",
		"S: * 1 EXISTS",
		"S: T1 OK selected",
		`S: * 1 FETCH (UID 5 RFC822.SIZE 12 FLAGS ())`,
		"S: T2 OK fetched",
	}))
	_, list, err := cl.SelectList(ctxT(t), "INBOX")
	if errkind.KindOf(err) != errkind.Protocol || list != nil {
		t.Fatalf("list %v, err %v: want a protocol error without UIDVALIDITY", list, err)
	}
}

func TestServerNeverAnswers(t *testing.T) {
	srv := scripted.Start(t, []string{"S: * OK ready", "HANG"})
	o := scriptOpts(t, srv)
	o.Timeout = 200 * time.Millisecond
	_, err := Dial(ctxT(t), o)
	if errkind.KindOf(err) != errkind.Network || !errkind.IsTemporary(err) || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("silent server: %v, want a temporary network error saying no answer", err)
	}
}

func TestServerNeverAnswersAfterLogin(t *testing.T) {
	cl, _ := dialScript(t, script(login, []string{"HANG"}))
	cl.opts.Timeout = 200 * time.Millisecond
	cl.wire.timeout = 200 * time.Millisecond
	_, _, err := cl.SelectList(ctxT(t), "INBOX")
	if errkind.KindOf(err) != errkind.Network || !errkind.IsTemporary(err) {
		t.Fatalf("silent server: %v, want a temporary network error", err)
	}
}

func TestCancelUnblocks(t *testing.T) {
	cl, _ := dialScript(t, script(login, []string{"HANG"}))
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, _, err := cl.SelectList(ctx, "INBOX")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled SELECT: %v", err)
	}
}

func TestPreauthWithTLSRequired(t *testing.T) {
	srv := scripted.Start(t, []string{"S: * PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome"})
	o := scriptOpts(t, srv)
	o.TLS = netconn.TLSStartTLS
	_, err := Dial(ctxT(t), o)
	if err == nil || errkind.IsTemporary(err) || !strings.Contains(err.Error(), "PREAUTH") {
		t.Fatalf("PREAUTH with TLS required: %v, want a permanent error", err)
	}
	srv.Wait(t) // and nothing was sent: no LOGIN in the clear
	if l := srv.Lines(); len(l) != 0 {
		t.Fatalf("client sent %q", l)
	}
}

func TestPreauthWithoutTLS(t *testing.T) {
	cl, srv := dialScript(t, []string{
		"S: * PREAUTH welcome",
		"C: L1 CAPABILITY",
		"S: * CAPABILITY IMAP4rev1 IDLE",
		"S: L1 OK done",
	})
	if !cl.Has("IDLE") {
		t.Fatal("capabilities not learnt after PREAUTH")
	}
	srv.Wait(t)
}

func TestGreetingBye(t *testing.T) {
	srv := scripted.Start(t, []string{"S: * BYE too many connections"})
	_, err := Dial(ctxT(t), scriptOpts(t, srv))
	if errkind.KindOf(err) != errkind.Refused || !errkind.IsTemporary(err) {
		t.Fatalf("BYE greeting: %v", err)
	}
}

func TestOverlongGreeting(t *testing.T) {
	srv := scripted.Start(t, []string{"RAW: * OK " + strings.Repeat("x", 3*maxLine)})
	_, err := Dial(ctxT(t), scriptOpts(t, srv))
	if errkind.KindOf(err) != errkind.Protocol {
		t.Fatalf("overlong greeting: %v", err)
	}
}

func TestLoginDisabledUsesPlain(t *testing.T) {
	_, srv := dialScript(t, []string{
		"S: * OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN SASL-IR] ready",
		"C: L1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==", // "\0alice\0secret"
		"S: L1 OK [CAPABILITY IMAP4rev1] in",
	})
	srv.Wait(t)
}

func TestPlainWithoutSASLIR(t *testing.T) {
	srv := scripted.Start(t, []string{
		"S: * OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready",
		"C: L1 AUTHENTICATE PLAIN",
		"S: + ",
		"C: AGFsaWNlAHNlY3JldA==",
		"S: L1 NO [AUTHENTICATIONFAILED] bad",
	})
	o := scriptOpts(t, srv)
	o.Auth = "plain"
	_, err := Dial(ctxT(t), o)
	if errkind.ExitCode(err) != 3 || errkind.IsTemporary(err) {
		t.Fatalf("refused AUTHENTICATE: %v", err)
	}
	srv.Wait(t)
}

func TestLoginDisabledWithoutPlain(t *testing.T) {
	srv := scripted.Start(t, []string{"S: * OK [CAPABILITY IMAP4rev1 LOGINDISABLED STARTTLS] ready"})
	_, err := Dial(ctxT(t), scriptOpts(t, srv))
	if errkind.KindOf(err) != errkind.Auth {
		t.Fatalf("LOGINDISABLED without PLAIN: %v", err)
	}
}

func TestLoginLiteralPassword(t *testing.T) {
	srv := scripted.Start(t, []string{
		"S: * OK [CAPABILITY IMAP4rev1] ready",
		`C: L1 LOGIN "alice" {7}`,
		"S: + go ahead",
		"C: s\xc3\xa9cret",
		"S: L1 OK in",
		"C: L2 CAPABILITY",
		"S: * CAPABILITY IMAP4rev1 MOVE",
		"S: L2 OK done",
	})
	o := scriptOpts(t, srv)
	o.Password = pass("s\xc3\xa9cret")
	var log bytes.Buffer
	o.Logger = slogTo(&log)
	cl, err := Dial(ctxT(t), o)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	srv.Wait(t)
	if !cl.Has("MOVE") {
		t.Fatal("post-login capabilities not asked for")
	}
	if strings.Contains(log.String(), "cret") {
		t.Fatalf("password in the transcript:\n%s", log.String())
	}
}

func TestQuotedPasswordEscaped(t *testing.T) {
	srv := scripted.Start(t, []string{
		"S: * OK [CAPABILITY IMAP4rev1] ready",
		`C: L1 LOGIN "alice" "a\"b\\c"`,
		"S: L1 NO [UNAVAILABLE] later",
	})
	o := scriptOpts(t, srv)
	o.Password = pass(`a"b\c`)
	_, err := Dial(ctxT(t), o)
	if errkind.KindOf(err) != errkind.Auth || !errkind.IsTemporary(err) {
		t.Fatalf("NO [UNAVAILABLE]: %v, want a temporary auth error", err)
	}
	srv.Wait(t)
}

func TestXOAUTH2(t *testing.T) {
	srv := scripted.Start(t, []string{
		"S: * OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR] ready",
		"C: L1 AUTHENTICATE XOAUTH2 dXNlcj1hbGljZQFhdXRoPUJlYXJlciB0b2sBAQ==",
		"S: + eyJzdGF0dXMiOiI0MDEifQ==",
		"C: ",
		"S: L1 NO [AUTHENTICATIONFAILED] token expired",
	})
	o := scriptOpts(t, srv)
	o.Auth, o.Password = "xoauth2", pass("tok")
	_, err := Dial(ctxT(t), o)
	if errkind.ExitCode(err) != 3 {
		t.Fatalf("XOAUTH2 refused: %v", err)
	}
	srv.Wait(t)
}

func TestEndlessListingBounded(t *testing.T) {
	steps := script(login, []string{
		"C: T1 SELECT INBOX",
		"C~ T2 UID FETCH 1:* (UID ",
		"S: * 1 EXISTS",
		"S: * OK [UIDVALIDITY 42] ok",
		"S: T1 OK selected",
	})
	var b strings.Builder
	for i := 1; i <= 150; i++ {
		b.WriteString("* 1 FETCH (UID " + uidString(uint32(i)) + " RFC822.SIZE 1 FLAGS ())\r\n")
	}
	steps = append(steps, "RAW: "+b.String(), "HANG")
	cl, _ := dialScript(t, steps)
	cl.opts.MaxMessages = 100
	_, list, err := cl.SelectList(ctxT(t), "INBOX")
	if errkind.KindOf(err) != errkind.Protocol || list != nil ||
		!strings.Contains(fmt.Sprint(err), "server listed more than 100 messages in INBOX (it announced EXISTS 1)") {
		t.Fatalf("endless listing: %d entries, %v", len(list), err)
	}
}

func TestOversizedLiteralRefusedUnread(t *testing.T) {
	cl, _ := dialScript(t, script(login, selectList, []string{
		"C: T3 UID FETCH 5 (UID BODY.PEEK[])",
		"RAW: * 1 FETCH (UID 5 BODY[] {99999999999}\r\n",
		"HANG",
	}))
	if _, _, err := cl.SelectList(ctxT(t), "INBOX"); err != nil {
		t.Fatal(err)
	}
	called := false
	err := cl.FetchLimited(ctxT(t), []uint32{5}, map[uint32]int64{5: 1 << 20}, func(uint32, io.Reader) error {
		called = true
		return nil
	})
	if errkind.KindOf(err) != errkind.Protocol || called {
		t.Fatalf("oversized literal: %v (delivered: %v), want a protocol error before delivery", err, called)
	}
}

// TestCommitPipelined is the golden transcript of a commit: the three
// commands leave before any answer is read (one round trip on a slow link).
func TestCommitPipelined(t *testing.T) {
	cl, srv := dialScript(t, script(login, selectList, []string{
		`C: T3 UID STORE 5,7 +FLAGS.SILENT (\Deleted)`,
		"C: T4 UID EXPUNGE 5,7",
		"C: T5 LOGOUT",
		"S: T3 OK stored",
		"S: * 1 EXPUNGE",
		"S: * 1 EXPUNGE",
		"S: T4 OK expunged",
		"S: * BYE bye",
		"S: T5 OK done",
	}))
	if _, _, err := cl.SelectList(ctxT(t), "INBOX"); err != nil {
		t.Fatal(err)
	}
	res, err := cl.Commit(ctxT(t), Commit{Delete: []uint32{5, 7}})
	if err != nil || res.LeftFlagged != 0 {
		t.Fatalf("commit: %+v, %v", res, err)
	}
	srv.Wait(t)
}

// TestCommitManyExpungesBeforeStoreAnswer: a server may answer the
// pipelined UID EXPUNGE's EXPUNGE responses before its OK to the STORE
// (RFC 3501 section 7.4.1 allows them during a UID command), more of them
// than go-imap buffers (128). The commit must drain both at once; waiting
// for the STORE first deadlocked against Dovecot with 5000 messages.
func TestCommitManyExpungesBeforeStoreAnswer(t *testing.T) {
	const n = 300
	var uids []uint32
	steps := script(login, []string{
		"C: T1 SELECT INBOX",
		"C~ T2 UID FETCH 1:* (UID ",
		fmt.Sprintf("S: * %d EXISTS", n),
		"S: * OK [UIDVALIDITY 42] ok",
		"S: T1 OK [READ-WRITE] selected",
		"S: T2 OK fetched",
	})
	for i := 1; i <= n; i++ {
		uids = append(uids, uint32(i))
	}
	all := fmt.Sprintf("1:%d", n)
	steps = append(steps, "C: T3 UID STORE "+all+` +FLAGS.SILENT (\Deleted)`, "C: T4 UID EXPUNGE "+all, "C: T5 LOGOUT")
	for range n {
		steps = append(steps, "S: * 1 EXPUNGE")
	}
	steps = append(steps, "S: T3 OK stored", "S: T4 OK expunged", "S: * BYE bye", "S: T5 OK done")
	cl, srv := dialScript(t, steps)
	if _, _, err := cl.SelectList(ctxT(t), "INBOX"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := cl.Commit(ctxT(t), Commit{Delete: uids})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("commit: %v", err)
		}
	case <-time.After(20 * time.Second): // a hang guard, not a speed target
		// Not t.Fatal: the cleanup's Close would wait for go-imap's
		// reader, which is the goroutine stuck, and hang the test.
		panic("Commit deadlocked: the EXPUNGE responses were not drained while waiting for the STORE")
	}
	srv.Wait(t)
}

// Without UIDPLUS the flags are set, nothing is expunged, and the result
// says how many were left.
func TestCommitWithoutUIDPlus(t *testing.T) {
	cl, srv := dialScript(t, script([]string{
		"S: * OK [CAPABILITY IMAP4rev1] ready",
		`C: L1 LOGIN "alice" "secret"`,
		"S: L1 OK [CAPABILITY IMAP4rev1] in",
	}, selectList, []string{
		`C: T3 UID STORE 5 +FLAGS.SILENT (\Deleted)`,
		"C: T4 LOGOUT",
		"S: T3 OK stored",
		"S: * BYE bye",
		"S: T4 OK done",
	}))
	if _, _, err := cl.SelectList(ctxT(t), "INBOX"); err != nil {
		t.Fatal(err)
	}
	res, err := cl.Commit(ctxT(t), Commit{Delete: []uint32{5}})
	if err != nil || res.LeftFlagged != 1 {
		t.Fatalf("commit: %+v, %v", res, err)
	}
	srv.Wait(t)
}

func TestAuthExternalNeedsPreauth(t *testing.T) {
	srv := scripted.Start(t, []string{"S: * OK [CAPABILITY IMAP4rev1] ready"})
	o := scriptOpts(t, srv)
	o.Auth = "external"
	if _, err := Dial(ctxT(t), o); errkind.KindOf(err) != errkind.Auth {
		t.Fatalf("external auth without PREAUTH: %v", err)
	}
	srv2 := scripted.Start(t, []string{"S: * PREAUTH [CAPABILITY IMAP4rev1] tunnel"})
	o = scriptOpts(t, srv2)
	o.Auth = "external"
	cl, err := Dial(ctxT(t), o)
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
}

// TestSlowDeliveryOutlivesTimeout: the local side may take longer than
// the inactivity timeout to accept the last message of a batch (a slow
// MDA); the server owes nothing meanwhile, so the session must survive.
func TestSlowDeliveryOutlivesTimeout(t *testing.T) {
	cl, srv := dialScript(t, script(login, selectList, []string{
		"C: T3 UID FETCH 5 (UID BODY.PEEK[])",
		"RAW: * 1 FETCH (UID 5 BODY[] {3}\r\nabc)\r\n",
		"S: T3 OK done",
		"C: T4 NOOP",
		"S: T4 OK still here",
	}))
	cl.wire.timeout = 100 * time.Millisecond
	if _, _, err := cl.SelectList(ctxT(t), "INBOX"); err != nil {
		t.Fatal(err)
	}
	err := cl.Fetch(ctxT(t), []uint32{5}, func(uid uint32, r io.Reader) error {
		io.Copy(io.Discard, r)
		time.Sleep(500 * time.Millisecond) // the MTA thinks: 5 timeouts long
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Noop(ctxT(t)); err != nil {
		t.Fatalf("session died while the local side was busy: %v", err)
	}
	srv.Wait(t)
}

// TestStallMidLiteralTimesOut: a server that stops in the middle of a
// message is noticed by the reads fn makes, even though fn itself is
// not bounded.
func TestStallMidLiteralTimesOut(t *testing.T) {
	cl, _ := dialScript(t, script(login, selectList, []string{
		"C: T3 UID FETCH 5 (UID BODY.PEEK[])",
		"RAW: * 1 FETCH (UID 5 BODY[] {30}\r\nabc",
		"HANG",
	}))
	cl.wire.timeout = 100 * time.Millisecond
	if _, _, err := cl.SelectList(ctxT(t), "INBOX"); err != nil {
		t.Fatal(err)
	}
	err := cl.Fetch(ctxT(t), []uint32{5}, func(uid uint32, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if errkind.KindOf(err) != errkind.Network || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("stalled literal: %v", err)
	}
}

// TestCorruptDeflateStream: after COMPRESS the server sends octets that
// are not deflate: the next command fails as a protocol error, no hang.
func TestCorruptDeflateStream(t *testing.T) {
	c, s := net.Pipe()
	t.Cleanup(func() { c.Close(); s.Close() })
	go func() {
		r := bufio.NewReader(s)
		io.WriteString(s, "* OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE] hi\r\n")
		r.ReadString('\n') // LOGIN
		io.WriteString(s, "L1 OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE] in\r\n")
		r.ReadString('\n') // COMPRESS DEFLATE
		io.WriteString(s, "L2 OK compressing\r\n")
		go io.Copy(io.Discard, r)
		s.Write(bytes.Repeat([]byte{0xff}, 64)) // reserved block type: invalid deflate
	}()
	o := Options{Addr: "imap.test:143", TLS: netconn.TLSNone, User: "alice", Password: pass("secret"),
		Timeout: 5 * time.Second, Logger: testLogger(t), Dial: func(context.Context) (net.Conn, error) { return c, nil }}
	// go-imap's reader starts at once and may meet the corrupt stream
	// before Dial returns (while it takes the synthetic greeting) or at
	// the first command: either way a protocol error, never a hang.
	cl, err := Dial(ctxT(t), o)
	if err == nil {
		defer cl.Close()
		if !cl.Compressed() {
			t.Fatal("COMPRESS not active")
		}
		_, _, err = cl.SelectList(ctxT(t), "INBOX")
	}
	if errkind.KindOf(err) != errkind.Protocol {
		t.Fatalf("corrupt deflate: %v (kind %v), want a protocol error", err, errkind.KindOf(err))
	}
}
