package testpeer

import (
	"context"
	"fmt"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// OpenSMTPDOptions shape a private OpenSMTPD.
type OpenSMTPDOptions struct {
	// NextHop is the host:port every message is relayed to.
	NextHop string
}

// OpenSMTPD is a private OpenSMTPD 6.8 run from the unpacked Debian
// package. smtpd has its paths compiled in (/var/spool/smtpd,
// /var/run/smtpd.sock, the chroot /var/lib/opensmtpd/empty), so it runs
// in a private mount namespace whose /var/spool, /var/lib and /run are
// the test's own directories; smtpctl enters that namespace (nsenter
// --mount). dpkg -x loses smtpctl's setgid bit, and smtpctl insists on
// running with group opensmtpq: the test uses a copy with the bit set.
type OpenSMTPD struct {
	Version string
	Smtpctl string // the setgid copy
	Dir     string
	addr    string
	t       testing.TB
	daemon  *exec.Cmd
}

// StartOpenSMTPD starts a private smtpd; it is stopped when the test ends.
func StartOpenSMTPD(t testing.TB, opts OpenSMTPDOptions) *OpenSMTPD {
	t.Helper()
	root, version := DebRoot(t, "opensmtpd")
	if root == "" {
		return nil
	}
	NeedBinary(t, "unshare", "util-linux")
	NeedBinary(t, "nsenter", "util-linux")
	ensureUser(t, "opensmtpd")
	_, qgid := ensureUser(t, "opensmtpq")
	o := &OpenSMTPD{Version: version, t: t}
	o.Dir = peerDir(t)
	for _, d := range []string{"spool", "varlib/opensmtpd/empty", "run"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctl, err := os.ReadFile(filepath.Join(root, "usr/sbin/smtpctl"))
	if err != nil {
		t.Fatal(err)
	}
	o.Smtpctl = filepath.Join(o.Dir, "smtpctl")
	writeFile(t, o.Smtpctl, string(ctl), 0o755)
	if err := os.Chown(o.Smtpctl, 0, qgid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(o.Smtpctl, os.ModeSetgid|0o555); err != nil {
		t.Fatal(err)
	}
	o.addr = ReservePort(t)
	host, port, _ := strings.Cut(o.addr, ":")
	hop := opts.NextHop
	if hop == "" {
		hop = "127.0.0.1:25"
	}
	conf := fmt.Sprintf(`# A private OpenSMTPD for linkctl's tests: everything goes to the next hop.
listen on %s port %s
action "relay" relay host smtp://%s
match from any for any action "relay"
match from local for any action "relay"
`, host, port, hop)
	cf := filepath.Join(o.Dir, "smtpd.conf")
	writeFile(t, cf, conf, 0o644)
	o.daemon = privateMounts("sh", "-c",
		`mount --bind "$1/spool" /var/spool && mount --bind "$1/varlib" /var/lib && mount --bind "$1/run" /run && exec "$2" -f "$3" -d`,
		"sh", o.Dir, filepath.Join(root, "usr/sbin/smtpd"), cf)
	startDaemon(t, o.daemon, filepath.Join(o.Dir, "smtpd.log"), "smtpd")
	waitPort(t, o.addr, "opensmtpd "+version, o.Log)
	return o
}

// Addr is smtpd's SMTP host:port.
func (o *OpenSMTPD) Addr() string { return o.addr }

// DriverCommand and DriverArgs point linkctl's opensmtpd driver at this
// instance: nsenter into smtpd's mount namespace, then the smtpctl copy.
func (o *OpenSMTPD) DriverCommand() string { return "nsenter" }

// DriverArgs: see DriverCommand.
func (o *OpenSMTPD) DriverArgs() []string {
	return []string{mountNS(o.daemon), "--", o.Smtpctl}
}

// Ctl runs smtpctl with args and returns its output, failing the test on
// error.
func (o *OpenSMTPD) Ctl(args ...string) string {
	o.t.Helper()
	return runOut(o.t, exec.CommandContext(context.Background(), o.DriverCommand(), append(o.DriverArgs(), args...)...))
}

// Send submits a message over SMTP.
func (o *OpenSMTPD) Send(from, to, subject string) {
	o.t.Helper()
	msg := "From: <" + from + ">\r\nTo: <" + to + ">\r\nSubject: " + subject + "\r\n\r\n" + subject + "\r\n"
	if err := smtp.SendMail(o.addr, nil, from, []string{to}, []byte(msg)); err != nil {
		o.t.Fatalf("opensmtpd: submit: %v\n%s", err, o.Log())
	}
}

// Queue is `smtpctl show queue`.
func (o *OpenSMTPD) Queue() string { return o.Ctl("show", "queue") }

// WaitQueue waits until cond holds for `smtpctl show queue`.
func (o *OpenSMTPD) WaitQueue(timeout time.Duration, what string, cond func(string) bool) {
	o.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		q := o.Queue()
		if cond(q) {
			return
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("opensmtpd queue never %s:\n%s", what, q)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Log is smtpd's output.
func (o *OpenSMTPD) Log() string {
	b, _ := os.ReadFile(filepath.Join(o.Dir, "smtpd.log"))
	return string(b)
}
