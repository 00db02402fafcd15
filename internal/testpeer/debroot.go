package testpeer

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The peers of this file (Exim, Sendmail, OpenSMTPD, Courier) cannot be
// installed next to Postfix and Dovecot: their Debian packages conflict.
// scripts/peers-extra.sh downloads them and unpacks each set with dpkg -x
// into DebRootDir()/NAME-VERSION; the tests run the binaries from there
// with private configs, spools and ports, and where a program reads a
// compiled-in path, in a private mount namespace (unshare -m) whose bind
// mounts put the test's own directories at those paths.

// DebRootDir is where scripts/peers-extra.sh unpacks packages
// (LINKCTL_DEBROOT overrides it).
func DebRootDir() string {
	if d := os.Getenv("LINKCTL_DEBROOT"); d != "" {
		return d
	}
	return "/var/cache/linkctl-test/debroot"
}

// DebRoot returns the newest unpacked root of peer name (exim, sendmail,
// opensmtpd, courier) and its version, or skips the test (fails under
// CI=true) saying how to prepare it.
func DebRoot(t testing.TB, name string) (root, version string) {
	t.Helper()
	NeedRoot(t)
	matches, _ := filepath.Glob(filepath.Join(DebRootDir(), name+"-*"))
	var ok []string
	for _, m := range matches {
		if _, err := os.Stat(filepath.Join(m, ".complete")); err == nil {
			ok = append(ok, m)
		}
	}
	if len(ok) == 0 {
		Missing(t, fmt.Sprintf("no unpacked %s under %s: run scripts/peers-extra.sh %s (as root)", name, DebRootDir(), name))
		return "", ""
	}
	sort.Strings(ok)
	root = ok[len(ok)-1]
	return root, strings.TrimPrefix(filepath.Base(root), name+"-")
}

// ensureUser creates a system user (and its group) that a peer's binaries
// have compiled in (Debian-exim, opensmtpd, opensmtpq), when it is
// missing, and returns its uid and gid.
func ensureUser(t testing.TB, name string) (uid, gid int) {
	t.Helper()
	if _, err := user.Lookup(name); err != nil {
		out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
		if err != nil {
			Missing(t, fmt.Sprintf("cannot create user %s: %v: %s", name, err, out))
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("user %s: %v", name, err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// peerDir is a t.TempDir() that other users (the peer's own) can reach:
// t.TempDir() and its parent are 0700.
func peerDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ReservePort returns a loopback host:port nothing listens on now: a next
// hop that is down until the test listens there itself.
func ReservePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// waitPort waits until addr accepts connections: a readiness wait that
// fails only when the peer never comes up.
func waitPort(t testing.TB, addr string, what string, logf func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s: %v\n%s", what, addr, err, logf())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runOut runs a command and fails the test with its output when it fails.
func runOut(t testing.TB, cmd *exec.Cmd) string {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	return out.String()
}

// privateMounts is a command that runs args in a private mount namespace
// (unshare -m): the bind mounts args make there stay there.
func privateMounts(args ...string) *exec.Cmd {
	return exec.Command("unshare", append([]string{"-m", "--propagation", "private"}, args...)...)
}

// mountNS is nsenter's option that enters the mount namespace of the
// daemon cmd started (by privateMounts).
func mountNS(cmd *exec.Cmd) string {
	return "--mount=/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/mnt"
}

// startDaemon starts cmd in a process group of its own, with its output
// in the file log (none when log is ""), and ends the group when the test
// ends: SIGTERM, then SIGKILL after 5 s. What the daemon forks goes with
// the group. what names it in a failure.
func startDaemon(t testing.TB, cmd *exec.Cmd, log, what string) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if log != "" {
		f, err := os.Create(log)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
}

func writeFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}
