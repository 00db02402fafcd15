package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/scripted"
)

// hostileIMAP is a loopback IMAP server that wedges the fetch once it is
// under way (issue 15):
//
//   - "wedge": it answers the body fetch with two untagged FETCH responses
//     that carry a body and no UID, then goes silent: the response that
//     made go-imap's reader and linkctl's fetch wait on each other for good;
//   - "trickle": it answers everything one byte every 10 ms, and the body
//     never ends (a 100 MB literal), so no inactivity deadline ever fires.
//
// The connections never touch t: a wedged one may outlive the test.
func hostileIMAP(t *testing.T, mode string) string {
	t.Helper()
	return scripted.Listen(t, func(c net.Conn) { serveHostileIMAP(c, mode) }).Addr().String()
}

func serveHostileIMAP(c net.Conn, mode string) {
	defer c.Close()
	send := func(s string) error {
		if mode != "trickle" {
			_, err := c.Write([]byte(s))
			return err
		}
		for i := range len(s) {
			if _, err := c.Write([]byte{s[i]}); err != nil {
				return err
			}
			time.Sleep(10 * time.Millisecond)
		}
		return nil
	}
	const caps = "IMAP4rev1 UIDPLUS"
	if send("* OK [CAPABILITY "+caps+"] hostile server ready\r\n") != nil {
		return
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		tag, rest, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		cmd := strings.ToUpper(rest)
		var reply string
		switch {
		case strings.HasPrefix(cmd, "LOGIN"):
			reply = tag + " OK [CAPABILITY " + caps + "] logged in\r\n"
		case strings.HasPrefix(cmd, "CAPABILITY"):
			reply = "* CAPABILITY " + caps + "\r\n" + tag + " OK done\r\n"
		case strings.HasPrefix(cmd, "SELECT"), strings.HasPrefix(cmd, "EXAMINE"):
			reply = "* 1 EXISTS\r\n* OK [UIDVALIDITY 42] ok\r\n* OK [UIDNEXT 6] ok\r\n" + tag + " OK [READ-WRITE] selected\r\n"
		case strings.HasPrefix(cmd, "UID FETCH 1:*"):
			reply = "* 1 FETCH (UID 5 RFC822.SIZE 100000000 FLAGS ())\r\n" + tag + " OK listed\r\n"
		case strings.HasPrefix(cmd, "UID FETCH"):
			if mode == "trickle" {
				send("* 1 FETCH (UID 5 BODY[] {100000000}\r\n")
				for send(strings.Repeat("x", 1000)) == nil {
				}
				return
			}
			c.Write([]byte("* 1 FETCH (BODY[] {3}\r\nabc)\r\n* 1 FETCH (BODY[] {3}\r\nabc)\r\n"))
			// Silence, the connection open, whatever the client sends.
			for {
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
			}
		case strings.HasPrefix(cmd, "LOGOUT"):
			send("* BYE\r\n" + tag + " OK bye\r\n")
			return
		default:
			reply = tag + " BAD not here\r\n"
		}
		if send(reply) != nil {
			return
		}
	}
}

// wedgeConfig is a config whose only stage fetches one IMAP account from
// addr into a Maildir.
func wedgeConfig(t *testing.T, addr string) string {
	t.Helper()
	dir := t.TempDir()
	pw := filepath.Join(dir, "pass")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`state_dir: %[1]s/state
control_socket: %[1]s/state/control.sock
link: {watch: [lktnone9]}
pipeline: [fetch]
fetch:
  deliver: {maildir: %[1]s/Maildir}
  accounts:
    - {name: hostile, proto: imap, server: %[2]s, tls: none, user: u, password_file: %[3]s, to: chavez}
`, dir, addr, pw)
	path := filepath.Join(dir, "linkctl.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// stubbornConfig is a config whose only stage is a command that ignores
// SIGTERM: the exec stage sends it SIGTERM, then SIGKILL 5 s later, so a
// cancelled run stays in its cancellation for those 5 s, whatever linkctl's
// own protocol code does.
func stubbornConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	body := fmt.Sprintf(`state_dir: %[1]s/state
control_socket: %[1]s/state/control.sock
link: {watch: [lktnone9]}
pipeline:
  - {exec: [/bin/sh, -c, "trap '' TERM; sleep 20 & wait; sleep 20"], name: stubborn}
`, dir)
	path := filepath.Join(dir, "linkctl.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSIGTERMEndsAWedgedFetch: `linkctl run` and `linkctl daemon` (at its
// default --grace) get SIGTERM at a random moment (while starting, logging
// in, listing, or stuck) and must be gone within 10 s each time, whatever
// the server does: a hostile IMAP server that answers the body fetch with
// UID-less bodies and goes silent (the issue 15 deadlock), one that
// trickles forever, and a stage that ignores its SIGTERM. The daemon must
// answer `linkctl status` while it cancels, and name the stage it waits
// for.
func TestSIGTERMEndsAWedgedFetch(t *testing.T) {
	if testing.Short() {
		t.Skip("about a minute of wedged runs")
	}
	const trials = 12
	var worst time.Duration
	waitedFor := 0
	for i := range trials {
		mode := []string{"wedge", "trickle", "stubborn"}[i/2%3]
		how := []string{"run", "daemon"}[i%2]
		delay := time.Duration(rand.IntN(4000)) * time.Millisecond
		var cfg string
		if mode == "stubborn" {
			cfg = stubbornConfig(t)
		} else {
			cfg = wedgeConfig(t, hostileIMAP(t, mode))
		}
		cmd, errb, exited := startLinkctl(t, "-c", cfg, how)
		if how == "daemon" {
			waitSocket(t, cfg, errb)
			if _, _, code := linkctl(t, nil, "-c", cfg, "up", "--no-wait"); code != 0 {
				t.Fatalf("up --no-wait: exit %d", code)
			}
		}
		time.Sleep(delay)
		t0 := time.Now()
		cmd.Process.Signal(syscall.SIGTERM)
		if how == "daemon" {
			// Past the grace (2s): the run is being cancelled now.
			time.Sleep(2500 * time.Millisecond)
			s0 := time.Now()
			out, _, code := linkctl(t, nil, "-c", cfg, "status")
			if i == 1 {
				t.Logf("status 2.5 s after SIGTERM:\n%s", out)
			}
			if took := time.Since(s0); code != 0 || took > 2*time.Second {
				t.Errorf("trial %d: status during the cancellation: exit %d after %s:\n%s", i, code, took, out)
			}
			// A stage still being waited for is named; the stubborn one
			// is always still running 2.5 s after SIGTERM.
			stage := map[string]string{"stubborn": "stubborn"}[mode]
			if stage == "" {
				stage = "fetch"
			}
			switch {
			case mode == "stubborn" && !strings.Contains(out, "cancel:  shutdown"):
				t.Errorf("trial %d: status does not show the cancellation of the stubborn stage:\n%s", i, out)
			case strings.Contains(out, "cancel:") && !strings.Contains(out, "waiting for stage ["+stage+"]"):
				t.Errorf("trial %d: status does not name the stage it waits for:\n%s", i, out)
			case strings.Contains(out, "cancel:"):
				waitedFor++
			}
		}
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Fatalf("trial %d (%s, %s, SIGTERM after %s): still running 15 s after SIGTERM:\n%s", i, how, mode, delay, errb.String())
		}
		took := time.Since(t0)
		worst = max(worst, took)
		t.Logf("trial %d: linkctl %s, %s server, SIGTERM %s after start: exit %d after %s",
			i, how, mode, delay, cmd.ProcessState.ExitCode(), took.Round(time.Millisecond))
		if took > 10*time.Second {
			t.Errorf("trial %d: SIGTERM to exit took %s, want under 10 s:\n%s", i, took, errb.String())
		}
	}
	t.Logf("worst SIGTERM to exit over %d trials: %s (status named the stage being cancelled %d times)", trials, worst.Round(time.Millisecond), waitedFor)
	if waitedFor == 0 {
		t.Error("status never caught a cancellation in progress: the test did not test it")
	}
}

// TestRunSecondSignalExitsAtOnce: `linkctl run` waiting for a stage that
// ignores its SIGTERM exits at the second SIGTERM rather than waiting for
// the stage's SIGKILL or abandonment.
func TestRunSecondSignalExitsAtOnce(t *testing.T) {
	cfg := stubbornConfig(t)
	cmd, errb, exited := startLinkctl(t, "-c", cfg, "-v", "run")
	time.Sleep(500 * time.Millisecond) // long enough to start the stage
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond) // two signals, not one
	t0 := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("still running 10 s after the second SIGTERM:\n%s", errb.String())
	}
	if took := time.Since(t0); took > 2*time.Second || !strings.Contains(errb.String(), "second signal") {
		t.Errorf("second SIGTERM to exit: %s, want at once, with a word of why:\n%s", took, errb.String())
	}
}
