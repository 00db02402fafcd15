// Package testpeer starts the real peers that integration tests talk to
// (private Postfix and Dovecot instances on loopback, each with its own
// config directory under t.TempDir()) and decides what happens when a peer
// cannot be had: on a laptop without Postfix the test is skipped with a
// message that says what to install; under CI=true it fails, because CI
// installs every peer and a skip there would hide a broken set-up.
package testpeer

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where a missing
// peer is a failure rather than a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips the test with why, or fails it under CI.
func Missing(t testing.TB, why string) {
	t.Helper()
	if InCI() {
		t.Fatalf("required under CI=true: %s", why)
	}
	t.Skipf("skipped: %s", why)
}

// NeedRoot skips (or under CI fails) a test that needs root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root (network namespaces, veth, other uids)")
	}
}

// NeedBinary returns the path of a program the test needs, skipping (or
// under CI failing) when it is not installed. pkg names the Debian package.
func NeedBinary(t testing.TB, name, pkg string) string {
	t.Helper()
	for _, dir := range []string{"", "/usr/sbin/", "/usr/bin/", "/sbin/"} {
		if p, err := exec.LookPath(dir + name); err == nil {
			return p
		}
	}
	Missing(t, name+" not found: apt-get install "+pkg)
	return ""
}

// Short skips a slow integration test under `go test -short`, unless in CI.
func Short(t testing.TB) {
	t.Helper()
	if testing.Short() && !InCI() {
		t.Skip("skipped in -short mode")
	}
}
