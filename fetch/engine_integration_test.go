package fetch

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/linkctl/linkctl/fetch/deliver"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/internal/linksim"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// realisticMessage is a plain-text mail of about size bytes whose
// Message-ID names it.
func realisticMessage(id string, size int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Return-Path: <sender@example.org>\nReceived: from mx.example.org by pop.example.net; Tue, 24 Nov 2026 10:00:00 +0000\nFrom: Sender <sender@example.org>\nTo: user@example.net\nSubject: message %s\nMessage-ID: <%s>\nDate: Tue, 24 Nov 2026 10:00:00 +0000\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n", id, id)
	line := "The quick brown fox jumps over the lazy dog; .dots at the start follow:\n.a line that starts with a dot\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return []byte(b.String())
}

var msgIDRe = regexp.MustCompile(`(?mi)^Message-ID: <([^>]*)>`)

// idsOf returns the Message-IDs of the sink's messages, sorted, with repeats.
func idsOf(sink *testpeer.Sink) []string {
	var ids []string
	for _, m := range sink.Messages() {
		if x := msgIDRe.FindSubmatch(m.Data); x != nil {
			ids = append(ids, string(x[1]))
		} else {
			ids = append(ids, "?")
		}
	}
	sort.Strings(ids)
	return ids
}

// checkExactlyOnce fails unless every id in want arrived exactly once.
func checkExactlyOnce(t *testing.T, got, want []string) {
	t.Helper()
	count := map[string]int{}
	for _, id := range got {
		count[id]++
	}
	for _, id := range want {
		switch count[id] {
		case 1:
		case 0:
			t.Errorf("LOST: %s never delivered", id)
		default:
			t.Errorf("DUPLICATE: %s delivered %d times", id, count[id])
		}
		delete(count, id)
	}
	for id := range count {
		t.Errorf("unexpected message %s", id)
	}
}

func pop3Account(name, addr, user string, target deliver.Target, timeout time.Duration) Account {
	src := POP3Source{Addr: addr, TLS: netconn.TLSNone, User: user, Password: pw("pw"), Timeout: timeout}
	return Account{Name: name, Proto: "pop3", Server: addr, Open: src.Open, Target: target, To: []string{"local@sink.test"}}
}

// protoAccount is user's INBOX on Dovecot over proto ("pop3" or "imap").
func protoAccount(proto, pop3Addr, imapAddr, user string, target deliver.Target) Account {
	if proto != "imap" {
		return pop3Account(user, pop3Addr, user, target, 5*time.Second)
	}
	src := IMAPSource{Addr: imapAddr, TLS: netconn.TLSNone, User: user, Password: pw("pw"), Timeout: 5 * time.Second}
	return Account{Name: user, Proto: "imap", Server: imapAddr, Open: src.Open, Target: target, To: []string{"local@sink.test"}}
}

func fillDovecot(d *testpeer.Dovecot, user, prefix string, n int) []string {
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%d@test", prefix, i)
		d.AddMessage(user, "INBOX", realisticMessage(id, 1500+i*700))
		ids = append(ids, id)
	}
	return ids
}

// TestDovecotToSink: real POP3 (Dovecot) into an in-process SMTP sink.
func TestDovecotToSink(t *testing.T) {
	testpeer.Short(t)
	t.Parallel()
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{Users: map[string]string{"a": "pw", "b": "pw"}})
	sink := testpeer.StartSink(t, testpeer.SinkOptions{})
	tgt := deliver.NewSMTP(deliver.SMTPOptions{Addr: sink.Addr(), Sessions: 4})
	defer tgt.Close()
	want := append(fillDovecot(d, "a", "a", 12), fillDovecot(d, "b", "b", 5)...)
	res, err := Run(context.Background(), Options{StateDir: t.TempDir(), Received: true, Workers: 4,
		Accounts: []Account{pop3Account("a", d.POP3Addr(), "a", tgt, 5*time.Second), pop3Account("b", d.POP3Addr(), "b", tgt, 5*time.Second)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Fetched() != 17 {
		t.Fatalf("fetched %d: %s", res.Fetched(), res.Summary())
	}
	checkExactlyOnce(t, idsOf(sink), want)
	if n := d.Count("a", "INBOX") + d.Count("b", "INBOX"); n != 0 {
		t.Errorf("%d messages left on Dovecot", n)
	}
	// Byte-exact apart from the Received line and CRLF.
	for _, m := range sink.Messages() {
		body := strings.ReplaceAll(string(m.Data), "\r\n", "\n")
		i := strings.Index(body, "Return-Path:")
		id := msgIDRe.FindStringSubmatch(body)[1]
		n, _ := strconv.Atoi(id[strings.Index(id, "-")+1 : strings.Index(id, "@")])
		if i < 0 || body[i:] != string(realisticMessage(id, 1500+n*700)) || !strings.HasPrefix(body, "Received: from "+d.POP3Addr()) {
			t.Errorf("message %s altered:\n%.300s", id, body)
		}
		if m.From != "sender@example.org" {
			t.Errorf("MAIL FROM %q", m.From)
		}
	}
}

// TestLinkCutAtManyOffsets cuts the link (reset, or black hole) after N
// bytes in either direction, at offsets spread over a whole POP3 session,
// then runs again over a good link: every message must arrive exactly once
// and the mailbox must end empty.
func TestLinkCutAtManyOffsets(t *testing.T) {
	testpeer.Short(t)
	t.Parallel()
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{Users: map[string]string{"u": "pw"}})
	sink := testpeer.StartSink(t, testpeer.SinkOptions{})
	tgt := deliver.NewSMTP(deliver.SMTPOptions{Addr: sink.Addr(), Sessions: 3})
	defer tgt.Close()

	// A clean reference session measures the bytes each way.
	link := &linksim.Link{}
	proxy, err := link.Listen(d.POP3Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	fillDovecot(d, "u", "ref", 8)
	if _, err := Run(context.Background(), Options{StateDir: t.TempDir(), Accounts: []Account{pop3Account("u", proxy.Addr(), "u", tgt, 5*time.Second)}}, nil); err != nil {
		t.Fatal(err)
	}
	st := link.Stats()
	t.Logf("reference session: %v", st)
	sink.Clear()

	type cut struct {
		f       linksim.Fault
		timeout time.Duration
	}
	var cuts []cut
	for _, frac := range []float64{0, 0.002, 0.01, 0.05, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 0.97, 0.995, 0.999} {
		cuts = append(cuts, cut{linksim.Fault{Dir: linksim.Down, After: int64(frac * float64(st.DownBytes)), Mode: linksim.Reset}, 5 * time.Second})
	}
	for _, frac := range []float64{0.1, 0.5, 0.8, 0.95, 0.99} {
		cuts = append(cuts, cut{linksim.Fault{Dir: linksim.Up, After: int64(frac * float64(st.UpBytes)), Mode: linksim.Reset}, 5 * time.Second})
	}
	for _, frac := range []float64{0.3, 0.98} {
		cuts = append(cuts, cut{linksim.Fault{Dir: linksim.Down, After: int64(frac * float64(st.DownBytes)), Mode: linksim.BlackHole}, 300 * time.Millisecond})
		cuts = append(cuts, cut{linksim.Fault{Dir: linksim.Up, After: int64(frac * float64(st.UpBytes)), Mode: linksim.BlackHole}, 300 * time.Millisecond})
	}
	for i, c := range cuts {
		name := fmt.Sprintf("%d-%v-%d-mode%d", i, c.f.Dir, c.f.After, c.f.Mode)
		t.Run(name, func(t *testing.T) {
			sink.Clear()
			want := fillDovecot(d, "u", fmt.Sprintf("cut%d", i), 8)
			var n atomic.Int32
			flaky := &linksim.Link{ConnFault: func(int) *linksim.Fault {
				if n.Add(1) == 1 {
					f := c.f
					return &f
				}
				return nil
			}}
			p, err := flaky.Listen(d.POP3Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			state := t.TempDir()
			acct := pop3Account("u", p.Addr(), "u", tgt, c.timeout)
			res1, err1 := Run(context.Background(), Options{StateDir: state, Accounts: []Account{acct}}, nil)
			acct.Open = POP3Source{Addr: p.Addr(), TLS: netconn.TLSNone, User: "u", Password: pw("pw"), Timeout: 5 * time.Second}.Open
			res2, err2 := Run(context.Background(), Options{StateDir: state, Accounts: []Account{acct}}, nil)
			if err2 != nil {
				t.Fatalf("clean rerun: %v (cut run: %v, %s)", err2, err1, res1.Summary())
			}
			t.Logf("cut run: %s (%v); rerun: %s", res1.Summary(), err1, res2.Summary())
			checkExactlyOnce(t, idsOf(sink), want)
			if left := d.Count("u", "INBOX"); left != 0 {
				t.Errorf("%d messages left on the server after the clean rerun", left)
			}
		})
	}
}

// localMTAFailures are the ways a local MTA refuses the message whose
// number is in bad: 451 or 554 after DATA, or the connection closed during
// DATA. The POP3 and IMAP fault tests run each.
var localMTAFailures = []struct {
	name string
	opts func(bad *atomic.Int64) testpeer.SinkOptions
}{
	{"451", func(bad *atomic.Int64) testpeer.SinkOptions {
		return testpeer.SinkOptions{Reply: func(n int, stage string) *smtp.SMTPError {
			if stage == "DATA" && int64(n) == bad.Load() {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
			}
			return nil
		}}
	}},
	{"554", func(bad *atomic.Int64) testpeer.SinkOptions {
		return testpeer.SinkOptions{Reply: func(n int, stage string) *smtp.SMTPError {
			if stage == "DATA" && int64(n) == bad.Load() {
				return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "rejected"}
			}
			return nil
		}}
	}},
	{"close-during-data", func(bad *atomic.Int64) testpeer.SinkOptions {
		return testpeer.SinkOptions{CloseDuringData: func(n int) bool { return int64(n) == bad.Load() }}
	}},
}

// TestLocalMTARefuses: the local MTA answers 4xx or 5xx after DATA, or
// closes the connection during DATA, for the third message: over POP3 and
// over IMAP that message stays on the server, the others are delivered
// and deleted, and a later run delivers it exactly once.
func TestLocalMTARefuses(t *testing.T) {
	testpeer.Short(t)
	t.Parallel()
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{Users: map[string]string{"u": "pw"}})
	for _, proto := range []string{"pop3", "imap"} {
		for _, tc := range localMTAFailures {
			t.Run(proto+"/"+tc.name, func(t *testing.T) { localMTARefuses(t, d, proto, tc.opts) })
		}
	}
}

func localMTARefuses(t *testing.T, d *testpeer.Dovecot, proto string, opts func(*atomic.Int64) testpeer.SinkOptions) {
	var bad atomic.Int64
	bad.Store(3)
	sink := testpeer.StartSink(t, opts(&bad))
	tgt := deliver.NewSMTP(deliver.SMTPOptions{Addr: sink.Addr(), Sessions: 1, Timeout: 5 * time.Second})
	defer tgt.Close()
	want := fillDovecot(d, "u", t.Name(), 5)
	acct := protoAccount(proto, d.POP3Addr(), d.IMAPAddr(), "u", tgt)
	state := t.TempDir()
	res, err := Run(context.Background(), Options{StateDir: state, Workers: 1, Accounts: []Account{acct}}, nil)
	if err == nil {
		t.Fatal("the refusal was not reported")
	}
	if res.Accounts[0].Fetched != 4 || res.Accounts[0].Failed != 1 {
		t.Fatalf("%s", res.Summary())
	}
	if left := d.Count("u", "INBOX"); left != 1 {
		t.Fatalf("%d messages on the server, want the refused one", left)
	}
	bad.Store(-1)
	if _, err := Run(context.Background(), Options{StateDir: state, Workers: 1, Accounts: []Account{acct}}, nil); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, idsOf(sink), want)
	if left := d.Count("u", "INBOX"); left != 0 {
		t.Errorf("%d left", left)
	}
}

// TestDovecotToPostfix: real POP3 into a real Postfix over SMTP.
func TestDovecotToPostfix(t *testing.T) {
	testpeer.Short(t)
	t.Parallel()
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{Users: map[string]string{"u": "pw"}})
	pf := testpeer.StartPostfix(t, testpeer.PostfixOptions{})
	tgt := deliver.NewSMTP(deliver.SMTPOptions{Addr: pf.Addr(), Sessions: 4, Timeout: 10 * time.Second})
	defer tgt.Close()
	want := fillDovecot(d, "u", "pf", 10)
	res, err := Run(context.Background(), Options{StateDir: t.TempDir(), Received: true, Accounts: []Account{pop3Account("u", d.POP3Addr(), "u", tgt, 5*time.Second)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Fetched() != 10 {
		t.Fatal(res.Summary())
	}
	msgs := pf.WaitMessages(10, 30*time.Second)
	var got []string
	for _, path := range msgs {
		m, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if x := msgIDRe.FindSubmatch(m); x != nil {
			got = append(got, string(x[1]))
		}
	}
	checkExactlyOnce(t, got, want)
	if d.Count("u", "INBOX") != 0 {
		t.Error("mail left on Dovecot")
	}
}

// lostAndDuplicated fails the test for each message of want that got
// lacks, and returns how many extra copies got has.
func lostAndDuplicated(t *testing.T, want, got []string) (dups int) {
	t.Helper()
	count := map[string]int{}
	for _, id := range got {
		count[id]++
	}
	for _, id := range want {
		if count[id] == 0 {
			t.Errorf("LOST: %s", id)
		}
		dups += max(count[id]-1, 0)
	}
	return dups
}

// killAfter runs cmd, a fetching child that prints one line per message
// it delivered and "done" at its end, and SIGKILLs it once it has printed
// after lines and pause has passed, unless it finished first. It waits
// for the child and reports whether it finished.
func killAfter(t *testing.T, cmd *exec.Cmd, after int, pause time.Duration) (finished bool) {
	t.Helper()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	r := bufio.NewReader(out)
	for range after {
		line, err := r.ReadString('\n')
		if err != nil || strings.HasPrefix(line, "done") {
			return true
		}
	}
	time.Sleep(pause)
	cmd.Process.Signal(syscall.SIGKILL)
	return false
}

// TestKill9 kills a fetching process (this test binary re-executed as a
// fetcher) with SIGKILL at random moments, over and over, then finishes
// with a clean run: nothing may be lost; a message may be duplicated only
// when the kill fell between the MTA's 250 and the fsync of its record,
// so at most one per delivery worker per kill. Over POP3 and over IMAP.
func TestKill9(t *testing.T) {
	if os.Getenv("LINKCTL_FETCH_CHILD") != "" {
		fetchChild()
		return
	}
	testpeer.Short(t)
	t.Parallel()
	for _, tc := range []struct {
		proto   string
		workers int
	}{{"pop3", 1}, {"pop3", 4}, {"imap", 1}, {"imap", 4}} {
		workers := tc.workers
		t.Run(fmt.Sprintf("%s/workers=%d", tc.proto, workers), func(t *testing.T) {
			d := testpeer.StartDovecot(t, testpeer.DovecotOptions{Users: map[string]string{"u": "pw"}})
			sink := testpeer.StartSink(t, testpeer.SinkOptions{
				// a local MTA that takes a moment per message, so kills
				// land in every phase
				Delay: func(int, string) time.Duration { return time.Millisecond },
			})
			want := fillDovecot(d, "u", "k", 40)
			state := t.TempDir()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
			kills := 0
			for round := range 12 {
				cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
				cmd.Env = append(os.Environ(), "LINKCTL_FETCH_CHILD=1", "FC_STATE="+state, "FC_POP3="+d.POP3Addr(),
					"FC_IMAP="+d.IMAPAddr(), "FC_PROTO="+tc.proto, "FC_SINK="+sink.Addr(), "FC_WORKERS="+strconv.Itoa(workers))
				// Kill after a random number of delivered messages, or
				// before the first.
				after := rng.IntN(8)
				finished := killAfter(t, cmd, after, time.Duration(rng.IntN(3000))*time.Microsecond)
				if !finished {
					kills++
				}
				t.Logf("round %d: killed after %d messages (finished %v), sink has %d", round, after, finished, len(sink.Messages()))
			}
			// A clean run finishes the job.
			tgt := deliver.NewSMTP(deliver.SMTPOptions{Addr: sink.Addr(), Sessions: workers})
			defer tgt.Close()
			if _, err := Run(context.Background(), Options{StateDir: state, Workers: workers,
				Accounts: []Account{kill9Account(tc.proto, d.POP3Addr(), d.IMAPAddr(), tgt)}}, nil); err != nil {
				t.Fatal(err)
			}
			dups := lostAndDuplicated(t, want, idsOf(sink))
			t.Logf("%d kills, %d duplicates, %d messages", kills, dups, len(want))
			if dups > kills*workers {
				t.Errorf("%d duplicates after %d kills with %d workers", dups, kills, workers)
			}
			if d.Count("u", "INBOX") != 0 {
				t.Error("mail left on the server")
			}
		})
	}
}

// kill9Account is TestKill9's account, committing every 7 messages so
// that kills land between commits too.
func kill9Account(proto, pop3Addr, imapAddr string, tgt deliver.Target) Account {
	a := protoAccount(proto, pop3Addr, imapAddr, "u", tgt)
	a.CommitEvery = 7
	return a
}

// fetchChild is the fetcher process of TestKill9.
func fetchChild() {
	workers, _ := strconv.Atoi(os.Getenv("FC_WORKERS"))
	tgt := deliver.NewSMTP(deliver.SMTPOptions{Addr: os.Getenv("FC_SINK"), Sessions: workers})
	_, err := Run(context.Background(), Options{StateDir: os.Getenv("FC_STATE"), Workers: workers,
		Accounts: []Account{kill9Account(os.Getenv("FC_PROTO"), os.Getenv("FC_POP3"), os.Getenv("FC_IMAP"), tgt)}},
		func(ev event.Event) {
			if ev.Type == event.Message {
				fmt.Println("msg")
			}
		})
	fmt.Println("done", err)
	os.Exit(0)
}

// TestDovecotIMAPKeepThenDelete drives the engine over IMAP: keep leaves
// the mail and a second run downloads nothing; dropping keep deletes the
// kept mail without downloading it again.
func TestDovecotIMAPKeepThenDelete(t *testing.T) {
	testpeer.Short(t)
	t.Parallel()
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{Users: map[string]string{"u": "pw"}})
	sink := testpeer.StartSink(t, testpeer.SinkOptions{})
	tgt := deliver.NewSMTP(deliver.SMTPOptions{Addr: sink.Addr(), Sessions: 2})
	defer tgt.Close()
	want := fillDovecot(d, "u", "imap", 6)
	src := IMAPSource{Addr: d.IMAPAddr(), TLS: netconn.TLSNone, User: "u", Password: pw("pw"), Timeout: 5 * time.Second, Keep: true}
	acct := Account{Name: "u", Proto: "imap", Server: d.IMAPAddr(), Open: src.Open, Target: tgt, To: []string{"x@sink.test"}, Keep: true}
	state := t.TempDir()
	run := func() AccountResult {
		t.Helper()
		res, err := Run(context.Background(), Options{StateDir: state, Accounts: []Account{acct}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.Accounts[0]
	}
	if a := run(); a.Fetched != 6 || d.Count("u", "INBOX") != 6 {
		t.Fatalf("keep run: %+v", a)
	}
	if a := run(); a.Fetched != 0 || a.Kept != 6 {
		t.Fatalf("second keep run: %+v", a)
	}
	src.Keep, acct.Keep = false, false
	acct.Open = src.Open
	if a := run(); a.Fetched != 0 || a.Deleted != 6 {
		t.Fatalf("run without keep: %+v", a)
	}
	checkExactlyOnce(t, idsOf(sink), want)
	if n := d.Count("u", "INBOX"); n != 0 {
		t.Errorf("%d left", n)
	}
}
