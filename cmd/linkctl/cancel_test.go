package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go serveHostileIMAP(c, mode)
		}
	}()
	return ln.Addr().String()
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

// TestSIGTERMEndsAWedgedFetch: `linkctl run` and `linkctl daemon` (at its
// default --grace), fetching from a hostile IMAP server that wedges the
// fetch or trickles forever, get SIGTERM at a random moment (while
// starting, logging in, listing, or wedged) and must be gone within 10 s
// each time. The daemon must answer `linkctl status` while it cancels.
// Without the runner's abandonment of stages that ignore their cancel,
// every trial that reaches the wedge never ends.
func TestSIGTERMEndsAWedgedFetch(t *testing.T) {
	if testing.Short() {
		t.Skip("about a minute of wedged runs")
	}
	const trials = 10
	var worst time.Duration
	abandoned := 0
	for i := range trials {
		mode := []string{"wedge", "trickle"}[i/2%2]
		how := []string{"run", "daemon"}[i%2]
		delay := time.Duration(rand.IntN(4000)) * time.Millisecond
		cfg := wedgeConfig(t, hostileIMAP(t, mode))
		var cmd *exec.Cmd
		if how == "run" {
			cmd = exec.Command(linkctlBin, "-c", cfg, "run")
		} else {
			cmd = exec.Command(linkctlBin, "-c", cfg, "daemon")
		}
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		if how == "daemon" {
			sock := filepath.Join(filepath.Dir(cfg), "state", "control.sock")
			for j := 0; ; j++ {
				if _, err := os.Stat(sock); err == nil {
					break
				}
				if j > 1000 {
					t.Fatalf("the daemon never opened its socket: %s", errb.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
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
			// A wedged fetch is still being waited for: status says so.
			if mode == "wedge" && !strings.Contains(out, "cancel:  shutdown") || strings.Contains(out, "cancel:") && !strings.Contains(out, "waiting for stage [fetch]") {
				t.Errorf("trial %d: status does not name the stage it waits for:\n%s", i, out)
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
		if strings.Contains(errb.String(), "stage fetch did not return within 6s after cancel") {
			abandoned++
		}
		t.Logf("trial %d: linkctl %s, %s server, SIGTERM %s after start: exit %d after %s",
			i, how, mode, delay, cmd.ProcessState.ExitCode(), took.Round(time.Millisecond))
		if took > 10*time.Second {
			t.Errorf("trial %d: SIGTERM to exit took %s, want under 10 s:\n%s", i, took, errb.String())
		}
	}
	t.Logf("worst SIGTERM to exit over %d trials: %s (%d stage(s) abandoned)", trials, worst.Round(time.Millisecond), abandoned)
	if abandoned == 0 {
		t.Error("no trial reached the wedge: the test did not test the abandonment")
	}
}

// TestRunSecondSignalExitsAtOnce: `linkctl run` stuck in a wedged fetch
// exits at the second SIGTERM rather than waiting for the abandonment.
func TestRunSecondSignalExitsAtOnce(t *testing.T) {
	cfg := wedgeConfig(t, hostileIMAP(t, "wedge"))
	cmd := exec.Command(linkctlBin, "-c", cfg, "-v", "run")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	time.Sleep(500 * time.Millisecond) // long enough to reach the wedge on loopback
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
