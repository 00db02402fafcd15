package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startDaemon runs `linkctl daemon` as a process on cfg and waits for its
// control socket.
func startDaemon(t *testing.T, cfg string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(linkctlBin, "-c", cfg, "daemon", "--grace", "5s")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The tests Wait for the daemon themselves: no startLinkctl here.
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	})
	waitSocket(t, cfg, &stderr)
	return cmd, &stderr
}

func daemonConfig(t *testing.T, argv string) string {
	dir := t.TempDir()
	body := "control_socket: " + filepath.Join(dir, "state", "control.sock") + "\n" +
		"metrics_file: " + filepath.Join(dir, "state", "linkctl.prom") + "\n" +
		"link: {watch: [lktnone9]}\npipeline:\n  - exec: " + argv + "\n"
	path := filepath.Join(dir, "linkctl.yaml")
	body = "state_dir: " + filepath.Join(dir, "state") + "\n" + body
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDaemonUpStatusQuit(t *testing.T) {
	cfg := daemonConfig(t, `[sh, -c, "echo ran-by-daemon"]`)
	d, derr := startDaemon(t, cfg)

	out, errOut, code := linkctl(t, nil, "-c", cfg, "up", "ppp0")
	if code != 0 || !strings.Contains(errOut, "ran-by-daemon") {
		t.Fatalf("up: exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, "summary of run 1 (linkctl up") {
		t.Errorf("up printed no summary: %q", out)
	}
	out, _, code = linkctl(t, nil, "-c", cfg, "status", "--json")
	var st struct {
		Daemon bool `json:"daemon"`
		Runner struct {
			LastRun struct {
				Iface  string `json:"iface"`
				Result string `json:"result"`
			} `json:"last_run"`
		} `json:"runner"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		t.Fatalf("status --json: exit %d, %v: %s", code, err, out)
	}
	if !st.Daemon || st.Runner.LastRun.Iface != "ppp0" || st.Runner.LastRun.Result != "ok" {
		t.Errorf("status: %s", out)
	}
	out, _, _ = linkctl(t, nil, "-c", cfg, "status")
	if !strings.Contains(out, "daemon:  running") || !strings.Contains(out, "last:    run 1 (linkctl up): ok") {
		t.Errorf("status:\n%s", out)
	}
	prom, err := os.ReadFile(filepath.Join(filepath.Dir(cfg), "state", "linkctl.prom"))
	if err != nil || !strings.Contains(string(prom), `linkctl_runs_total{result="ok"} 1`) {
		t.Errorf("metrics file: %v\n%s", err, prom)
	}
	if _, _, code := linkctl(t, nil, "-c", cfg, "quit"); code != 0 {
		t.Errorf("quit exit %d", code)
	}
	done := make(chan error, 1)
	go func() { done <- d.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("daemon exit: %v\n%s", err, derr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("daemon did not quit:\n%s", derr)
	}
}

// `linkctl up` while the daemon is stopping (systemctl restart, linkctl
// quit) with a run in flight: up waits for the daemon to go and then runs
// the pipeline itself, so the link-up is not lost.
func TestUpWhileDaemonStops(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "runs")
	cfg := daemonConfig(t, `[sh, -c, "echo run >> `+mark+`; sleep 1"]`)
	d, derr := startDaemon(t, cfg)
	if _, _, code := linkctl(t, nil, "-c", cfg, "up", "--no-wait"); code != 0 {
		t.Fatalf("up --no-wait exited %d", code)
	}
	runs := func() int { b, _ := os.ReadFile(mark); return strings.Count(string(b), "run\n") }
	for i := 0; runs() == 0; i++ {
		if i > 1000 {
			t.Fatalf("the daemon's run never started:\n%s", derr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, _, code := linkctl(t, nil, "-c", cfg, "quit"); code != 0 {
		t.Fatalf("quit exited %d", code)
	}
	_, errOut, code := linkctl(t, nil, "-c", cfg, "up")
	if code != 0 || runs() != 2 {
		t.Fatalf("up during the daemon's stop: exit %d, %d runs (want 0 and 2); stderr:\n%s\ndaemon:\n%s", code, runs(), errOut, derr)
	}
	if err := d.Wait(); err != nil {
		t.Errorf("daemon exit: %v\n%s", err, derr)
	}
}

// The daemon and an in-process run report a failing run with the same exit
// status.
func TestUpExitStatusSameWithAndWithoutDaemon(t *testing.T) {
	cfg := daemonConfig(t, `[sh, -c, "echo broken >&2; exit 3"]`)
	_, errOut, alone := linkctl(t, nil, "-c", cfg, "up")
	if alone == 0 || !strings.Contains(errOut, "broken") {
		t.Fatalf("up without daemon: exit %d, stderr %q", alone, errOut)
	}
	startDaemon(t, cfg)
	_, errOut, via := linkctl(t, nil, "-c", cfg, "up")
	if via != alone {
		t.Errorf("up through the daemon exited %d, in-process %d (stderr %q)", via, alone, errOut)
	}
	if _, _, code := linkctl(t, nil, "-c", cfg, "up", "--no-wait"); code != 0 {
		t.Errorf("up --no-wait exited %d", code)
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	cfg := daemonConfig(t, `[true]`)
	startDaemon(t, cfg)
	_, errOut, code := linkctl(t, nil, "-c", cfg, "daemon")
	if code != 8 || !strings.Contains(errOut, "another linkctl daemon") {
		t.Errorf("second daemon: exit %d, stderr %q", code, errOut)
	}
}

func TestDownAndQuitWithoutDaemon(t *testing.T) {
	cfg := daemonConfig(t, `[true]`)
	for _, c := range []string{"down", "quit"} {
		_, errOut, code := linkctl(t, nil, "-c", cfg, c)
		if code != 0 || !strings.Contains(errOut, "no daemon is running") {
			t.Errorf("%s: exit %d, stderr %q", c, code, errOut)
		}
	}
	out, _, code := linkctl(t, nil, "-c", cfg, "status")
	if code != 0 || !strings.Contains(out, "daemon:  not running") || !strings.Contains(out, "no link matches lktnone9") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
}

// waitRunning polls the daemon until a run is in flight.
func waitRunning(t *testing.T, cfg string) {
	t.Helper()
	for i := 0; ; i++ {
		out, _, _ := linkctl(t, nil, "-c", cfg, "status", "--json")
		if strings.Contains(out, `"running": true`) {
			return
		}
		if i > 500 {
			t.Fatalf("no run started: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDaemonTermLetsTheRunFinish: the first SIGTERM lets the run in flight
// end (and its `linkctl up` client see it succeed); the daemon then exits 0.
func TestDaemonTermLetsTheRunFinish(t *testing.T) {
	cfg := daemonConfig(t, `[sh, -c, "sleep 0.5; echo finished-after-term"]`)
	d, derr := startDaemon(t, cfg)
	up := exec.Command(linkctlBin, "-c", cfg, "up")
	var upErr bytes.Buffer
	up.Stderr = &upErr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, cfg)
	d.Process.Signal(syscall.SIGTERM)
	if err := up.Wait(); err != nil || !strings.Contains(upErr.String(), "finished-after-term") {
		t.Errorf("up: %v, stderr %q", err, upErr.String())
	}
	if err := d.Wait(); err != nil {
		t.Errorf("daemon exit: %v\n%s", err, derr)
	}
}

// TestDaemonSecondSignalExitsAtOnce: a run that ignores SIGTERM cannot hold
// the daemon after a second signal.
func TestDaemonSecondSignalExitsAtOnce(t *testing.T) {
	cfg := daemonConfig(t, `[sleep, "30"]`)
	d, derr := startDaemon(t, cfg)
	linkctl(t, nil, "-c", cfg, "up", "--no-wait")
	waitRunning(t, cfg)
	d.Process.Signal(syscall.SIGTERM)
	time.Sleep(100 * time.Millisecond) // two signals, not one coalesced
	d.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- d.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second): // hang guard: the grace was 5 s, the stage 30 s
		t.Fatalf("the daemon did not exit on the second signal:\n%s", derr)
	}
	if !strings.Contains(derr.String(), "second signal") {
		t.Errorf("log does not say why it exited:\n%s", derr)
	}
}
