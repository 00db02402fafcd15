package imap

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/internal/logx"

	"github.com/linkctl/linkctl/internal/scripted"
)

// wholeSession is a pull from login to logout, with an [ALERT] at login
// and one while the folder is selected.
var wholeSession = script([]string{
	"S: * OK [CAPABILITY IMAP4rev1 UIDPLUS] ready",
	`C: L1 LOGIN "alice" "secret"`,
	"S: * OK [ALERT] Your password expires in 3 days",
	"S: L1 OK [CAPABILITY IMAP4rev1 UIDPLUS] in",
	"C: T1 SELECT INBOX",
	"C~ T2 UID FETCH 1:* (UID ",
	"S: * 1 EXISTS",
	"S: * OK [UIDVALIDITY 42] ok",
	"S: * OK [ALERT] Mailbox is 95% full",
	"S: T1 OK [READ-WRITE] selected",
	"S: * 1 FETCH (UID 5 RFC822.SIZE 21 FLAGS ())",
	"S: T2 OK fetched",
	"C: T3 UID FETCH 5 (UID BODY.PEEK[])",
	"RAW: * 1 FETCH (UID 5 BODY[] {22}\r\nSubject: x\r\n\r\nBODYTEXT)\r\n",
	"S: T3 OK done",
	`C: T4 UID STORE 5 +FLAGS.SILENT (\Deleted)`,
	"C: T5 UID EXPUNGE 5",
	"C: T6 LOGOUT",
	"S: T4 OK stored",
	"S: * 1 EXPUNGE",
	"S: T5 OK expunged",
	"S: * BYE bye",
	"S: T6 OK done",
})

func runWholeSession(t *testing.T, level slog.Level) string {
	t.Helper()
	var logs bytes.Buffer
	srv := scripted.Start(t, wholeSession)
	o := scriptOpts(t, srv)
	o.Logger = slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, &slog.HandlerOptions{Level: level}))
	cl, err := Dial(ctxT(t), o)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, _, err := cl.SelectList(ctxT(t), "INBOX"); err != nil {
		t.Fatal(err)
	}
	if got := fetchAll(t, cl, []uint32{5}); got[5] != "Subject: x\n\nBODYTEXT" {
		t.Fatalf("fetched %v", got)
	}
	if _, err := cl.Commit(ctxT(t), Commit{Delete: []uint32{5}}); err != nil {
		t.Fatal(err)
	}
	srv.Wait(t)
	return logs.String()
}

// TestTranscriptWholeSession: -vv shows the whole session, not only the
// login (issue 16, item 5): every command and response from SELECT to
// LOGOUT, the password as ***, a message body as its size only.
func TestTranscriptWholeSession(t *testing.T) {
	logs := runWholeSession(t, logx.LevelTrace)
	for _, want := range []string{
		`imap C: L1 LOGIN \"alice\" ***`,
		"imap C: T1 SELECT INBOX",
		"imap C: T2 UID FETCH 1:* (UID ", // the items in go-imap's order
		"imap S: * OK [UIDVALIDITY 42] ok",
		"imap S: T1 OK [READ-WRITE] selected",
		"imap S: * 1 FETCH (UID 5 RFC822.SIZE 21 FLAGS ())",
		"imap C: T3 UID FETCH 5 (UID BODY.PEEK[])",
		"imap S: * 1 FETCH (UID 5 BODY[] {22 octets})",
		`imap C: T4 UID STORE 5 +FLAGS.SILENT (\\Deleted)`,
		"imap C: T5 UID EXPUNGE 5",
		"imap S: * 1 EXPUNGE",
		"imap C: T6 LOGOUT",
		"imap S: * BYE bye",
		"imap S: T6 OK done",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
	for _, secret := range []string{"secret", "BODYTEXT", "Subject: x"} {
		if strings.Contains(logs, secret) {
			t.Errorf("transcript shows %q", secret)
		}
	}
	if strings.Contains(logs, "linkctl: logged in") {
		t.Error("transcript shows the synthetic greeting handed to go-imap as if the server had sent it")
	}
	if t.Failed() {
		t.Log(logs)
	}
}

// TestAlertShownAtNormalLevel: RFC 3501 section 7.1 says an [ALERT] text
// MUST be presented to the user: it is logged as a warning, at login and
// later, without -vv.
func TestAlertShownAtNormalLevel(t *testing.T) {
	logs := runWholeSession(t, slog.LevelInfo)
	for _, want := range []string{
		`level=WARN msg="IMAP server alert: Your password expires in 3 days"`,
		`level=WARN msg="IMAP server alert: Mailbox is 95% full"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	if n := strings.Count(logs, "IMAP server alert"); n != 2 {
		t.Errorf("%d alerts logged, want 2 (each once):\n%s", n, logs)
	}
}

// FuzzTap feeds the session tap arbitrary server octets, whole and cut at
// arbitrary points: it must never panic, and what it sees (responses,
// transcript, failure) must not depend on how the stream was cut into
// reads.
func FuzzTap(f *testing.F) {
	f.Add([]byte("* 1 FETCH (UID 5 BODY[] {3}\r\nabc)\r\nT1 OK done\r\n"), uint8(1))
	f.Add([]byte("* OK [ALERT] hello\r\n* 2 FETCH (BODY[] {0}\r\n UID 7)\r\n"), uint8(7))
	f.Add([]byte("* OK {5+}\r\nab\r\nc\r\nT2 NO [ALERT] x\r\n"), uint8(3))
	f.Fuzz(func(t *testing.T, stream []byte, cut uint8) {
		run := func(step int) (string, int64, error) {
			var logs bytes.Buffer
			tp := newTap(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: logx.LevelTrace})), "fuzz")
			tp.expect("fuzz", 0)
			r := tp.reader(bytes.NewReader(stream))
			buf := make([]byte, step)
			var err error
			for err == nil {
				_, err = r.Read(buf)
			}
			return logs.String(), tp.untagged.Load(), tp.failure()
		}
		whole, n1, err1 := run(len(stream) + 1)
		cutUp, n2, err2 := run(int(cut)%16 + 1)
		if n1 != n2 || fmt.Sprint(err1) != fmt.Sprint(err2) {
			t.Fatalf("whole: %d untagged, %v; in reads of %d: %d, %v", n1, err1, int(cut)%16+1, n2, err2)
		}
		strip := func(s string) string { // drop the time= fields
			var out []string
			for _, l := range strings.Split(s, "\n") {
				if _, rest, ok := strings.Cut(l, " level="); ok {
					out = append(out, rest)
				}
			}
			return strings.Join(out, "\n")
		}
		if strip(whole) != strip(cutUp) {
			t.Fatalf("transcript depends on the reads:\n%s\n---\n%s", whole, cutUp)
		}
	})
}

// BenchmarkTap is the tap's cost on a stream of 64 KiB messages (trace
// off, as in a normal run): it sits on every octet a session reads.
func BenchmarkTap(b *testing.B) {
	body := strings.Repeat("a line of a message body, seventy-odd octets long, as mail often is\r\n", 1000)
	var s strings.Builder
	for i := 1; i <= 16; i++ {
		fmt.Fprintf(&s, "* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n", i, i, len(body), body)
	}
	stream := []byte(s.String())
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(stream)))
	for i := 0; i < b.N; i++ {
		tp := newTap(slog.New(slog.DiscardHandler), "bench")
		tp.expect("bench", 16)
		r := tp.reader(bytes.NewReader(stream))
		for {
			if _, err := r.Read(buf); err != nil {
				break
			}
		}
	}
}
