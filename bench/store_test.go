package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mailStore puts every file of the run (the peers' spools and queues, the
// tools' Maildirs and state) on a fresh journaled ext4 file system, the
// kind a mail host has, and returns a line saying where they are.
//
// Why: on an ext4 without a journal (this project's build machines have
// one), creating a file skips every inode of its group freed in the last
// one to five minutes (the kernel's recently_deleted), reading each one's
// inode block to tell. A run that creates and deletes tens of thousands of
// files (Dovecot's mailboxes refilled before each tool and expunged by it,
// Postfix's queue files) made each tool's rate depend on what ran in the
// minutes before it: the same linkctl binary measured 410 to 620 msgs/s
// into Postfix in consecutive runs. A journaled image is the same for
// every tool, whatever ran before.
//
// It needs root, mkfs.ext4 and a loop device; without them (or with
// BENCH_STORE=tmp) the run stays in $TMPDIR and the line says so. It must
// be called before anything of the run is created: it moves TMPDIR, and
// cleanups run last-in first-out, so the image is unmounted after the
// peers have stopped.
func mailStore(b *testing.B) string {
	here := "the stores are in $TMPDIR (" + fsType(os.TempDir()) + ")"
	if os.Getenv("BENCH_STORE") == "tmp" {
		return here + ": BENCH_STORE=tmp"
	}
	if os.Geteuid() != 0 {
		return here + ": a journaled image needs root"
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		return here + ": no mkfs.ext4 for a journaled image"
	}
	// A short path: Dovecot's and Postfix's unix sockets live below it.
	mnt, err := os.MkdirTemp("", "lkb")
	if err != nil {
		b.Fatal(err)
	}
	img := mnt + ".img"
	f, err := os.Create(img)
	if err == nil {
		err = f.Truncate(2 << 30)
		f.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
	cleanup := func() { os.Remove(img); os.Remove(mnt) }
	// The inode tables and journal are written now, not by a kernel thread
	// in the background of the measurement (lazy_itable_init).
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", img).CombinedOutput(); err != nil {
		cleanup()
		return here + fmt.Sprintf(": mkfs.ext4 failed (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	// Written out before the run, not by the kernel's writeback during it.
	if f, err := os.OpenFile(img, os.O_RDWR, 0); err == nil {
		f.Sync()
		f.Close()
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		cleanup()
		return here + fmt.Sprintf(": mounting a loop image failed (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	b.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			b.Logf("umount %s: %v: %s (the image %s is left)", mnt, err, out, img)
			return
		}
		cleanup()
	})
	// Sticky and open to all, as /tmp: the peers run as their own users.
	if err := os.Chmod(mnt, 0o1777); err != nil {
		b.Fatal(err)
	}
	b.Setenv("TMPDIR", mnt)
	return "the stores are on a fresh journaled ext4 image (loop device) at " + filepath.Clean(mnt)
}

// fsType names the file system holding dir, as findmnt does.
func fsType(dir string) string {
	out, err := exec.Command("findmnt", "-n", "-o", "FSTYPE", "-T", dir).Output()
	if err != nil {
		return "file system unknown"
	}
	return strings.TrimSpace(string(out))
}
