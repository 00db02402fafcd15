package deliver

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
)

// Every local delivery has an end (issue 15): a hung MDA is killed at its
// timeout or at a cancel and the delivery fails temporarily, also when
// the MDA stopped reading its stdin, and also when something it started
// left its process group and holds stdin open (which the kill of the
// group cannot end: before the write deadline on stdin, Deliver blocked
// for good in that case).
func TestMDAHungEnds(t *testing.T) {
	big := strings.Repeat("a line of the message\n", 50000) // 1.1 MB: more than a pipe holds
	for _, tc := range []struct {
		mode   string
		cancel bool // a cancel with a cause instead of the timeout
		want   string
	}{
		{"hang", false, "timed out after 300ms, killed"}, // reads everything, then hangs
		{"hang-unread", false, "timed out after 300ms, killed"},
		{"hang-escape", false, "timed out after 300ms, killed"},
		{"hang-escape", true, "cancelled (linkctl quit), killed"},
	} {
		t.Run(tc.mode+map[bool]string{true: "/cancel"}[tc.cancel], func(t *testing.T) {
			opts, dir := fakeMDAOpts(t, tc.mode)
			opts.Timeout = 300 * time.Millisecond
			if tc.cancel {
				opts.Timeout = time.Minute
			}
			t.Cleanup(func() {
				// What escaped the process group is the test's to end.
				if b, err := os.ReadFile(filepath.Join(dir, "escaped.pid")); err == nil {
					if pid, err := strconv.Atoi(string(b)); err == nil {
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			})
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			if tc.cancel {
				time.AfterFunc(300*time.Millisecond, func() { cancel(errors.New("linkctl quit")) })
			}
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- NewMDA(opts).Deliver(ctx, Envelope{To: []string{"a@x"}}, strings.NewReader(big)) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("Deliver still running 10 s after a 300 ms timeout")
			}
			took := time.Since(start)
			t.Logf("after %v: %v", took.Round(time.Millisecond), err)
			if err == nil || !errkind.IsTemporary(err) || errkind.KindOf(err) != errkind.Delivery || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want a temporary delivery error saying %q", err, tc.want)
			}
			if took > 2*time.Second {
				t.Errorf("took %v after a 300 ms timeout", took)
			}
		})
	}
}

// checkDiskFull asserts what a user must see when the Maildir's file
// system is full: a temporary delivery error that names the Maildir and
// the cause, and no partial file left in tmp/ (nor anything in new/).
func checkDiskFull(t *testing.T, dir string, err error) {
	t.Helper()
	t.Logf("%v", err)
	if err == nil || !errkind.IsTemporary(err) || errkind.KindOf(err) != errkind.Delivery ||
		!errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "deliver to Maildir "+dir+": writing tmp/") {
		t.Fatalf("err %v, want a temporary ENOSPC naming %s and the tmp/ file", err, dir)
	}
	for _, sub := range []string{"new", "tmp"} {
		if ents, _ := os.ReadDir(filepath.Join(dir, sub)); len(ents) != 0 {
			t.Errorf("%s/ holds %v after a full disk", sub, ents)
		}
	}
}

// A full disk, for real: a 64 KiB tmpfs mounted in a private mount
// namespace, in a child copy of this test binary (the host's mounts are
// never touched). Root only: skipped elsewhere, but a failure under
// CI=true when root cannot do it.
func TestMaildirDiskFull(t *testing.T) {
	if mnt := os.Getenv("DELIVER_TEST_TMPFS"); mnt != "" {
		diskFullChild(t, mnt)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("a tmpfs in a private mount namespace needs root")
	}
	mnt := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMaildirDiskFull$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "DELIVER_TEST_TMPFS="+mnt)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS} // also makes / private (Go's exec)
	out, err := cmd.CombinedOutput()
	t.Logf("child in a private mount namespace:\n%s", out)
	switch {
	case err == nil && strings.Contains(string(out), "--- SKIP"):
		if os.Getenv("CI") == "true" {
			t.Fatal("root, yet the child could not mount a tmpfs (see its output)")
		}
		t.Skip("cannot mount a tmpfs here (see the child's output)")
	case err != nil && !strings.Contains(string(out), "--- FAIL"):
		// The namespace itself was refused (a container without
		// CAP_SYS_ADMIN).
		if os.Getenv("CI") == "true" {
			t.Fatalf("root, yet no private mount namespace: %v", err)
		}
		t.Skipf("no private mount namespace: %v", err)
	case err != nil:
		t.Fatal("the disk-full delivery failed in the child (see its output)")
	}
	if ents, _ := os.ReadDir(mnt); len(ents) != 0 {
		t.Errorf("the tmpfs leaked into the host's mount namespace: %v", ents)
	}
}

func diskFullChild(t *testing.T, mnt string) {
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	dir := filepath.Join(mnt, "Maildir")
	tg := NewMaildir(MaildirOptions{Path: dir})
	err := tg.Deliver(context.Background(), Envelope{}, strings.NewReader(strings.Repeat("x", 1<<20)))
	checkDiskFull(t, dir, err)
	// Space again: the next (small) message goes through.
	if err := tg.Deliver(context.Background(), Envelope{}, strings.NewReader("small\n")); err != nil {
		t.Fatalf("after the full disk: %v", err)
	}
}

// The same with the full disk injected at the write, wherever the tests
// run (no root needed).
func TestMaildirDiskFullInjected(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	tg := NewMaildir(MaildirOptions{Path: dir}).(*maildir)
	tg.create = func(path string) (tmpFile, error) {
		f, err := createTmp(path)
		if err != nil {
			return nil, err
		}
		return &fullDisk{tmpFile: f, room: 4096, path: path}, nil
	}
	err := tg.Deliver(context.Background(), Envelope{}, strings.NewReader(strings.Repeat("x", 1<<20)))
	checkDiskFull(t, dir, err)
}

// fullDisk takes room bytes, then fails as write(2) does on a full file
// system.
type fullDisk struct {
	tmpFile
	room int
	path string
}

func (f *fullDisk) Write(p []byte) (int, error) {
	if len(p) > f.room {
		n, _ := f.tmpFile.Write(p[:f.room])
		f.room = 0
		return n, &os.PathError{Op: "write", Path: f.path, Err: syscall.ENOSPC}
	}
	f.room -= len(p)
	return f.tmpFile.Write(p)
}
