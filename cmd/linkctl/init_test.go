package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/linkctl/linkctl/config"
)

// term drives a process through a pseudo-terminal: it collects what the
// process writes and answers each prompt once it has appeared.
type term struct {
	t   *testing.T
	f   *os.File
	mu  sync.Mutex
	out bytes.Buffer
	pos int // how much of out has been matched
}

func (tm *term) read() {
	buf := make([]byte, 1024)
	for {
		n, err := tm.f.Read(buf)
		tm.mu.Lock()
		tm.out.Write(buf[:n])
		tm.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// expect waits until s appears after what was matched before.
func (tm *term) expect(s string) {
	tm.t.Helper()
	deadline := time.Now().Add(20 * time.Second) // hang guard
	for {
		tm.mu.Lock()
		i := strings.Index(tm.out.String()[tm.pos:], s)
		if i >= 0 {
			tm.pos += i + len(s)
			tm.mu.Unlock()
			return
		}
		all := tm.out.String()
		tm.mu.Unlock()
		if time.Now().After(deadline) {
			tm.t.Fatalf("prompt %q never came; the terminal shows:\n%s", s, all)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (tm *term) answer(prompt, line string) {
	tm.t.Helper()
	tm.expect(prompt)
	if _, err := io.WriteString(tm.f, line+"\r"); err != nil {
		tm.t.Fatal(err)
	}
}

func listen(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// The wizard end to end on a pseudo-terminal. Every answer is written only
// once its prompt has shown, never after a sleep: a test that answers early
// checks nothing, one that sleeps is slow and still flaky under load.
func TestInitWizardOnATerminal(t *testing.T) {
	relay, pop, imap := listen(t), listen(t), listen(t)
	path := filepath.Join(t.TempDir(), "linkctl.yaml")
	cmd := exec.Command(linkctlBin, "init", "-o", path)
	f, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tm := &term{t: t, f: f}
	go tm.read()

	tm.answer("Uplink interface [default-route]: ", "ppp0")
	tm.answer("Local MTA (auto, postfix, exim, sendmail, opensmtpd, none) [auto]: ", "sendmial")
	tm.expect("please answer one of")
	tm.answer("Local MTA (auto, postfix, exim, sendmail, opensmtpd, none) [auto]: ", "postfix")
	tm.answer("ETRN relay host[:port] (Enter for none): ", relay)
	tm.answer("Domains it holds mail for (space-separated): ", "example.org @example.org")
	tm.answer("Mailbox server host[:port]: ", pop)
	tm.answer("Protocol (pop3, imap) [pop3]: ", "") // the default, as for --proto
	tm.answer("TLS (implicit, starttls, none) [implicit]: ", "none")
	tm.answer("User name: ", "bob")
	tm.answer("Password (not shown; Enter to name a file instead): ", "s3cret-pw")
	tm.answer("Deliver to local user", "bob")
	tm.answer("Keep fetched mail on the server? (y/N): ", "")
	// A second mailbox whose password is in a file: "~" is refused (the
	// daemon has no HOME under systemd), the default is beside the config.
	tm.answer("Mailbox server host[:port]: ", imap)
	tm.answer("Protocol (pop3, imap) [pop3]: ", "imap")
	tm.answer("TLS (implicit, starttls, none) [implicit]: ", "none")
	tm.answer("User name: ", "carol")
	tm.answer("Password (not shown; Enter to name a file instead): ", "")
	passFile := filepath.Join(filepath.Dir(path), "carol.pass")
	tm.answer("Password file (mode 0600) ["+passFile+"]: ", "~/carol.pass")
	tm.expect("please write the absolute path")
	tm.answer("Password file (mode 0600) ["+passFile+"]: ", "")
	tm.answer("Deliver to local user", "carol")
	tm.answer("Keep fetched mail on the server? (y/N): ", "y")
	tm.answer("Mailbox server host[:port]: ", "")
	tm.answer("Fetched mail goes to the local SMTP server at [127.0.0.1:25]: ", "")
	tm.answer("Hang-up command (Enter for none): ", "poff isp")
	tm.expect(relay + ": reachable")
	tm.expect(pop + ": reachable")
	tm.expect("password: \"***\"") // the preview
	tm.expect("password_file: " + strconv.Quote(passFile))
	tm.answer("Write this to "+path+"? (Y/n): ", "y")
	tm.expect("Wrote " + path)
	tm.expect("Put the password for carol on the first line of " + passFile)
	tm.expect("Next: linkctl check -c " + path + ", then linkctl run -c " + path + ".")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("linkctl init: %v\n%s", err, tm.out.String())
	}

	tm.mu.Lock()
	screen := tm.out.String()
	tm.mu.Unlock()
	// Neither the terminal's echo nor the preview shows the password.
	if strings.Contains(screen, "s3cret-pw") {
		t.Errorf("the password is on the screen:\n%s", screen)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config %v, %v: want mode 0600", fi, err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Link.Watch[0] != "ppp0" || cfg.Flush.MTA != "postfix" || cfg.ETRN.Servers[0].Domains[1] != "@example.org" ||
		cfg.Fetch.Accounts[0].User != "bob" || cfg.Fetch.Accounts[0].Password.Inline != "s3cret-pw" ||
		cfg.Fetch.Accounts[0].Proto != "pop3" || strings.Join(cfg.Drop.Command, " ") != "poff isp" ||
		cfg.Fetch.Accounts[1].Proto != "imap" || cfg.Fetch.Accounts[1].Password.File != passFile || !cfg.Fetch.Accounts[1].Keep {
		t.Errorf("config: %+v", cfg)
	}
}

// echoProbe is the prompter's output: when the prompt is written it notes
// whether the terminal would echo, then types the answer at once, as a
// fast typist or expect(1) does.
type echoProbe struct {
	tty, ptm *os.File
	echoOn   []bool
}

func (e *echoProbe) Write(b []byte) (int, error) {
	tio, err := unix.IoctlGetTermios(int(e.tty.Fd()), unix.TCGETS)
	if err != nil {
		return 0, err
	}
	e.echoOn = append(e.echoOn, tio.Lflag&unix.ECHO != 0)
	if _, err := io.WriteString(e.ptm, "s3cret-pw\r"); err != nil {
		return 0, err
	}
	return len(b), nil
}

// The hidden prompt turns echo off before it shows: a password typed as
// soon as the prompt appears is never echoed. (Printed first, as it once
// was, the prompt left a moment in which the terminal echoed the answer;
// under load TestInitWizardOnATerminal caught it.)
func TestSecretPromptHidesAnAnswerTypedAtOnce(t *testing.T) {
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptm.Close()
	defer tty.Close()
	probe := &echoProbe{tty: tty, ptm: ptm}
	p := &prompter{r: bufio.NewReader(tty), w: probe, fd: int(tty.Fd())}
	if got := p.secret("Password"); got != "s3cret-pw" {
		t.Fatalf("secret read %q", got)
	}
	if len(probe.echoOn) != 1 || probe.echoOn[0] {
		t.Errorf("echo on while the prompt was shown: %v", probe.echoOn)
	}
	// Echo is back on afterwards: a marker typed now is echoed, and
	// nothing before it may be the password.
	if _, err := io.WriteString(ptm, "END\r"); err != nil {
		t.Fatal(err)
	}
	tm := &term{t: t, f: ptm}
	go tm.read()
	tm.expect("END")
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if strings.Contains(tm.out.String(), "s3cret-pw") {
		t.Errorf("the terminal echoed the password: %q", tm.out.String())
	}
}

func TestInitNonInteractive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "linkctl.yaml")
	out, errOut, code := linkctl(t, nil, "init", "--non-interactive", "--no-check", "-o", path,
		"--iface", "wwan0", "--mta", "none", "--proto", "imap", "--server", "imap.example.net",
		"--user", "alice", "--password-command", "pass show mail", "--to", "alice", "--keep")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Fetch.Accounts[0]
	if cfg.Link.Watch[0] != "wwan0" || len(cfg.Pipeline) != 1 || a.Proto != "imap" || !a.Keep ||
		strings.Join(a.Password.Command, " ") != "pass show mail" || a.To[0] != "alice" {
		t.Errorf("config: %+v", cfg)
	}
	// The hint names the file written, so that check and run read it.
	if want := "Next: linkctl check -c " + path + ", then linkctl run -c " + path + ".\n"; !strings.HasSuffix(out, want) {
		t.Errorf("output %q, want it to end with %q", out, want)
	}
	// It never overwrites without --force.
	if _, errOut, code := linkctl(t, nil, "init", "--non-interactive", "-o", path); code != 5 || !strings.Contains(errOut, "exists") {
		t.Errorf("second init: exit %d, %s", code, errOut)
	}
}

func TestInitNeedsATerminal(t *testing.T) {
	_, errOut, code := linkctl(t, nil, "init", "-o", filepath.Join(t.TempDir(), "x.yaml"))
	if code != 5 || !strings.Contains(errOut, "--non-interactive") {
		t.Errorf("exit %d, %s", code, errOut)
	}
}

// Without --proto the account is POP3, the wizard's default too; a password
// file that does not exist yet is named in the hint; a path that needs
// quoting is quoted.
func TestInitNonInteractiveDefaults(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my config")
	path := filepath.Join(dir, "linkctl.yaml")
	pass := filepath.Join(dir, "isp.pass")
	out, errOut, code := linkctl(t, nil, "init", "--non-interactive", "--no-check", "-o", path,
		"--server", "pop.example.net", "--user", "bob", "--password-file", pass)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Fetch.Accounts[0]; a.Proto != config.POP3 || a.Server != "pop.example.net:995" || a.Password.File != pass {
		t.Errorf("account: %+v", a)
	}
	q := "'" + path + "'"
	for _, want := range []string{
		"Put the password for bob on the first line of " + pass + " (chmod 600).\n",
		"Next: linkctl check -c " + q + ", then linkctl run -c " + q + ".\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestInitProbesTheConfiguredPort: init's reachability check tries the
// address the written config will dial, port included, as the config
// resolved it. It used to default ports itself: a POP3 server without
// --tls was probed on 110 while the config (implicit TLS) fetches on 995.
func TestInitProbesTheConfiguredPort(t *testing.T) {
	cfg, err := config.Parse("/etc/linkctl/t.yaml", []byte(`etrn: {servers: [{server: mx.example.net, domains: [example.org]}]}
fetch:
  accounts:
    - {proto: pop3, server: pop.example.net, user: u, password_file: /p, to: me}
    - {proto: imap, server: imap.example.net, tls: starttls, user: u, password_file: /p, to: me}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(probeAddrs(cfg), " "), "mx.example.net:25 pop.example.net:995 imap.example.net:143"; got != want {
		t.Errorf("probed %s, want %s", got, want)
	}
}
