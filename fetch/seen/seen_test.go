package seen

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
)

func openT(t *testing.T, dir, key string) (*Store, *Log) {
	t.Helper()
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.Mailbox(key)
	if err != nil {
		t.Fatal(err)
	}
	return st, l
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st, l := openT(t, dir, "pop3:u@h:110")
	t0 := time.Unix(1700000000, 0)
	l.Delivered("a", t0)
	l.Delivered("b c", t0.Add(time.Hour))  // a UID no server should send
	l.Delivered("a", t0.Add(48*time.Hour)) // keeps its first time
	if n := l.Failed("x"); n != 1 {
		t.Fatalf("Failed = %d", n)
	}
	if n := l.Failed("x"); n != 2 {
		t.Fatalf("Failed = %d", n)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, l2 := openT(t, dir, "pop3:u@h:110")
	defer st2.Close()
	if e := l2.Get("a"); !e.Delivered || !e.FirstFetched.Equal(t0) {
		t.Errorf("a = %+v, want delivered at %v", e, t0)
	}
	if !l2.Seen("b c") {
		t.Error("UID with a space lost")
	}
	if l2.Seen("x") || l2.Failures("x") != 2 {
		t.Errorf("x = %+v, want 2 failures, not delivered", l2.Get("x"))
	}
	if l2.Seen("never") {
		t.Error("unknown UID seen")
	}
	// Another key is another file.
	other, err := st2.Mailbox("pop3:u@other:110")
	if err != nil {
		t.Fatal(err)
	}
	if other.Seen("a") {
		t.Error("keys share records")
	}
}

// TestDeliveredIsWrittenAtOnce: a delivered record is in the file the
// moment it is made, before any Commit, so a process killed right after
// the local side accepted a message (kill -9: the kernel keeps what was
// written) does not deliver it again; other changes wait for Commit.
func TestDeliveredIsWrittenAtOnce(t *testing.T) {
	dir := t.TempDir()
	st, l := openT(t, dir, "k")
	l.Delivered("1", time.Now())
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	l.DeliveredDigest("2", time.Now(), 0xabc, 42) // no Commit
	l.Failed("3")                                 // buffered
	// What a killed process leaves: the file as it is now, read by the
	// next process.
	b, err := os.ReadFile(filepath.Join(st.Dir(), FileName("k")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "D 1 ") || !strings.Contains(string(b), "D 2 ") || strings.Contains(string(b), "F 3 ") {
		t.Errorf("file before the second commit:\n%s", b)
	}
	next := t.TempDir()
	if err := os.MkdirAll(filepath.Join(next, "seen"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(next, "seen", FileName("k")), b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, l2 := openT(t, next, "k")
	if e := l2.Get("2"); !e.Delivered || e.Digest != 0xabc || e.Size != 42 {
		t.Errorf("after the kill: %+v", e)
	}
	st.Close()
}

// TestTornTail cuts a committed file at every byte offset, as a crash in
// the middle of a write would, and checks that every record before the cut
// survives, nothing after it appears, and that appending afterwards works.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	st, l := openT(t, dir, "k")
	for i := range 5 {
		l.Delivered(strconv.Itoa(i), time.Unix(int64(1000+i), 0))
	}
	l.Commit()
	st.Close()
	path := filepath.Join(dir, "seen", FileName("k"))
	full, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(full), "\n")
	for cut := 0; cut <= len(full); cut++ {
		d2 := t.TempDir()
		os.MkdirAll(filepath.Join(d2, "seen"), 0o700)
		p2 := filepath.Join(d2, "seen", FileName("k"))
		os.WriteFile(p2, full[:cut], 0o600)
		whole := 0 // whole D records before the cut; lines[0] is the K record
		for n := 1; n < len(lines); n++ {
			if len(strings.Join(lines[:n+1], "")) <= cut && strings.HasSuffix(lines[n], "\n") {
				whole = n
			}
		}
		st2, l2 := openT(t, d2, "k")
		for i := range 5 {
			if got, want := l2.Seen(strconv.Itoa(i)), i < whole; got != want {
				t.Fatalf("cut at %d: UID %d seen=%v, want %v", cut, i, got, want)
			}
		}
		l2.Delivered("new", time.Unix(5000, 0))
		if err := l2.Commit(); err != nil {
			t.Fatal(err)
		}
		st2.Close()
		st3, l3 := openT(t, d2, "k")
		if !l3.Seen("new") {
			t.Fatalf("cut at %d: a record appended after the torn tail was lost", cut)
		}
		st3.Close()
	}
}

func TestDamagedRecordsSkipped(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "seen"), 0o700)
	good1 := string(record('D', "1", 10))
	good2 := string(record('D', "2", 20))
	bad := strings.Replace(string(record('D', "3", 30)), "D 3", "D 4", 1) // checksum mismatch
	long := strings.Repeat("z", 100000) + "\n"
	zeros := string(make([]byte, 4096)) + "\n"
	os.WriteFile(filepath.Join(dir, "seen", FileName("k")), []byte(good1+bad+long+zeros+"garbage\n"+good2), 0o600)
	st, l := openT(t, dir, "k")
	defer st.Close()
	if !l.Seen("1") || !l.Seen("2") {
		t.Error("intact records around damaged ones were lost")
	}
	if l.Seen("3") || l.Seen("4") {
		t.Error("a record with a bad checksum was believed")
	}
}

func TestRetainAndCompaction(t *testing.T) {
	dir := t.TempDir()
	st, l := openT(t, dir, "k")
	// 5000 messages, one commit each (as the engine does): the file grows
	// by one line per message, never rewritten per message.
	var listed []string
	for i := range 5000 {
		uid := fmt.Sprintf("uid%05d", i)
		listed = append(listed, uid)
		l.Delivered(uid, time.Unix(int64(i), 0))
		if i%100 == 0 {
			if err := l.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	l.Commit()
	path := filepath.Join(st.Dir(), FileName("k"))
	fi, _ := os.Stat(path)
	perLine := fi.Size() / 5000
	// The server deleted all but the last 10.
	l.Retain(listed[4990:])
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	if l.Len() != 10 {
		t.Fatalf("Len after Retain = %d", l.Len())
	}
	fi, _ = os.Stat(path)
	if fi.Size() > 20*perLine {
		t.Errorf("file not compacted: %d bytes for 10 live UIDs", fi.Size())
	}
	l.Delivered("after", time.Unix(9, 0))
	l.Commit()
	st.Close()
	st2, l2 := openT(t, dir, "k")
	defer st2.Close()
	if l2.Len() != 11 || !l2.Seen("uid04999") || l2.Seen("uid00000") || !l2.Seen("after") {
		t.Errorf("after compaction and reload: %d UIDs", l2.Len())
	}
}

func TestConcurrentCommit(t *testing.T) {
	dir := t.TempDir()
	st, l := openT(t, dir, "k")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				l.Delivered(fmt.Sprintf("%d-%d", g, i), time.Now())
				if err := l.Commit(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	st.Close()
	st2, l2 := openT(t, dir, "k")
	defer st2.Close()
	if l2.Len() != 400 {
		t.Errorf("%d UIDs after concurrent commits, want 400", l2.Len())
	}
}

func TestLockedByAnotherProcess(t *testing.T) {
	if os.Getenv("SEEN_HOLD") != "" {
		st, _ := Open(os.Getenv("SEEN_HOLD"))
		st.Mailbox("k")
		fmt.Println("locked")
		time.Sleep(time.Minute)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockedByAnotherProcess$")
	cmd.Env = append(os.Environ(), "SEEN_HOLD="+dir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("holder said %q", line)
	}
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Mailbox("k")
	if errkind.KindOf(err) != errkind.Locked {
		t.Fatalf("second opener got %v, want a Locked error", err)
	}
	// The kernel drops the lock with the process.
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := st.Mailbox("k"); err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	st.Close()
}

// TestKill9 commits records in a child process and kills it with SIGKILL
// at varying moments: every UID the child reported as committed must be
// there after a restart.
func TestKill9(t *testing.T) {
	if dir := os.Getenv("SEEN_WRITER"); dir != "" {
		st, _ := Open(dir)
		l, _ := st.Mailbox("k")
		for i := 0; ; i++ {
			l.Delivered(strconv.Itoa(i), time.Now())
			if i%7 == 0 {
				l.Failed("f" + strconv.Itoa(i))
			}
			if err := l.Commit(); err != nil {
				os.Exit(3)
			}
			fmt.Println(i)
		}
	}
	dir := t.TempDir()
	for round := range 8 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
		cmd.Env = append(os.Environ(), "SEEN_WRITER="+dir)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(out)
		last := -1
		for n := 0; n < 20+round*37; n++ {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("writer died: %v", err)
			}
			last, _ = strconv.Atoi(strings.TrimSpace(line))
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		st, l := openT(t, dir, "k")
		for i := 0; i <= last; i++ {
			if !l.Seen(strconv.Itoa(i)) {
				t.Fatalf("round %d: UID %d was committed but is lost", round, i)
			}
		}
		st.Close() // the next round's child starts over from 0 on the same file
	}
}

// FuzzLoad feeds arbitrary file contents to the loader: it must not panic,
// and a record appended afterwards must survive a reload.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(string(record('D', "1", 10)) + "D 2 20 0000"))
	f.Add([]byte("X % 0 00000000\nF a%20b 3 1234abcd\n"))
	f.Add([]byte{0, 0, '\n', 'D'})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "seen"), 0o700)
		os.WriteFile(filepath.Join(dir, "seen", FileName("k")), data, 0o600)
		st, l := openT(t, dir, "k")
		l.Delivered("fuzz-new", time.Unix(1, 0))
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st2, l2 := openT(t, dir, "k")
		defer st2.Close()
		if !l2.Seen("fuzz-new") {
			t.Fatal("record appended after arbitrary contents was lost")
		}
	})
}

func FuzzEscape(f *testing.F) {
	f.Add("abc")
	f.Add("a b%c\x00")
	f.Fuzz(func(t *testing.T, uid string) {
		got, ok := unescape(escape(uid))
		if !ok || got != uid {
			t.Fatalf("escape round trip %q -> %q -> %q", uid, escape(uid), got)
		}
		if strings.ContainsAny(escape(uid), " \n") {
			t.Fatalf("escaped UID %q has a separator", escape(uid))
		}
	})
}

func TestKeysAndRemove(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"imap:u@h:143/INBOX;UIDVALIDITY=1", "imap:u@h:143/INBOX;UIDVALIDITY=2", "imap:u@h:143/Sent;UIDVALIDITY=1", "pop3:u@h:110"} {
		l, err := st.Mailbox(k)
		if err != nil {
			t.Fatal(err)
		}
		l.Delivered("1", time.Unix(1, 0))
	}
	st.Close()
	st, _ = Open(dir)
	defer st.Close()
	keys, err := st.Keys("imap:u@h:143/INBOX;UIDVALIDITY=")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	if strings.Join(keys, " ") != "imap:u@h:143/INBOX;UIDVALIDITY=1 imap:u@h:143/INBOX;UIDVALIDITY=2" {
		t.Fatalf("Keys = %q", keys)
	}
	if err := st.Remove("imap:u@h:143/INBOX;UIDVALIDITY=1"); err != nil {
		t.Fatal(err)
	}
	keys, _ = st.Keys("imap:")
	if len(keys) != 2 {
		t.Fatalf("after Remove: %q", keys)
	}
	l, _ := st.Mailbox("imap:u@h:143/INBOX;UIDVALIDITY=1")
	if l.Seen("1") {
		t.Error("a removed record came back")
	}
}

// TestOrphanDigests: the digest of a UID the server no longer lists, or
// whose UIDL it reused, stays known (durably) as an orphan; at most the
// limit of them are kept, oldest dropped first; AddOrphans carries a
// record's digests into another (an IMAP UIDVALIDITY change).
func TestOrphanDigests(t *testing.T) {
	dir := t.TempDir()
	st, l := openT(t, dir, "k")
	now := time.Unix(1000, 0)
	l.DeliveredDigest("a", now, 1, 10)
	l.DeliveredDigest("b", now, 2, 20)
	l.DeliveredDigest("c", now, 3, 30)
	if !l.KnownDigest(1, true) || l.KnownDigest(1, false) {
		t.Error("a live digest: known only with live")
	}
	l.Retain([]string{"b", "c"}) // a is gone: its digest becomes an orphan
	l.Reused("b")                // b now names another message
	if l.Seen("b") || !l.Seen("c") {
		t.Error("Reused did not forget b, or forgot c")
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st2, l2 := openT(t, dir, "k")
	defer st2.Close()
	for d, want := range map[uint64]bool{1: true, 2: true, 3: false, 4: false} {
		if got := l2.KnownDigest(d, false); got != want {
			t.Errorf("orphan %d after reopening: %v, want %v", d, got, want)
		}
	}
	if e := l2.Get("c"); e.Digest != 3 || e.Size != 30 || !l2.KnownDigest(3, true) {
		t.Errorf("c after reopening: %+v", e)
	}
	other, err := st2.Mailbox("k2")
	if err != nil {
		t.Fatal(err)
	}
	other.AddOrphans(l2.Digests())
	for _, d := range []uint64{1, 2, 3} {
		if !other.KnownDigest(d, false) {
			t.Errorf("digest %d not carried over", d)
		}
	}

	// The limit: the oldest orphans go first, in memory and on reload.
	st3, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st3.SetOrphanLimit(100)
	l3, err := st3.Mailbox("k3")
	if err != nil {
		t.Fatal(err)
	}
	var ds []uint64
	for i := range 1000 {
		ds = append(ds, uint64(i+1))
	}
	l3.AddOrphans(ds)
	if err := l3.Commit(); err != nil {
		t.Fatal(err)
	}
	if l3.KnownDigest(900, false) || !l3.KnownDigest(901, false) || !l3.KnownDigest(1000, false) {
		t.Error("not the newest 100 orphans")
	}
	st3.Close()
	st4, _ := Open(filepath.Dir(st3.Dir()))
	st4.SetOrphanLimit(100)
	l4, err := st4.Mailbox("k3")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(l4.Digests()); n != 100 || !l4.KnownDigest(901, false) {
		t.Errorf("after reload: %d orphans", n)
	}
	fi, _ := os.Stat(filepath.Join(st4.Dir(), FileName("k3")))
	st4.Close()
	if fi.Size() > 100*40 {
		t.Errorf("file of 100 orphans is %d bytes: not compacted", fi.Size())
	}
}

// Peek reads a record while a run holds its lock, creates nothing, and
// ignores a torn last line, leaving it for the run's own load to cut.
func TestPeek(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if l, err := st.Peek("pop3:u@h:110"); err != nil || l.Len() != 0 {
		t.Fatalf("peek of no record: %v, %v", l, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "seen")); len(ents) != 0 {
		t.Fatalf("peek created %v", ents)
	}
	l, err := st.Mailbox("pop3:u@h:110") // locked from here on
	if err != nil {
		t.Fatal(err)
	}
	l.Delivered("a", time.Unix(100, 0))
	l.Delivered("b", time.Unix(200, 0))
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "seen", FileName("pop3:u@h:110"))
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("D c 300 12"))
	f.Close()
	before, _ := os.ReadFile(path)
	p, err := Peek(filepath.Join(dir, "seen"), "pop3:u@h:110")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Seen("a") || !p.Seen("b") || p.Seen("c") {
		t.Errorf("peek: a %v b %v c %v", p.Seen("a"), p.Seen("b"), p.Seen("c"))
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("peek changed the file")
	}
}

// TestUndo: a delivery recorded at its commit point and then reported
// failed by the target is voided: the UID is no longer delivered and its
// digest is neither live nor an orphan, so the next run (this process or
// one started after a kill) delivers the message again instead of deleting
// it as already delivered.
func TestUndo(t *testing.T) {
	dir := t.TempDir()
	st, l := openT(t, dir, "k")
	l.DeliveredDigest("1", time.Now(), 0xabc, 42)
	l.DeliveredDigest("2", time.Now(), 0xdef, 43)
	l.Undo("1") // no Commit: written at once, like DeliveredDigest
	check := func(when string, l *Log) {
		t.Helper()
		if l.Seen("1") || l.KnownDigest(0xabc, true) || l.KnownDigest(0xabc, false) {
			t.Errorf("%s: the voided delivery still counts: seen %v, digest known %v", when, l.Seen("1"), l.KnownDigest(0xabc, true))
		}
		if !l.Seen("2") || !l.KnownDigest(0xdef, true) {
			t.Errorf("%s: the other delivery was lost", when)
		}
	}
	check("in memory", l)
	b, err := os.ReadFile(filepath.Join(st.Dir(), FileName("k")))
	if err != nil {
		t.Fatal(err)
	}
	next := t.TempDir()
	if err := os.MkdirAll(filepath.Join(next, "seen"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(next, "seen", FileName("k")), b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, l2 := openT(t, next, "k")
	check("after a kill", l2)
	st.Close()
}
