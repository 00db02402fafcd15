package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

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

func TestInitWizardOnATerminal(t *testing.T) {
	relay, pop := listen(t), listen(t)
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
	tm.answer("Protocol (pop3, imap) [imap]: ", "pop3")
	tm.answer("TLS (implicit, starttls, none) [implicit]: ", "none")
	tm.answer("User name: ", "bob")
	tm.answer("Password (not shown; Enter to name a file instead): ", "s3cret-pw")
	tm.answer("Deliver to local user", "bob")
	tm.answer("Keep fetched mail on the server? (y/N): ", "")
	tm.answer("Mailbox server host[:port]: ", "")
	tm.answer("Fetched mail goes to the local SMTP server at [127.0.0.1:25]: ", "")
	tm.answer("Hang-up command (Enter for none): ", "poff isp")
	tm.expect(relay + ": reachable")
	tm.expect(pop + ": reachable")
	tm.answer("Write this to "+path+"? (Y/n): ", "y")
	tm.expect("Wrote " + path)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("linkctl init: %v\n%s", err, tm.out.String())
	}

	tm.mu.Lock()
	screen := tm.out.String()
	tm.mu.Unlock()
	if strings.Contains(screen[:strings.Index(screen, "Deliver to local user")], "s3cret-pw") {
		t.Errorf("the password was echoed:\n%s", screen)
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
		cfg.Fetch.Accounts[0].Proto != "pop3" || strings.Join(cfg.Drop.Command, " ") != "poff isp" {
		t.Errorf("config: %+v", cfg)
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
