package testpeer

// A private Postfix on loopback, for the flush and ETRN integration tests
// and for anyone who needs a real MTA to deliver into.
//
// How it is put together (and why):
//
//   - Everything lives in one directory under t.TempDir(): conf/ (main.cf,
//     master.cf), queue/ (queue_directory), data/ (data_directory), sink/
//     (the delivered mail) and maillog (maillog_file, through postlogd, so
//     nothing goes to the system syslog).
//   - master.cf is written from scratch: smtpd on a free 127.0.0.1 port and
//     only the services a queue needs. Nothing is chrooted (a chroot would
//     need copies of /etc files inside the temp dir). master binds the port
//     itself (it cannot inherit a listener), so a port another process took
//     meanwhile makes the start fail; it is retried on a fresh port.
//   - Root: Postfix's master must run as root (it binds and then drops to
//     mail_owner). The trick to make it work here is ownership, not config:
//     data_directory must be owned by mail_owner ("postfix"), the virtual
//     sink by the uid that virtual(8) delivers as (nobody, 65534: virtual
//     refuses uids below virtual_minimum_uid, and delivering as mail_owner
//     is refused too), and every directory on the way there must be
//     traversable by those users: t.TempDir() creates 0700 directories, so
//     the test's temp dir and its parent are opened to 0711 (search only,
//     no listing). The queue subdirectories are created here with the
//     owners and modes of postfix-files (postfix:root 0700, maildrop and
//     public group postdrop), and master is started directly with -w:
//     "postfix start" does the same after checks that take seconds on a
//     busy machine. Stop is SIGTERM to master. Commands run as root honour
//     MAIL_CONFIG for a non-default config directory without it being
//     listed in alternate_config_directories.
//   - Delivery never leaves the machine: mydestination is empty,
//     default_transport is error:, so mail for any domain that is neither a
//     sink nor a relay domain is rejected at RCPT time.
//   - The sink: virtual_mailbox_domains (default "sink.test") with
//     virtual_mailbox_maps = static:Maildir/, so every recipient of every
//     sink domain lands in one Maildir (virtual(8) prepends Delivered-To:
//     with the recipient, for tests that need to tell them apart). Bare
//     local parts such as "chavez" are qualified with myorigin, which is set
//     to the first sink domain, so fetched mail for plain local users lands
//     in the sink as well.
//   - The relay (optional): RelayDomains are listed in relay_domains and
//     fast_flush_domains, smtpd_etrn_restrictions permits 127.0.0.0/8, and
//     transport_maps points each at smtp:[host]:port of RelayAddr, where a
//     test's "home" listener will be. Mail queued while nothing listens
//     there is deferred ("Connection refused") and waits (the first retry is
//     minimal_backoff_time, 300 s, away); ETRN or "postqueue -f" starts its
//     delivery. HoldRelay instead lists the relay transport in
//     defer_transports, so the mail waits without any delivery attempt
//     until a flush or ETRN.
//   - Startup errors go to the maillog (and to the test log on failure).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PostfixOptions configure a private Postfix. The zero value gives a sink
// for "sink.test" and no relay.
type PostfixOptions struct {
	// Hostname is myhostname (default "relay.test"): the name in the
	// greeting and in the EHLO of its SMTP client.
	Hostname string
	// SinkDomains are the virtual_mailbox_domains whose every recipient is
	// delivered to the sink Maildir (default ["sink.test"]). The first one
	// is also myorigin, so bare local parts land in the sink.
	SinkDomains []string
	// RelayDomains are held for (and relayed to) RelayAddr: the ETRN set-up.
	RelayDomains []string
	// RelayAddr is "host:port" (loopback) of the home listener that mail
	// for RelayDomains is delivered to. Required with RelayDomains.
	RelayAddr string
	// HoldRelay puts the relay transport in defer_transports: mail for
	// RelayDomains is not attempted at all until a flush or ETRN.
	HoldRelay bool
	// Main holds extra main.cf settings, written after (and so overriding)
	// the defaults.
	Main map[string]string

	// beforeStart, in this package's tests, runs before each start
	// attempt with the smtpd address it will bind.
	beforeStart func(attempt int, addr string)
}

// Postfix is a running private Postfix instance.
type Postfix struct {
	Dir       string // the instance's root directory
	ConfigDir string // MAIL_CONFIG
	QueueDir  string
	SinkDir   string // virtual_mailbox_base: the sink Maildir is SinkDir/Maildir
	LogFile   string

	t      testing.TB
	addr   string
	stopMu sync.Mutex
	stop   bool
}

const postfixRelayTransport = "relay"

// StartPostfix starts a private Postfix for the test and stops it in
// t.Cleanup. It skips the test (or fails it under CI=true) without root or
// the postfix binaries.
func StartPostfix(t testing.TB, opts PostfixOptions) *Postfix {
	t.Helper()
	postfixBin := NeedBinary(t, "postfix", "postfix")
	NeedBinary(t, "postqueue", "postfix")
	NeedRoot(t)
	owner, err := user.Lookup("postfix")
	if err != nil {
		Missing(t, "no postfix user: apt-get install postfix")
	}
	ownerUID, _ := strconv.Atoi(owner.Uid)
	ownerGID, _ := strconv.Atoi(owner.Gid)
	if _, err := user.LookupGroup("postdrop"); err != nil {
		Missing(t, "no postdrop group: apt-get install postfix")
	}
	if opts.Hostname == "" {
		opts.Hostname = "relay.test"
	}
	if len(opts.SinkDomains) == 0 {
		opts.SinkDomains = []string{"sink.test"}
	}
	if len(opts.RelayDomains) > 0 && opts.RelayAddr == "" {
		t.Fatalf("testpeer.StartPostfix: RelayDomains %v without RelayAddr", opts.RelayDomains)
	}

	dir := t.TempDir()
	// t.TempDir() is 0700 and so is its parent: let postfix and nobody
	// through (search only) to reach data/ and sink/.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatalf("testpeer.StartPostfix: %v", err)
		}
	}
	p := &Postfix{
		t:         t,
		Dir:       dir,
		ConfigDir: filepath.Join(dir, "conf"),
		QueueDir:  filepath.Join(dir, "queue"),
		SinkDir:   filepath.Join(dir, "sink"),
		LogFile:   filepath.Join(dir, "maillog"),
	}
	dataDir := filepath.Join(dir, "data")
	for _, d := range []string{p.ConfigDir, p.QueueDir, p.SinkDir, dataDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("testpeer.StartPostfix: %v", err)
		}
	}
	if err := os.Chown(dataDir, ownerUID, ownerGID); err != nil {
		t.Fatalf("testpeer.StartPostfix: chown data_directory: %v", err)
	}
	if err := os.Chown(p.SinkDir, 65534, 65534); err != nil {
		t.Fatalf("testpeer.StartPostfix: chown sink: %v", err)
	}

	main := [][2]string{
		{"compatibility_level", "3.6"},
		{"queue_directory", p.QueueDir},
		{"data_directory", dataDir},
		{"mail_owner", "postfix"},
		{"setgid_group", "postdrop"},
		{"myhostname", opts.Hostname},
		{"mydomain", opts.Hostname},
		{"myorigin", opts.SinkDomains[0]},
		{"mydestination", ""},
		{"inet_interfaces", "127.0.0.1"},
		{"inet_protocols", "ipv4"},
		{"mynetworks", "127.0.0.0/8"},
		{"smtpd_banner", "$myhostname ESMTP"},
		{"maillog_file", p.LogFile},
		{"maillog_file_prefixes", dir},
		{"virtual_mailbox_domains", strings.Join(opts.SinkDomains, ", ")},
		{"virtual_mailbox_base", p.SinkDir},
		{"virtual_mailbox_maps", "static:Maildir/"},
		{"virtual_uid_maps", "static:65534"},
		{"virtual_gid_maps", "static:65534"},
		{"local_recipient_maps", ""},
		{"alias_maps", ""},
		{"alias_database", ""},
		{"biff", "no"},
		{"default_transport", "error:private test instance: mail never leaves"},
		{"smtp_dns_support_level", "disabled"},
		{"smtp_connect_timeout", "5s"},
		{"in_flow_delay", "0"},
		{"delay_warning_time", "0"},
		{"smtpd_etrn_restrictions", "permit_mynetworks, reject"},
	}
	if len(opts.RelayDomains) > 0 {
		host, rport, err := net.SplitHostPort(opts.RelayAddr)
		if err != nil {
			t.Fatalf("testpeer.StartPostfix: RelayAddr %q: %v", opts.RelayAddr, err)
		}
		var entries []string
		for _, d := range opts.RelayDomains {
			entries = append(entries, fmt.Sprintf("%s=%s:[%s]:%s", d, postfixRelayTransport, host, rport))
		}
		main = append(main,
			[2]string{"relay_domains", strings.Join(opts.RelayDomains, ", ")},
			[2]string{"fast_flush_domains", "$relay_domains"},
			[2]string{"transport_maps", "inline:{ " + strings.Join(entries, ", ") + " }"},
		)
		if opts.HoldRelay {
			main = append(main, [2]string{"defer_transports", postfixRelayTransport})
		}
	}
	keys := make([]string, 0, len(opts.Main))
	for k := range opts.Main {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		main = append(main, [2]string{k, opts.Main[k]})
	}
	var mainCF bytes.Buffer
	for _, kv := range main {
		fmt.Fprintf(&mainCF, "%s = %s\n", kv[0], kv[1])
	}
	// Services: a queue's minimum, nothing chrooted ("n" in column 5);
	// the smtpd line comes first, with its port, at each start attempt.
	masterServices := `
pickup    unix  n  -  n  60    1  pickup
cleanup   unix  n  -  n  -     0  cleanup
qmgr      unix  n  -  n  300   1  qmgr
rewrite   unix  -  -  n  -     -  trivial-rewrite
bounce    unix  -  -  n  -     0  bounce
defer     unix  -  -  n  -     0  bounce
trace     unix  -  -  n  -     0  bounce
verify    unix  -  -  n  -     1  verify
flush     unix  n  -  n  1000? 0  flush
proxymap  unix  -  -  n  -     -  proxymap
smtp      unix  -  -  n  -     -  smtp
relay     unix  -  -  n  -     -  smtp
showq     unix  n  -  n  -     -  showq
error     unix  -  -  n  -     -  error
retry     unix  -  -  n  -     -  error
discard   unix  -  -  n  -     -  discard
virtual   unix  -  n  n  -     -  virtual
anvil     unix  -  -  n  -     1  anvil
scache    unix  -  -  n  -     1  scache
postlog   unix-dgram n - n - 1 postlogd
`
	if err := os.WriteFile(filepath.Join(p.ConfigDir, "main.cf"), mainCF.Bytes(), 0o644); err != nil {
		t.Fatalf("testpeer.StartPostfix: %v", err)
	}

	// The queue subdirectories with the owners and modes postfix-files
	// gives them: "postfix start" would create them too, but its checks
	// take seconds on a loaded machine, while master -w starts in a blink.
	postdropGID := 0
	if g, err := user.LookupGroup("postdrop"); err == nil {
		postdropGID, _ = strconv.Atoi(g.Gid)
	}
	for _, q := range []struct {
		name string
		gid  int
		mode os.FileMode
	}{
		{"active", 0, 0o700}, {"bounce", 0, 0o700}, {"corrupt", 0, 0o700}, {"defer", 0, 0o700},
		{"deferred", 0, 0o700}, {"flush", 0, 0o700}, {"hold", 0, 0o700}, {"incoming", 0, 0o700},
		{"private", 0, 0o700}, {"saved", 0, 0o700}, {"trace", 0, 0o700},
		{"maildrop", postdropGID, 0o730}, {"public", postdropGID, 0o710},
	} {
		d := filepath.Join(p.QueueDir, q.name)
		if err := os.Mkdir(d, q.mode); err != nil {
			t.Fatalf("testpeer.StartPostfix: %v", err)
		}
		os.Chmod(d, q.mode) // past the umask
		if err := os.Chown(d, ownerUID, q.gid); err != nil {
			t.Fatalf("testpeer.StartPostfix: %v", err)
		}
	}
	if err := os.Mkdir(filepath.Join(p.QueueDir, "pid"), 0o755); err != nil {
		t.Fatalf("testpeer.StartPostfix: %v", err)
	}

	t.Cleanup(p.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	master := "/usr/lib/postfix/sbin/master"
	if out, err := p.Command(ctx, "postconf", "-h", "daemon_directory").Output(); err == nil {
		master = filepath.Join(strings.TrimSpace(string(out)), "master")
	}
	// Postfix's master binds its inet services itself, so the port is
	// free between choosing it and master binding it: another test may
	// take it meanwhile. Then master fails with "Address already in use"
	// and the start is retried on a fresh port, a bounded number of times.
	for attempt := 1; ; attempt++ {
		p.addr = ReservePort(t)
		masterCF := p.addr + " inet n - n - - smtpd" + masterServices
		if err := os.WriteFile(filepath.Join(p.ConfigDir, "master.cf"), []byte(masterCF), 0o644); err != nil {
			t.Fatalf("testpeer.StartPostfix: %v", err)
		}
		if opts.beforeStart != nil {
			opts.beforeStart(attempt, p.addr)
		}
		// master -w: the foreground process exits 0 only once the daemon
		// has initialized (its sockets bound), so no polling for startup.
		out, err := p.Command(ctx, master, "-c", p.ConfigDir, "-w").CombinedOutput()
		if err == nil {
			break
		}
		log := p.Log()
		// master reports a failed bind to syslog, not to us: ask the
		// kernel whether the port is taken.
		if (strings.Contains(string(out)+log, "Address already in use") || portTaken(p.addr)) && attempt < 4 {
			t.Logf("testpeer.StartPostfix: %s was taken before master bound it; again on a fresh port", p.addr)
			continue
		}
		// "postfix start" explains what went wrong better than master.
		diag, _ := p.Command(ctx, postfixBin, "-c", p.ConfigDir, "check").CombinedOutput()
		t.Fatalf("testpeer.StartPostfix: %s -w: %v\n%s\npostfix check:\n%s\nmaillog:\n%s", master, err, out, diag, log)
	}
	// master binds the smtpd socket before it detaches, but wait for the
	// greeting anyway: a test's first connection must not race startup.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			// Our own smtpd, not whoever else may listen there.
			if rerr == nil && strings.HasPrefix(line, "220 "+opts.Hostname+" ") {
				break
			}
			err = fmt.Errorf("greeting %q: %v", line, rerr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("testpeer.StartPostfix: smtpd on %s not answering: %v\nmaillog:\n%s", p.addr, err, p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

// portTaken reports whether addr cannot be bound because something
// listens there.
func portTaken(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return errors.Is(err, syscall.EADDRINUSE)
	}
	l.Close()
	return false
}

// Addr returns "127.0.0.1:PORT" of its smtpd.
func (p *Postfix) Addr() string { return p.addr }

// Env returns the environment additions that make Postfix commands
// (postqueue, postsuper, sendmail) act on this instance: MAIL_CONFIG.
// Append it to os.Environ().
func (p *Postfix) Env() []string { return []string{"MAIL_CONFIG=" + p.ConfigDir} }

// Command returns an exec.Cmd for a Postfix command (postqueue, postsuper,
// postcat, sendmail, ...) that acts on this instance.
func (p *Postfix) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := name
	for _, dir := range []string{"/usr/sbin/", "/usr/bin/", "/sbin/"} {
		if _, err := os.Stat(dir + name); err == nil {
			path = dir + name
			break
		}
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), p.Env()...)
	return cmd
}

// Run runs a Postfix command on this instance and returns its combined
// output; a failure fails the test.
func (p *Postfix) Run(name string, args ...string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := p.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Send submits one message over SMTP to its smtpd. body is the message
// (headers, blank line, text); bare LF is turned into CRLF.
func (p *Postfix) Send(from string, to []string, body string) error {
	body = strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n")
	return smtp.SendMail(p.addr, nil, from, to, []byte(body))
}

// Messages returns the paths of the messages delivered to the sink
// Maildir (new/ and cur/), sorted.
func (p *Postfix) Messages() []string {
	var paths []string
	for _, sub := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(p.SinkDir, "Maildir", sub))
		for _, e := range ents {
			if e.Type().IsRegular() {
				paths = append(paths, filepath.Join(p.SinkDir, "Maildir", sub, e.Name()))
			}
		}
	}
	sort.Strings(paths)
	return paths
}

// WaitMessages waits up to timeout until at least n messages were
// delivered to the sink and returns their paths; it fails the test with the
// maillog if they do not arrive.
func (p *Postfix) WaitMessages(n int, timeout time.Duration) []string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := p.Messages()
		if len(m) >= n {
			return m
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("postfix sink: %d messages after %v, want %d\nmaillog:\n%s", len(m), timeout, n, p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PostfixQueued is one message of `postqueue -j`.
type PostfixQueued struct {
	Queue      string `json:"queue_name"` // incoming, active, deferred, hold, maildrop
	ID         string `json:"queue_id"`
	Arrival    int64  `json:"arrival_time"`
	Size       int64  `json:"message_size"`
	Sender     string `json:"sender"`
	Recipients []struct {
		Address     string `json:"address"`
		DelayReason string `json:"delay_reason"`
	} `json:"recipients"`
}

// Queue lists the instance's queue with `postqueue -j`.
func (p *Postfix) Queue() []PostfixQueued {
	p.t.Helper()
	out := p.Run("postqueue", "-j")
	var q []PostfixQueued
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var m PostfixQueued
		if err := dec.Decode(&m); err != nil {
			p.t.Fatalf("postqueue -j: %v\n%s", err, out)
		}
		q = append(q, m)
	}
	return q
}

// WaitQueue waits up to timeout until cond holds for the queue listing and
// returns that listing, failing the test with the maillog otherwise.
func (p *Postfix) WaitQueue(timeout time.Duration, what string, cond func([]PostfixQueued) bool) []PostfixQueued {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		q := p.Queue()
		if cond(q) {
			return q
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("postfix queue: not %s after %v: %+v\nmaillog:\n%s", what, timeout, q, p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Log returns the instance's maillog so far.
func (p *Postfix) Log() string {
	b, _ := os.ReadFile(p.LogFile)
	return string(b)
}

// Stop stops the instance and waits (up to 10 s) for its master to exit,
// so that t.TempDir()'s removal does not race running daemons. Cleanup
// calls it; calling it twice is harmless.
func (p *Postfix) Stop() {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	if p.stop {
		return
	}
	p.stop = true
	pidBytes, _ := os.ReadFile(filepath.Join(p.QueueDir, "pid", "master.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidBytes)))
	if pid <= 0 {
		return
	}
	// What "postfix stop" does, without its script: SIGTERM to master,
	// which stops its children.
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return
	}
	end := time.Now().Add(10 * time.Second)
	for postfixAlive(pid) && time.Now().Before(end) {
		time.Sleep(10 * time.Millisecond)
	}
	// Children notice their master is gone on their own; wait for them
	// too, so that removing the temp dir does not race a daemon's write.
	for postfixChildren(p.QueueDir) > 0 && time.Now().Before(end) {
		time.Sleep(10 * time.Millisecond)
	}
	if postfixAlive(pid) || postfixChildren(p.QueueDir) > 0 {
		p.t.Logf("postfix in %s still running 10s after SIGTERM", p.Dir)
	}
}

// postfixChildren counts live processes whose working directory is the
// queue directory: every Postfix daemon chdirs there.
func postfixChildren(queueDir string) int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil && cwd == queueDir && postfixAlive(pid) {
			n++
		}
	}
	return n
}

// postfixAlive reports whether pid runs and is not a zombie (a daemonized
// master whose parent does not reap it stays a zombie in containers).
func postfixAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}
