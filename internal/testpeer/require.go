// Package testpeer starts the real peers that integration tests talk to,
// each a private instance on loopback with its own config directory,
// spool and ports under t.TempDir(): Postfix and Dovecot (installed from
// Debian's packages by scripts/test.sh), and Exim, Sendmail, OpenSMTPD and
// Courier run from the packages scripts/peers-extra.sh unpacked with dpkg
// -x into a private root (debroot.go: their packages conflict with
// Postfix and Dovecot, so they are never installed), plus an SMTP sink, a
// scripted ETRN relay and self-signed certificates. It never starts, stops
// or reconfigures the machine's own services.
//
// It also decides what happens when a peer cannot be had: on a laptop
// without Postfix the test is skipped with a message that says what to
// install (or which script to run); under CI=true it fails, because CI
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
