package deliver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
)

// The test binary doubles as the MDA: with DELIVER_TEST_MDA set it reads
// stdin, records its argv and input in DELIVER_TEST_DIR, and behaves as
// the mode says. No shell is involved, as with a real MDA config.
func TestMain(m *testing.M) {
	if mode := os.Getenv("DELIVER_TEST_MDA"); mode != "" {
		os.Exit(fakeMDA(mode))
	}
	os.Exit(m.Run())
}

type mdaRecord struct {
	Args  []string
	Stdin []byte
}

func fakeMDA(mode string) int {
	switch mode {
	case "sleep", "hang-unread":
		// Never reads stdin.
		time.Sleep(time.Minute)
		return 0
	case "hang-escape":
		// Leaves something behind, outside its process group, that
		// keeps stdin open and never reads it; then hangs itself.
		exe, _ := os.Executable()
		c := exec.Command(exe)
		c.Env = append(os.Environ(), "DELIVER_TEST_MDA=sleep")
		c.Stdin = os.Stdin
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := c.Start(); err != nil {
			return 70
		}
		os.WriteFile(filepath.Join(os.Getenv("DELIVER_TEST_DIR"), "escaped.pid"), []byte(fmt.Sprint(c.Process.Pid)), 0o600)
		time.Sleep(time.Minute)
		return 0
	}
	in, _ := io.ReadAll(os.Stdin)
	args := os.Args[1:]
	if mode == "fail-for" && len(args) > 0 && args[len(args)-1] == os.Getenv("DELIVER_TEST_FAIL") {
		fmt.Fprint(os.Stderr, "mailbox locked")
		return 75
	}
	rec, _ := json.Marshal(mdaRecord{Args: args, Stdin: in})
	f, err := os.CreateTemp(os.Getenv("DELIVER_TEST_DIR"), "run-*")
	if err != nil {
		return 70
	}
	f.Write(rec)
	f.Close()
	switch mode {
	case "exit75":
		fmt.Fprint(os.Stderr, "temporary trouble")
		return 75
	case "exit1":
		fmt.Fprint(os.Stderr, strings.Repeat("E", 2000))
		return 1
	case "hang":
		time.Sleep(time.Minute)
	}
	return 0
}

func fakeMDAOpts(t *testing.T, mode string, args ...string) (MDAOptions, string) {
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return MDAOptions{
		Argv: append([]string{exe}, args...),
		Env:  append(os.Environ(), "DELIVER_TEST_MDA="+mode, "DELIVER_TEST_DIR="+dir, "DELIVER_TEST_FAIL=b@x"),
	}, dir
}

func mdaRuns(t *testing.T, dir string) []mdaRecord {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "run-*"))
	var recs []mdaRecord
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var r mdaRecord
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return strings.Join(recs[i].Args, " ") < strings.Join(recs[j].Args, " ") })
	return recs
}

func TestMDASubstitution(t *testing.T) {
	opts, dir := fakeMDAOpts(t, "ok", "-f", "%F", "--to", "%T", "x%Tx", "%F%T")
	tg := NewMDA(opts)
	msg := "Subject: s\n\n.dot\nno final newline \xff"
	err := tg.Deliver(context.Background(), Envelope{From: "s@x", To: []string{"a@x", "b@x", "a@x"}}, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	runs := mdaRuns(t, dir)
	want := [][]string{
		{"-f", "s@x", "--to", "a@x", "x%Tx", "%F%T"},
		{"-f", "s@x", "--to", "b@x", "x%Tx", "%F%T"},
	}
	if len(runs) != 2 {
		t.Fatalf("%d runs, want one per distinct recipient: %+v", len(runs), runs)
	}
	for i, r := range runs {
		if strings.Join(r.Args, "|") != strings.Join(want[i], "|") {
			t.Errorf("run %d argv %q, want %q", i, r.Args, want[i])
		}
		if string(r.Stdin) != msg {
			t.Errorf("run %d stdin %q, want the message unchanged %q", i, r.Stdin, msg)
		}
	}
}

func TestMDAOnceWithoutRecipient(t *testing.T) {
	opts, dir := fakeMDAOpts(t, "ok", "-f", "%F")
	tg := NewMDA(opts)
	if err := tg.Deliver(context.Background(), Envelope{To: []string{"a@x", "b@x"}}, strings.NewReader("m\n")); err != nil {
		t.Fatal(err)
	}
	runs := mdaRuns(t, dir)
	if len(runs) != 1 || strings.Join(runs[0].Args, " ") != "-f <>" {
		t.Errorf("runs %+v, want one with -f <> (null sender)", runs)
	}
}

func TestMDAExitStatus(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		temp   bool
		quotes string
	}{
		{"exit75", true, "temporary trouble"},
		{"exit1", false, "exit status 1"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			opts, _ := fakeMDAOpts(t, tc.mode)
			err := NewMDA(opts).Deliver(context.Background(), Envelope{To: []string{"a@x"}}, strings.NewReader("m\n"))
			if err == nil || errkind.IsTemporary(err) != tc.temp || errkind.KindOf(err) != errkind.Delivery {
				t.Fatalf("err %v: temporary %v, want %v", err, errkind.IsTemporary(err), tc.temp)
			}
			if !strings.Contains(err.Error(), tc.quotes) {
				t.Errorf("err %q does not contain %q", err, tc.quotes)
			}
			if len(err.Error()) > 800 {
				t.Errorf("error of %d bytes: stderr must be cut at 500", len(err.Error()))
			}
		})
	}
}

func TestMDAPartial(t *testing.T) {
	opts, dir := fakeMDAOpts(t, "fail-for", "%T")
	err := NewMDA(opts).Deliver(context.Background(), Envelope{To: []string{"a@x", "b@x", "c@x"}}, strings.NewReader("m\n"))
	var pe *PartialError
	if !errors.As(err, &pe) || !errkind.IsTemporary(err) {
		t.Fatalf("err %v, want a temporary *PartialError", err)
	}
	if strings.Join(pe.Accepted, ",") != "a@x" || pe.Failed["b@x"] == nil || pe.Failed["c@x"] == nil {
		t.Errorf("accepted %v failed %v", pe.Accepted, pe.Failed)
	}
	if !strings.Contains(err.Error(), "mailbox locked") {
		t.Errorf("err %q does not quote stderr", err)
	}
	if n := len(mdaRuns(t, dir)); n != 1 {
		t.Errorf("%d completed runs, want 1 (stop at the first failure)", n)
	}
}

func TestMDATimeoutKills(t *testing.T) {
	opts, _ := fakeMDAOpts(t, "hang")
	opts.Timeout = 300 * time.Millisecond
	err := NewMDA(opts).Deliver(context.Background(), Envelope{To: []string{"a@x"}}, strings.NewReader("m\n"))
	if err == nil || !errkind.IsTemporary(err) || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("err %v, want a temporary timeout", err)
	}
}

func TestMDAMissingBinary(t *testing.T) {
	for _, argv0 := range []string{"/nonexistent/procmail", "no-such-mda-anywhere"} {
		err := NewMDA(MDAOptions{Argv: []string{argv0}}).Deliver(context.Background(), Envelope{To: []string{"a@x"}}, strings.NewReader("m\n"))
		if err == nil || errkind.IsTemporary(err) || !strings.Contains(err.Error(), "full path") {
			t.Errorf("%s: err %v, want a permanent error with a hint", argv0, err)
		}
	}
}

// The source breaks mid-message: the MDA must be killed, not handed EOF,
// which it would take for the end of a complete message.
func TestMDASourceBreaks(t *testing.T) {
	opts, dir := fakeMDAOpts(t, "ok")
	src := &failingReader{data: "Subject: half\n\n", err: errkind.WrapTemporary(errkind.Network, "pop3", io.ErrUnexpectedEOF)}
	err := NewMDA(opts).Deliver(context.Background(), Envelope{To: []string{"a@x"}}, src)
	var se *SourceError
	if !errors.As(err, &se) || errkind.KindOf(err) != errkind.Network {
		t.Fatalf("err %v, want a *SourceError of kind network", err)
	}
	if runs := mdaRuns(t, dir); len(runs) != 0 {
		t.Fatalf("the MDA completed with the truncated message %q", runs[0].Stdin)
	}
}

// Real commands, exit codes only (the config feature never uses a shell).
func TestMDARealCommands(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		ok   bool
		temp bool
	}{
		{[]string{"cat"}, true, false},
		{[]string{"false"}, false, false},
		{[]string{"sh", "-c", "cat >/dev/null; exit 75"}, false, true},
	} {
		err := NewMDA(MDAOptions{Argv: tc.argv}).Deliver(context.Background(), Envelope{To: []string{"a@x"}}, strings.NewReader(strings.Repeat("line\n", 20000)))
		if (err == nil) != tc.ok || err != nil && errkind.IsTemporary(err) != tc.temp {
			t.Errorf("%q: err %v, want ok=%v temporary=%v", tc.argv, err, tc.ok, tc.temp)
		}
	}
}

func TestMaildirDeliver(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	tg := NewMaildir(MaildirOptions{Path: dir})
	msgs := []string{"Subject: 1\n\nfirst\n", "Subject: 2\n\n\xffsecond"}
	for _, m := range msgs {
		if err := tg.Deliver(context.Background(), Envelope{To: []string{"a@x"}}, strings.NewReader(m)); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		fi, err := os.Stat(filepath.Join(dir, sub))
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s/: %v mode %v, want 0700", sub, err, fi.Mode().Perm())
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ not empty: %v", ents)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "new"))
	if len(ents) != 2 {
		t.Fatalf("new/ has %d files, want 2", len(ents))
	}
	got := map[string]bool{}
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, "new", e.Name()))
		if !strings.HasSuffix(e.Name(), fmt.Sprintf(",S=%d", len(b))) || strings.Contains(e.Name(), ":") || strings.Contains(e.Name(), "/") {
			t.Errorf("name %q: want time.pid_seq.host,S=%d", e.Name(), len(b))
		}
		got[string(b)] = true
	}
	for _, m := range msgs {
		if !got[m] {
			t.Errorf("message %q not found byte for byte", m)
		}
	}
}

func TestMaildirSourceBreaksLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	tg := NewMaildir(MaildirOptions{Path: dir})
	err := tg.Deliver(context.Background(), Envelope{}, &failingReader{data: "half", err: io.ErrUnexpectedEOF})
	if err == nil || !errkind.IsTemporary(err) {
		t.Fatalf("err %v, want temporary", err)
	}
	for _, sub := range []string{"new", "tmp"} {
		if ents, _ := os.ReadDir(filepath.Join(dir, sub)); len(ents) != 0 {
			t.Errorf("%s/ holds %v after a failed delivery", sub, ents)
		}
	}
}

func TestMaildirUnwritable(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	err := NewMaildir(MaildirOptions{Path: filepath.Join(f, "Maildir")}).Deliver(context.Background(), Envelope{}, strings.NewReader("x"))
	if err == nil || errkind.IsTemporary(err) || errkind.KindOf(err) != errkind.Delivery {
		t.Fatalf("err %v, want a permanent delivery error", err)
	}
}

// As root, delivering into a user's Maildir leaves files the user owns.
func TestMaildirOwnerAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to own files as another user")
	}
	dir := filepath.Join(t.TempDir(), "Maildir")
	os.Mkdir(dir, 0o700)
	const uid, gid = 4242, 4243
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Skipf("cannot chown here: %v", err)
	}
	os.Chown(filepath.Dir(dir), uid, gid)
	if err := NewMaildir(MaildirOptions{Path: dir}).Deliver(context.Background(), Envelope{}, strings.NewReader("x\n")); err != nil {
		t.Fatal(err)
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "new", "*"))
	for _, p := range append(paths, filepath.Join(dir, "new"), filepath.Join(dir, "tmp"), filepath.Join(dir, "cur")) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != uid || st.Gid != gid {
			t.Errorf("%s owned by %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
	}
	if len(paths) != 1 {
		t.Fatalf("%d files in new/, want 1", len(paths))
	}
}

func TestMaildirConcurrent(t *testing.T) {
	dir := t.TempDir()
	tg := NewMaildir(MaildirOptions{Path: dir})
	const workers, each = 8, 20
	errs := make(chan error, workers*each)
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				errs <- tg.Deliver(context.Background(), Envelope{}, strings.NewReader(fmt.Sprintf("m %d %d\n", w, i)))
			}
		}()
	}
	for range workers {
		<-done
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	msgs := readMaildir(t, dir)
	seen := map[string]bool{}
	for _, m := range msgs {
		seen[m] = true
	}
	if len(msgs) != workers*each || len(seen) != workers*each {
		t.Errorf("%d files, %d distinct, want %d", len(msgs), len(seen), workers*each)
	}
}

// TestMaildirCommittedAfterRename: the Maildir says its commit point is
// passed (WithCommitted) once the message is in new/, after the commit
// gate and before Deliver returns, once per message; the fetch engine
// records the message then, so the fsync of new/ runs outside its gate.
func TestMaildirCommittedAfterRename(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	tg := NewMaildir(MaildirOptions{Path: dir})
	var order []string
	gate := func(context.Context) error { order = append(order, "gate"); return nil }
	done := func() {
		n := map[string]int{}
		for _, sub := range []string{"tmp", "new"} {
			ents, _ := os.ReadDir(filepath.Join(dir, sub))
			n[sub] = len(ents)
		}
		order = append(order, fmt.Sprintf("committed tmp=%d new=%d", n["tmp"], n["new"]))
	}
	ctx := WithCommitted(WithCommitGate(context.Background(), gate), done)
	if err := tg.Deliver(ctx, Envelope{}, strings.NewReader("Subject: x\n\nbody\n")); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(order, ", "), "gate, committed tmp=0 new=1"; got != want {
		t.Errorf("calls: %s, want %s", got, want)
	}
}
