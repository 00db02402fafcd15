package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// linkctlBin is the binary built once for the tests that run linkctl as a
// user would: as a process, with its exit status.
var linkctlBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "linkctl-test")
	if err != nil {
		panic(err)
	}
	linkctlBin = filepath.Join(dir, "linkctl")
	if out, err := exec.Command("go", "build", "-o", linkctlBin, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// linkctl runs the binary and returns stdout, stderr and the exit status.
func linkctl(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, linkctlBin, args...)
	cmd.Env = append(os.Environ(), env...)
	return runCmd(t, cmd)
}

// runCmd runs cmd (the binary, or the binary through ip netns exec) and
// returns stdout, stderr and the exit status; it fails the test when cmd
// cannot run at all.
func runCmd(t *testing.T, cmd *exec.Cmd) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return out.String(), errb.String(), code
}

// startLinkctl starts the binary with args, its stderr into the returned
// buffer; exited is closed once it has exited.
func startLinkctl(t *testing.T, args ...string) (cmd *exec.Cmd, stderr *bytes.Buffer, exited <-chan struct{}) {
	t.Helper()
	cmd = exec.Command(linkctlBin, args...)
	stderr = new(bytes.Buffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	return cmd, stderr, done
}

// waitSocket waits until the daemon on cfg has opened its control socket.
func waitSocket(t *testing.T, cfg string, stderr *bytes.Buffer) {
	t.Helper()
	sock := filepath.Join(filepath.Dir(cfg), "state", "control.sock")
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			return
		}
		if i > 1000 {
			t.Fatalf("the daemon never opened %s: %s", sock, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeConfig writes a config file with mode 0600 into a temp dir whose
// state_dir is beside it, and returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "linkctl.yaml")
	body = "state_dir: " + filepath.Join(dir, "state") + "\n" + body
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestHelpListsEveryCommand(t *testing.T) {
	out, _, code := linkctl(t, nil, "help")
	if code != 0 {
		t.Fatalf("help exited %d", code)
	}
	for _, c := range []string{"daemon", "up", "down", "run", "etrn", "fetch", "flush", "status", "check", "import-fetchmailrc", "demo"} {
		if !strings.Contains(out, "\n  "+c+" ") {
			t.Errorf("help does not list %q:\n%s", c, out)
		}
	}
}

func TestUnknownCommandIsUsageError(t *testing.T) {
	_, errOut, code := linkctl(t, nil, "frobnicate")
	if code != 5 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestBadFlagIsUsageError(t *testing.T) {
	_, errOut, code := linkctl(t, nil, "run", "--no-such-flag")
	if code != 5 || !strings.Contains(errOut, "no-such-flag") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestMissingConfigSaysWhere(t *testing.T) {
	_, errOut, code := linkctl(t, nil, "-c", "/nonexistent/linkctl.yaml", "run")
	if code != 5 || !strings.Contains(errOut, "/nonexistent/linkctl.yaml") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestRunStopsAtTheFailingExec(t *testing.T) {
	dir := t.TempDir()
	mark := func(n string) string { return filepath.Join(dir, n) }
	cfg := writeConfig(t, `pipeline:
  - exec: [touch, `+mark("first")+`]
  - exec: ["false"]
  - exec: [touch, `+mark("third")+`]
`)
	out, _, code := linkctl(t, nil, "run", "-c", cfg)
	if code == 0 {
		t.Fatalf("run with a failing stage exited 0:\n%s", out)
	}
	if _, err := os.Stat(mark("first")); err != nil {
		t.Error("the first exec did not run")
	}
	if _, err := os.Stat(mark("third")); err == nil {
		t.Error("the third exec ran after the second failed (default on_error is stop)")
	}
	if !strings.Contains(out, "skipped") {
		t.Errorf("summary does not show the skipped stage:\n%s", out)
	}
}

func TestRunsNeverOverlap(t *testing.T) {
	dir := t.TempDir()
	logf := filepath.Join(dir, "log")
	cfg := writeConfig(t, `pipeline:
  - exec: [sh, -c, "echo start >> `+logf+`; sleep 0.3; echo end >> `+logf+`"]
`)
	done := make(chan int, 2)
	for range 2 {
		go func() {
			_, _, code := linkctl(t, nil, "run", "--wait", "-c", cfg)
			done <- code
		}()
	}
	for range 2 {
		if code := <-done; code != 0 {
			t.Fatalf("run exited %d", code)
		}
	}
	b, _ := os.ReadFile(logf)
	if got := strings.Fields(string(b)); strings.Join(got, " ") != "start end start end" {
		t.Fatalf("two runs overlapped: %v", got)
	}
}

func TestSecondRunExitsEight(t *testing.T) {
	dir := t.TempDir()
	started, release := filepath.Join(dir, "started"), filepath.Join(dir, "release")
	cfg := writeConfig(t, `pipeline:
  - exec: [sh, -c, "touch `+started+`; while [ ! -e `+release+` ]; do sleep 0.05; done"]
`)
	first := make(chan int)
	go func() { _, _, code := linkctl(t, nil, "run", "-c", cfg); first <- code }()
	for i := 0; ; i++ {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if i > 1200 {
			t.Fatal("first run never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, errOut, code := linkctl(t, nil, "run", "-c", cfg)
	os.WriteFile(release, nil, 0o600)
	if code != 8 || !strings.Contains(errOut, "another linkctl run") {
		t.Fatalf("second run: exit %d, stderr %q; want 8", code, errOut)
	}
	if code := <-first; code != 0 {
		t.Fatalf("first run exited %d", code)
	}
}

func TestRunNamedStageOnly(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, `pipeline:
  - {exec: [touch, `+filepath.Join(dir, "a")+`], name: a}
  - {exec: [touch, `+filepath.Join(dir, "b")+`], name: b}
`)
	if _, errOut, code := linkctl(t, nil, "run", "-c", cfg, "b"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
		t.Error("stage a ran though only b was named")
	}
	if _, err := os.Stat(filepath.Join(dir, "b")); err != nil {
		t.Error("stage b did not run")
	}
	_, errOut, code := linkctl(t, nil, "run", "-c", cfg, "nosuch")
	if code != 5 || !strings.Contains(errOut, `no stage "nosuch"`) {
		t.Fatalf("unknown stage: exit %d, %q", code, errOut)
	}
}
