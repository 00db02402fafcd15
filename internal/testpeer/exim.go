package testpeer

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// EximOptions shape a private Exim 4 instance.
type EximOptions struct {
	// NextHop is the host:port every message is sent to (a manualroute
	// router and an smtp transport): the test's listener, or a port that
	// is down.
	NextHop string
	// Daemon starts `exim -bd` on a loopback port: SMTP submission and
	// ETRN (see Addr).
	Daemon bool
	// ETRNDomains are the domains ETRN may flush, through the taint-safe
	// recipe of docs/troubleshooting.md: the domain is looked up in a
	// file, and only the value found there reaches the command line.
	ETRNDomains []string
	// ETRNTainted uses the recipe that Exim 4.94+ refuses instead,
	// `smtp_etrn_command = exim -R $domain`, to test what a client sees.
	ETRNTainted bool
	// Retry is the retry rule's time ("F,1m,1s" by default); an ETRN or
	// -qff run ignores it anyway.
	Retry string
}

// Exim is a private Exim 4 run from the unpacked Debian package: its own
// config (-C), spool, log and pid file under a temp dir, mail held in the
// queue (queue_only) until a queue run.
type Exim struct {
	Version string
	Bin     string // ROOT/usr/sbin/exim4
	Config  string // the -C file
	Dir     string
	Spool   string
	addr    string
	t       testing.TB
	daemon  *exec.Cmd
}

// EximETRNCommand is the taint-safe smtp_etrn_command of
// docs/troubleshooting.md: Exim 4.94 and later refuse a tainted $domain on
// a command line (the client sees 458), so the domain is looked up in a
// file and the untainted value found there is what -R gets.
func EximETRNCommand(exim, config, domainsFile string) string {
	c := exim
	if config != "" {
		c += " -C " + config
	}
	return c + " -R ${lookup{$domain}lsearch{" + domainsFile + "}{$value}fail}"
}

// StartExim starts a private Exim; it is stopped when the test ends.
// Needs root and scripts/peers-extra.sh's unpacked exim.
func StartExim(t testing.TB, opts EximOptions) *Exim {
	t.Helper()
	root, version := DebRoot(t, "exim")
	if root == "" {
		return nil
	}
	uid, gid := ensureUser(t, "Debian-exim")
	e := &Exim{Version: version, Bin: filepath.Join(root, "usr/sbin/exim4"), t: t}
	e.Dir = peerDir(t)
	e.Spool = filepath.Join(e.Dir, "spool")
	for _, d := range []string{e.Spool, filepath.Join(e.Dir, "log")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if opts.Retry == "" {
		opts.Retry = "F,1m,1s"
	}
	host, port := "127.0.0.1", "25"
	if opts.NextHop != "" {
		var ok bool
		if host, port, ok = strings.Cut(opts.NextHop, ":"); !ok {
			t.Fatalf("testpeer.StartExim: NextHop %q is not host:port", opts.NextHop)
		}
	}
	daemonPort := "0"
	if opts.Daemon {
		_, daemonPort, _ = strings.Cut(ReservePort(t), ":")
		e.addr = "127.0.0.1:" + daemonPort
	}
	e.Config = filepath.Join(e.Dir, "exim.conf")
	domains := filepath.Join(e.Dir, "etrn-domains")
	var dl strings.Builder
	for _, d := range opts.ETRNDomains {
		fmt.Fprintf(&dl, "%s: %s\n", d, d)
	}
	writeFile(t, domains, dl.String(), 0o644)
	etrn, acl := "", ""
	if len(opts.ETRNDomains) > 0 {
		cmd := EximETRNCommand(e.Bin, e.Config, domains)
		if opts.ETRNTainted {
			cmd = e.Bin + " -C " + e.Config + " -R $domain"
		}
		// The recipe of docs/troubleshooting.md, with the test's hosts.
		etrn = "hostlist relay_from_hosts = 127.0.0.1\nacl_smtp_etrn = acl_check_etrn\nsmtp_etrn_serialize = false\nsmtp_etrn_command = " + cmd + "\n"
		acl = "begin acl\nacl_check_etrn:\n  accept hosts = +relay_from_hosts\n  deny\n\n"
	}
	conf := fmt.Sprintf(`# A private Exim for linkctl's tests: nothing leaves 127.0.0.1.
primary_hostname = exim.test
qualify_domain = home.test
spool_directory = %[1]s/spool
log_file_path = %[1]s/log/%%slog
pid_file_path = %[1]s/exim.pid
exim_user = Debian-exim
exim_group = Debian-exim
daemon_smtp_ports = %[2]s
local_interfaces = 127.0.0.1
keep_environment =
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
queue_only = true
acl_smtp_rcpt = accept
%[5]s
%[7]sbegin routers
out:
  driver = manualroute
  route_list = * %[3]s
  self = send
  transport = remote

begin transports
remote:
  driver = smtp
  port = %[4]s
  hosts_try_fastopen = :
  hosts_try_chunking = :
  connect_timeout = 5s

begin retry
* * %[6]s
`, e.Dir, daemonPort, host, port, etrn, opts.Retry, acl)
	writeFile(t, e.Config, conf, 0o644)
	if opts.Daemon {
		// No -q interval: the daemon would re-exec the compiled-in
		// /usr/sbin/exim4 for its queue runners.
		e.daemon = exec.Command(e.Bin, "-C", e.Config, "-bdf")
		startDaemon(t, e.daemon, "", "exim -bdf")
		waitPort(t, e.addr, "exim "+version, e.Log)
	}
	return e
}

// Addr is the daemon's host:port ("" without EximOptions.Daemon).
func (e *Exim) Addr() string { return e.addr }

// Argv is the Exim command line with this instance's config and args.
func (e *Exim) Argv(args ...string) []string {
	return append([]string{e.Bin, "-C", e.Config}, args...)
}

// Command runs Exim with this instance's config.
func (e *Exim) Command(ctx context.Context, args ...string) *exec.Cmd {
	argv := e.Argv(args...)
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

// Run runs Exim with args and returns its output, failing the test on error.
func (e *Exim) Run(args ...string) string {
	e.t.Helper()
	return runOut(e.t, e.Command(context.Background(), args...))
}

// Submit queues a message (held: queue_only) and returns its id.
func (e *Exim) Submit(from, to, subject string) string {
	e.t.Helper()
	cmd := e.Command(context.Background(), "-odq", "-f", from, to)
	cmd.Stdin = strings.NewReader("Subject: " + subject + "\n\n" + subject + "\n")
	runOut(e.t, cmd)
	ids := e.IDs()
	if len(ids) == 0 {
		e.t.Fatalf("exim: nothing queued after submitting %q\n%s", subject, e.Log())
	}
	return ids[len(ids)-1]
}

// IDs lists the message ids in the queue, oldest first (exim -bpr).
func (e *Exim) IDs() []string {
	e.t.Helper()
	var ids []string
	for _, line := range strings.Split(e.Run("-bpra"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && strings.HasPrefix(f[3], "<") && strings.Count(f[2], "-") == 2 {
			ids = append(ids, f[2])
		}
	}
	return ids
}

// Log is Exim's main log.
func (e *Exim) Log() string {
	b, _ := os.ReadFile(filepath.Join(e.Dir, "log", "mainlog"))
	p, _ := os.ReadFile(filepath.Join(e.Dir, "log", "paniclog"))
	return string(b) + string(p)
}

// WaitLog waits until the main log contains s.
func (e *Exim) WaitLog(s string, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(e.Log(), s) {
		if time.Now().After(deadline) {
			e.t.Fatalf("exim log never said %q:\n%s", s, e.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
