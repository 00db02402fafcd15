package testpeer

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// SendmailOptions shape a private Sendmail 8.
type SendmailOptions struct {
	// NextHop is the host:port all mail goes to (SMART_HOST and the esmtp
	// mailer's port).
	NextHop string
}

// Sendmail is a private Sendmail run from the unpacked Debian package: a
// .cf built with m4 from sendmail-cf (DeliveryMode=queue, SMART_HOST to
// NextHop, a private queue directory), a daemon on a loopback port.
//
// Sendmail sleeps 60 s in every invocation when it cannot qualify the
// host name, so the daemon runs in a private mount namespace whose
// /etc/hosts gives the host a dotted name, and every other command enters
// that namespace (nsenter --mount): Argv and DriverArgs say how.
type Sendmail struct {
	Version string
	Bin     string // ROOT/usr/libexec/sendmail/sendmail
	CF      string
	Dir     string
	addr    string
	t       testing.TB
	daemon  *exec.Cmd
}

// StartSendmail starts a private Sendmail daemon; it is stopped when the
// test ends. Needs root and scripts/peers-extra.sh's unpacked sendmail.
func StartSendmail(t testing.TB, opts SendmailOptions) *Sendmail {
	t.Helper()
	root, version := DebRoot(t, "sendmail")
	if root == "" {
		return nil
	}
	NeedBinary(t, "unshare", "util-linux")
	NeedBinary(t, "nsenter", "util-linux")
	s := &Sendmail{Version: version, Bin: filepath.Join(root, "usr/libexec/sendmail/sendmail"), t: t}
	s.Dir = peerDir(t)
	if err := os.Mkdir(filepath.Join(s.Dir, "mqueue"), 0o700); err != nil {
		t.Fatal(err)
	}
	hopHost, hopPort, ok := strings.Cut(opts.NextHop, ":")
	if !ok {
		hopHost, hopPort = "127.0.0.1", "25"
	}
	s.addr = ReservePort(t)
	_, port, _ := strings.Cut(s.addr, ":")
	host, _ := os.Hostname()
	short, _, _ := strings.Cut(host, ".")
	writeFile(t, filepath.Join(s.Dir, "hosts"), fmt.Sprintf("127.0.0.1 %s.sendmail.test %s localhost\n", short, short), 0o644)
	writeFile(t, filepath.Join(s.Dir, "service.switch"), "hosts files\n", 0o644)
	writeFile(t, filepath.Join(s.Dir, "aliases"), "", 0o644)
	writeFile(t, filepath.Join(s.Dir, "statistics"), "", 0o644)
	q := func(v string) string { return "`" + v + "'" }
	mc := strings.Join([]string{
		"divert(-1)",
		"include(" + q(filepath.Join(root, "usr/share/sendmail/cf/m4/cf.m4")) + ")",
		"divert(0)dnl",
		"VERSIONID(`linkctl test')dnl",
		"OSTYPE(`linux')dnl",
		"define(`confDOMAIN_NAME', `sendmail.test')dnl",
		"define(`QUEUE_DIR', " + q(filepath.Join(s.Dir, "mqueue")) + ")dnl",
		"define(`confPID_FILE', " + q(filepath.Join(s.Dir, "sendmail.pid")) + ")dnl",
		"define(`STATUS_FILE', " + q(filepath.Join(s.Dir, "statistics")) + ")dnl",
		"define(`ALIAS_FILE', " + q(filepath.Join(s.Dir, "aliases")) + ")dnl",
		"define(`confSERVICE_SWITCH_FILE', " + q(filepath.Join(s.Dir, "service.switch")) + ")dnl",
		"define(`confHOSTS_FILE', " + q(filepath.Join(s.Dir, "hosts")) + ")dnl",
		"define(`confHELP_FILE', `')dnl",
		"define(`confDELIVERY_MODE', `queue')dnl",
		"define(`confDONT_PROBE_INTERFACES', `True')dnl",
		"define(`confTO_CONNECT', `5s')dnl",
		"define(`confTO_ICONNECT', `5s')dnl",
		"define(`confMIN_QUEUE_AGE', `0')dnl",
		"define(`SMART_HOST', " + q("esmtp:["+hopHost+"]") + ")dnl",
		"define(`ESMTP_MAILER_ARGS', " + q("TCP $h "+hopPort) + ")dnl",
		"define(`RELAY_MAILER_ARGS', " + q("TCP $h "+hopPort) + ")dnl",
		"FEATURE(`nocanonify')dnl",
		"FEATURE(`accept_unresolvable_domains')dnl",
		"DAEMON_OPTIONS(" + q("Port="+port+", Addr=127.0.0.1, Name=MTA") + ")dnl",
		"MAILER(`smtp')dnl",
		"",
	}, "\n")
	writeFile(t, filepath.Join(s.Dir, "test.mc"), mc, 0o644)
	cf := runOut(t, exec.Command(filepath.Join(root, "usr/bin/m4"), filepath.Join(s.Dir, "test.mc")))
	s.CF = filepath.Join(s.Dir, "test.cf")
	writeFile(t, s.CF, cf, 0o644)

	// unshare execs sh, which execs sendmail: the daemon is this process.
	s.daemon = privateMounts("sh", "-c",
		`mount --bind "$1" /etc/hosts && exec "$2" -C "$3" -bD`, "sh",
		filepath.Join(s.Dir, "hosts"), s.Bin, s.CF)
	startDaemon(t, s.daemon, filepath.Join(s.Dir, "daemon.log"), "sendmail -bD")
	waitPort(t, s.addr, "sendmail "+version, s.Log)
	return s
}

// Addr is the daemon's host:port.
func (s *Sendmail) Addr() string { return s.addr }

// DriverCommand and DriverArgs point linkctl's sendmail driver at this
// instance: nsenter into the daemon's mount namespace, then sendmail -C CF.
func (s *Sendmail) DriverCommand() string { return "nsenter" }

// DriverArgs: see DriverCommand.
func (s *Sendmail) DriverArgs() []string {
	return []string{mountNS(s.daemon), "--", s.Bin, "-C", s.CF}
}

// Command runs sendmail with args in the daemon's namespace.
func (s *Sendmail) Command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, s.DriverCommand(), append(s.DriverArgs(), args...)...)
}

// Run runs sendmail with args and returns its output, failing the test on
// error.
func (s *Sendmail) Run(args ...string) string {
	s.t.Helper()
	return runOut(s.t, s.Command(context.Background(), args...))
}

// Submit queues a message (DeliveryMode=queue) and returns its queue id.
func (s *Sendmail) Submit(from, to, subject string) string {
	s.t.Helper()
	before := s.IDs()
	cmd := s.Command(context.Background(), "-odq", "-f", from, to)
	cmd.Stdin = strings.NewReader("Subject: " + subject + "\n\n" + subject + "\n")
	runOut(s.t, cmd)
	for _, id := range s.IDs() {
		if !strings.Contains(strings.Join(before, " "), id) {
			return id
		}
	}
	s.t.Fatalf("sendmail: nothing queued after submitting %q", subject)
	return ""
}

// IDs lists the queue ids `sendmail -bp` shows.
func (s *Sendmail) IDs() []string {
	var ids []string
	for _, line := range strings.Split(s.Run("-bp"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && len(f[0]) >= 14 && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t") && !strings.HasPrefix(f[0], "-") {
			ids = append(ids, strings.TrimRight(f[0], "*X-"))
		}
	}
	return ids
}

// Quarantine quarantines message id with reason (sendmail -qI -Q).
func (s *Sendmail) Quarantine(id, reason string) {
	s.t.Helper()
	s.Run("-qI"+id, "-Q"+reason)
}

// Log is the daemon's output (Sendmail logs to syslog; -v output of the
// test's own commands is in their results).
func (s *Sendmail) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "daemon.log"))
	return string(b)
}
