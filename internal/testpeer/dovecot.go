package testpeer

// A private Dovecot for integration tests.
//
// StartDovecot writes a dovecot.conf into a fresh directory, points every
// path Dovecot writes (base_dir with its sockets, state_dir, log_path, the
// Maildirs) into that directory, opens loopback listeners for POP3, IMAP
// and LMTP (and POP3S/IMAPS when TLS is asked for), starts `dovecot -F -c
// CONF` with those listeners, waits until they accept connections, and
// stops the master with t.Cleanup. The system instance is never touched.
//
// The listening sockets are opened here and handed to Dovecot, as systemd
// socket activation does (LISTEN_FDS, sd_listen_fds(3); the Debian build
// takes an inherited listener whose port matches an inet_listener): a port
// is never free between choosing it and Dovecot listening on it, so a
// parallel test cannot take it ("Address already in use"). A Dovecot built
// without socket activation would find the port taken by the very socket
// it inherited: then the listeners are closed before Dovecot binds, and a
// startup that loses that race is retried on fresh ports a few times.
//
// Users log in from a passwd-file with {PLAIN} passwords; a static userdb
// runs their mail processes as the invoking user, or as "nobody" when the
// tests run as root (Dovecot refuses uid 0 for mail processes).

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// DovecotOptions configures StartDovecot. The zero value gives one user,
// "user" with password "password", plaintext only, no plugins.
type DovecotOptions struct {
	// Users maps user names to plaintext passwords.
	Users map[string]string
	// TLS generates a test CA and a server certificate for 127.0.0.1 and
	// localhost, enables STLS/STARTTLS on the plain ports, and opens
	// implicit-TLS POP3S and IMAPS ports. Clients trust Dovecot.CAPool().
	TLS bool
	// Compress loads imap_zlib so IMAP advertises COMPRESS=DEFLATE.
	Compress bool
	// Mechanisms is auth_mechanisms (default "plain login"); add "apop"
	// for APOP tests (the greeting then carries a timestamp) or "cram-md5".
	Mechanisms []string
	// Extra is appended to dovecot.conf verbatim (a later setting wins).
	Extra string

	// In this package's tests: beforeStart runs before each start attempt
	// with its ports; bindOwn makes Dovecot bind its ports itself, as a
	// build without socket activation would.
	beforeStart func(attempt int, ports []int)
	bindOwn     bool
}

// Dovecot is a running private Dovecot instance.
type Dovecot struct {
	Dir  string // everything of this instance lives below
	Conf string // path of dovecot.conf

	t                   testing.TB
	doveadm             string
	mailDir             string
	uid, gid            int
	pop3, imap, lmtp    string
	pop3s, imaps        string
	caPEM               []byte
	caPool              *x509.CertPool
	seq                 atomic.Int64
	mu                  sync.Mutex
	stopped             bool
	usersInOrder        []string
	mailUser, mailGroup string
	internalUser        string // default_internal_user
	loginUser           string // default_login_user
	cmd                 *exec.Cmd
	exited              chan struct{}
}

// StartDovecot starts a private Dovecot or skips the test (fails under
// CI=true) when dovecot is not installed.
func StartDovecot(t testing.TB, opts DovecotOptions) *Dovecot {
	t.Helper()
	bin := NeedBinary(t, "dovecot", "dovecot-imapd dovecot-pop3d dovecot-lmtpd")
	doveadm := NeedBinary(t, "doveadm", "dovecot-core")
	if len(opts.Users) == 0 {
		opts.Users = map[string]string{"user": "password"}
	}
	if len(opts.Mechanisms) == 0 {
		opts.Mechanisms = []string{"plain", "login"}
	}

	// Unix sockets live in base_dir and their paths are limited to 108
	// bytes, which a long test name under t.TempDir() can exceed: use a
	// short directory in the system temp dir and remove it on cleanup.
	dir, err := os.MkdirTemp("", "dc")
	if err != nil {
		t.Fatalf("dovecot: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &Dovecot{t: t, Dir: dir, Conf: filepath.Join(dir, "dovecot.conf"), doveadm: doveadm,
		mailDir: filepath.Join(dir, "mail")}

	d.internalUser, d.loginUser = "dovecot", "dovenull"
	if os.Geteuid() == 0 {
		// Mail processes must not run as root; nobody exists everywhere.
		u, err := user.Lookup("nobody")
		if err != nil {
			Missing(t, "dovecot as root needs the user nobody: "+err.Error())
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			Missing(t, "dovecot as root needs nobody's group: "+err.Error())
		}
		d.uid, _ = strconv.Atoi(u.Uid)
		d.gid, _ = strconv.Atoi(u.Gid)
		d.mailUser, d.mailGroup = u.Username, g.Name
		for _, name := range []string{"dovecot", "dovenull"} {
			if _, err := user.Lookup(name); err != nil {
				Missing(t, "dovecot as root needs the user "+name+" (installed with dovecot-core)")
			}
		}
		// The mail user must reach the Maildirs.
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatalf("dovecot: %v", err)
		}
	} else {
		u, err := user.Current()
		if err != nil {
			t.Fatalf("dovecot: %v", err)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			t.Fatalf("dovecot: %v", err)
		}
		d.uid, d.gid = os.Getuid(), os.Getgid()
		d.mailUser, d.mailGroup = u.Username, g.Name
		d.internalUser, d.loginUser = u.Username, u.Username
	}
	for _, sub := range []string{"base", "state", "mail"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatalf("dovecot: %v", err)
		}
	}
	if err := os.Chown(d.mailDir, d.uid, d.gid); err != nil {
		t.Fatalf("dovecot: %v", err)
	}

	var users bytes.Buffer
	for name := range opts.Users {
		d.usersInOrder = append(d.usersInOrder, name)
	}
	sort.Strings(d.usersInOrder)
	for _, name := range d.usersInOrder {
		fmt.Fprintf(&users, "%s:{PLAIN}%s\n", name, opts.Users[name])
	}
	usersFile := filepath.Join(dir, "users")
	if err := os.WriteFile(usersFile, users.Bytes(), 0o644); err != nil {
		t.Fatalf("dovecot: %v", err)
	}

	var certFile, keyFile string
	if opts.TLS {
		certFile, keyFile = d.makeCert(t)
	}
	n := 3 // POP3, IMAP, LMTP
	if opts.TLS {
		n = 5 // and POP3S, IMAPS
	}
	passFDs := !opts.bindOwn
	for attempt := 1; ; attempt++ {
		ls := listenLoopback(t, n)
		ports := make([]int, 5)
		for i, l := range ls {
			ports[i] = l.Addr().(*net.TCPAddr).Port
		}
		if !passFDs {
			closeAll(ls)
			ls = nil
		}
		if opts.beforeStart != nil {
			opts.beforeStart(attempt, ports[:n])
		}
		err := d.start(bin, opts, usersFile, certFile, keyFile, ports, ls)
		if err == nil {
			break
		}
		if !errors.Is(err, errAddrInUse) || attempt == 4 {
			t.Fatalf("%v", err)
		}
		if passFDs {
			t.Logf("dovecot does not take inherited listeners (%v): binding its own ports", err)
			passFDs = false
		} else {
			t.Logf("dovecot lost a port to another process (%v): again on fresh ports", err)
		}
	}
	t.Cleanup(d.Stop)
	return d
}

// errAddrInUse marks a startup that failed because a port was taken.
var errAddrInUse = errors.New("address already in use")

// start writes dovecot.conf for ports (POP3, IMAP, LMTP, POP3S, IMAPS; the
// last two 0 without TLS) and starts the master. ls, when not nil, are
// listeners on those ports, passed to Dovecot as inherited sockets and
// closed here once it has them. It returns when every listener accepts
// connections, or an error (wrapping errAddrInUse when a port was taken)
// after the master has exited.
func (d *Dovecot) start(bin string, opts DovecotOptions, usersFile, certFile, keyFile string, ports []int, ls []*net.TCPListener) error {
	defer closeAll(ls)
	dir := d.Dir
	d.pop3 = "127.0.0.1:" + strconv.Itoa(ports[0])
	d.imap = "127.0.0.1:" + strconv.Itoa(ports[1])
	d.lmtp = "127.0.0.1:" + strconv.Itoa(ports[2])
	pop3sPort, imapsPort := 0, 0
	ssl := "ssl = no"
	if opts.TLS {
		pop3sPort, imapsPort = ports[3], ports[4]
		d.pop3s = "127.0.0.1:" + strconv.Itoa(pop3sPort)
		d.imaps = "127.0.0.1:" + strconv.Itoa(imapsPort)
		ssl = fmt.Sprintf("ssl = yes\nssl_cert = <%s\nssl_key = <%s\nssl_min_protocol = TLSv1.2", certFile, keyFile)
	}
	plugins := ""
	if opts.Compress {
		plugins = "protocol imap {\n  mail_plugins = $mail_plugins imap_zlib\n}\n"
	}

	conf := fmt.Sprintf(`# written by linkctl's testpeer.StartDovecot
instance_name = linkctl-test-%[1]d
base_dir = %[2]s/base
state_dir = %[2]s/state
log_path = %[2]s/dovecot.log
info_log_path = %[2]s/dovecot.log
protocols = imap pop3 lmtp
listen = 127.0.0.1
%[3]s
disable_plaintext_auth = no
# A wrong password answers at once: tests of it need no 2 s wait.
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
auth_mechanisms = %[4]s
default_internal_user = %[5]s
default_login_user = %[6]s
mail_uid = %[7]s
mail_gid = %[8]s
first_valid_uid = %[15]d
first_valid_gid = %[16]d
mail_location = maildir:%[2]s/mail/%%u/Maildir
pop3_uidl_format = %%08Xu%%08Xv
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[9]s
}
userdb {
  driver = static
  args = uid=%[7]s gid=%[8]s home=%[2]s/mail/%%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[10]d
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = %[11]d
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = %[12]d
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = %[13]d
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = %[14]d
  }
  unix_listener lmtp {
    mode = 0666
  }
}
%[17]s%[18]s
`, os.Getpid(), dir, ssl, strings.Join(opts.Mechanisms, " "), d.internalUser, d.loginUser,
		d.mailUser, d.mailGroup, usersFile, ports[1], imapsPort, ports[0], pop3sPort, ports[2],
		min(d.uid, 500), min(d.gid, 1), plugins, opts.Extra)
	if err := os.WriteFile(d.Conf, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("dovecot: %w", err)
	}

	// -F keeps the master in the foreground as our child, so that Stop can
	// wait for it; its own output goes to a file (a pipe would be held
	// open by every process it forks).
	out, err := os.Create(filepath.Join(dir, "dovecot.out"))
	if err != nil {
		return fmt.Errorf("dovecot: %w", err)
	}
	defer out.Close()
	os.Truncate(filepath.Join(dir, "dovecot.log"), 0) // a failed attempt's log would mislead
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "LISTEN_") {
			env = append(env, e)
		}
	}
	if ls != nil {
		// sd_listen_fds wants LISTEN_PID to be the process reading it:
		// the shell exports its own PID and execs Dovecot in its place.
		d.cmd = exec.Command("/bin/sh", "-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`, bin, "-F", "-c", d.Conf)
		env = append(env, "LISTEN_FDS="+strconv.Itoa(len(ls)))
		for _, l := range ls {
			f, err := l.File() // a duplicate: fd 3, 4, ... in the child
			if err != nil {
				return fmt.Errorf("dovecot: listener fd: %w", err)
			}
			defer f.Close()
			d.cmd.ExtraFiles = append(d.cmd.ExtraFiles, f)
		}
	} else {
		d.cmd = exec.Command(bin, "-F", "-c", d.Conf)
	}
	d.cmd.Env = env
	d.cmd.Stdout, d.cmd.Stderr = out, out
	if err := d.cmd.Start(); err != nil {
		return fmt.Errorf("dovecot -c %s: %w", d.Conf, err)
	}
	d.exited = make(chan struct{})
	go func() { d.cmd.Wait(); close(d.exited) }()
	// The plain ports' greetings: an inherited listener accepts
	// connections before Dovecot runs (the kernel queues them), so only an
	// answer shows it is ready; and the master has created every listener
	// (the auth sockets doveadm uses too) before a login process answers.
	// The implicit-TLS ports are bound in the same pass.
	for _, g := range []struct{ addr, greeting string }{{d.pop3, "+OK"}, {d.imap, "* OK"}, {d.lmtp, "220 "}} {
		if err := d.waitGreeting(g.addr, g.greeting); err != nil {
			select {
			case <-d.exited:
			default:
				d.cmd.Process.Kill()
				<-d.exited
			}
			return err
		}
	}
	return nil
}

// listenLoopback opens n listeners on free ports of 127.0.0.1.
func listenLoopback(t testing.TB, n int) []*net.TCPListener {
	t.Helper()
	var ls []*net.TCPListener
	for range n {
		l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			closeAll(ls)
			t.Fatalf("listen on loopback: %v", err)
		}
		ls = append(ls, l)
	}
	return ls
}

func closeAll(ls []*net.TCPListener) {
	for _, l := range ls {
		l.Close()
	}
}

// waitGreeting waits until the service on addr sends a line starting with
// greeting. A readiness wait, not a timed assertion: it fails only when
// Dovecot exits or never answers. An exit because a port was taken wraps
// errAddrInUse.
func (d *Dovecot) waitGreeting(addr, greeting string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-d.exited:
			out, _ := os.ReadFile(filepath.Join(d.Dir, "dovecot.out"))
			log := d.Log()
			err := fmt.Errorf("dovecot exited at startup: %s\nlog:\n%s", out, log)
			if strings.Contains(string(out)+log, "Address already in use") {
				err = fmt.Errorf("%w: %w", errAddrInUse, err)
			}
			return err
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetReadDeadline(time.Now().Add(time.Second))
			var line string
			line, err = bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && strings.HasPrefix(line, greeting) {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("greeting %q, want %q", line, greeting)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dovecot never answered on %s: %v\nlog:\n%s", addr, err, d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *Dovecot) makeCert(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "linkctl test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	d.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	d.caPool = x509.NewCertPool()
	d.caPool.AddCert(caCert)
	certFile = filepath.Join(d.Dir, "cert.pem")
	keyFile = filepath.Join(d.Dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.Dir, "ca.pem"), d.caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// POP3Addr is the plaintext POP3 listener (STLS available with TLS).
func (d *Dovecot) POP3Addr() string { return d.pop3 }

// IMAPAddr is the plaintext IMAP listener (STARTTLS available with TLS).
func (d *Dovecot) IMAPAddr() string { return d.imap }

// POP3SAddr is the implicit-TLS POP3 listener ("" without TLS).
func (d *Dovecot) POP3SAddr() string { return d.pop3s }

// IMAPSAddr is the implicit-TLS IMAP listener ("" without TLS).
func (d *Dovecot) IMAPSAddr() string { return d.imaps }

// LMTPAddr is the LMTP listener on loopback TCP.
func (d *Dovecot) LMTPAddr() string { return d.lmtp }

// LMTPPath is the LMTP unix socket.
func (d *Dovecot) LMTPPath() string { return filepath.Join(d.Dir, "base", "lmtp") }

// CAPool holds the test CA that signed the server certificate (nil without TLS).
func (d *Dovecot) CAPool() *x509.CertPool { return d.caPool }

// CAPEM is the test CA certificate in PEM (nil without TLS); it is also
// written to Dir/ca.pem for external clients (fetchmail, mpop).
func (d *Dovecot) CAPEM() []byte { return d.caPEM }

// TLSConfig is a client config trusting the test CA, for serverName.
func (d *Dovecot) TLSConfig(serverName string) *tls.Config {
	return &tls.Config{RootCAs: d.caPool, ServerName: serverName, MinVersion: tls.VersionTLS12}
}

// Maildir is the path of user's Maildir (folder "" or "INBOX" is its root,
// others are Maildir++ ".Folder" subdirectories).
func (d *Dovecot) Maildir(user, folder string) string {
	root := filepath.Join(d.mailDir, user, "Maildir")
	if folder == "" || strings.EqualFold(folder, "INBOX") {
		return root
	}
	return filepath.Join(root, "."+strings.ReplaceAll(folder, "/", "."))
}

// Log returns Dovecot's log so far, for failure messages.
func (d *Dovecot) Log() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "dovecot.log"))
	return string(b)
}

// AddMessage stores raw in user's folder by writing a Maildir file into
// new/ directly (fast enough for thousands of messages); Dovecot indexes it
// when the mailbox is next opened. Line endings are stored as given
// (Dovecot serves LF files with CRLF).
func (d *Dovecot) AddMessage(user, folder string, raw []byte) {
	d.t.Helper()
	dir := d.Maildir(user, folder)
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := d.mkdirOwned(filepath.Join(dir, sub)); err != nil {
			d.t.Fatalf("dovecot AddMessage: %v", err)
		}
	}
	n := d.seq.Add(1)
	now := time.Now()
	name := fmt.Sprintf("%d.M%dP%dQ%d.linkctl-test,S=%d", now.Unix(), now.Nanosecond()/1000, os.Getpid(), n, len(raw))
	tmp := filepath.Join(dir, "tmp", name)
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		d.t.Fatalf("dovecot AddMessage: %v", err)
	}
	if err := os.Chown(tmp, d.uid, d.gid); err != nil {
		d.t.Fatalf("dovecot AddMessage: %v", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "new", name)); err != nil {
		d.t.Fatalf("dovecot AddMessage: %v", err)
	}
}

// mkdirOwned creates dir and its missing parents below the mail root,
// owned by the mail user.
func (d *Dovecot) mkdirOwned(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if parent := filepath.Dir(dir); parent != d.mailDir && len(parent) > len(d.mailDir) {
		if err := d.mkdirOwned(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return err
	}
	return os.Chown(dir, d.uid, d.gid)
}

// Count returns the number of messages in user's folder, as Dovecot sees
// it (which also indexes files added with AddMessage).
func (d *Dovecot) Count(user, folder string) int {
	d.t.Helper()
	if folder == "" {
		folder = "INBOX"
	}
	out, err := d.Doveadm("mailbox", "status", "-u", user, "messages", folder)
	if err != nil {
		if _, statErr := os.Stat(d.Maildir(user, folder)); os.IsNotExist(statErr) {
			return 0
		}
		d.t.Fatalf("dovecot Count: %v", err)
	}
	f := strings.Fields(strings.TrimSpace(string(out)))
	for _, kv := range f {
		if v, ok := strings.CutPrefix(kv, "messages="); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				d.t.Fatalf("dovecot Count: %q", out)
			}
			return n
		}
	}
	d.t.Fatalf("dovecot Count: unexpected output %q", out)
	return 0
}

// Clear deletes every message in user's folder (to refill between runs).
func (d *Dovecot) Clear(user, folder string) {
	d.t.Helper()
	if folder == "" {
		folder = "INBOX"
	}
	if _, err := os.Stat(d.Maildir(user, folder)); os.IsNotExist(err) {
		return
	}
	if out, err := d.Doveadm("expunge", "-u", user, "mailbox", folder, "all"); err != nil {
		d.t.Fatalf("dovecot Clear: %v\n%s", err, out)
	}
}

// Doveadm runs `doveadm -c CONF args...` and returns its combined output.
func (d *Dovecot) Doveadm(args ...string) ([]byte, error) {
	cmd := exec.Command(d.doveadm, append([]string{"-c", d.Conf}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("doveadm %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Exec returns a command that runs one of Dovecot's protocol binaries
// pre-authenticated on stdin/stdout: `doveadm -c CONF exec PROG -u USER`
// (args[0] is the program, "imap" or "pop3"; the rest follow). It suits
// plugin and tunnel tests and needs no port. The caller starts it.
func (d *Dovecot) Exec(user string, args ...string) *exec.Cmd {
	argv := []string{"-c", d.Conf, "exec"}
	if len(args) > 0 {
		argv = append(argv, args[0])
		args = args[1:]
	}
	argv = append(argv, "-u", user)
	argv = append(argv, args...)
	return exec.Command(d.doveadm, argv...)
}

// ExecArgv is the argv of Exec, for code that runs commands itself (a
// plugin/tunnel config).
func (d *Dovecot) ExecArgv(user string, args ...string) []string {
	c := d.Exec(user, args...)
	return c.Args
}

// Stop stops the instance (also done by t.Cleanup); safe to call twice.
func (d *Dovecot) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	d.stopped = true
	// SIGTERM to the master (our child) is what `doveadm stop` sends.
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Logf("dovecot stop: %v", err)
	}
	// Wait for the master so that its directory can be removed; kill it
	// if it lingers.
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
}
