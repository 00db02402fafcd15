package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/linkwatch/nstest"
)

// linkctlIn runs linkctl inside the network namespace ns (ip netns exec).
func linkctlIn(t *testing.T, ns string, args ...string) (string, string, int) {
	t.Helper()
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip command")
	}
	cmd := exec.Command(ip, append([]string{"netns", "exec", ns, linkctlBin}, args...)...)
	timer := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	return runCmd(t, cmd)
}

func TestDialWithoutDialSection(t *testing.T) {
	cfg := writeConfig(t, "pipeline:\n  - exec: [true]\n")
	_, errOut, code := linkctl(t, nil, "-c", cfg, "dial")
	if code != 5 || !strings.Contains(errOut, "has no dial section") {
		t.Errorf("exit %d, stderr %q; want 5 and a word about the dial section", code, errOut)
	}
}

// `linkctl dial` with no daemon, run inside a network namespace of the
// test's own: the dial command sets the veth link up, linkctl sees it come
// up through netlink, runs the pipeline, and the drop stage sets it down.
func TestDialByHandNoDaemon(t *testing.T) {
	ns := nstest.New(t)
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	cfg := writeConfig(t, `link: {watch: [up0], settle: 100ms}
control_socket: `+filepath.Join(dir, "ctl.sock")+`
pipeline:
  - exec: [sh, -c, "echo ran >> `+runs+`"]
  - drop
drop: {command: [ip, link, set, up0, down], idle: 100ms}
dial: {command: [ip, link, set, up0, up], appear_timeout: 10s}
`)
	out, errOut, code := linkctlIn(t, ns.Name, "-c", cfg, "dial")
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if !strings.Contains(errOut, "up0 is up after") {
		t.Errorf("stderr lacks the dial result:\n%s", errOut)
	}
	if b, _ := os.ReadFile(runs); string(b) != "ran\n" {
		t.Errorf("pipeline runs %q, want one", b)
	}
	link, err := ns.NL.LinkByName("up0")
	if err != nil {
		t.Fatal(err)
	}
	if link.Attrs().RawFlags&1 != 0 { // IFF_UP
		t.Error("up0 is still up: the drop stage did not hang up")
	}
}

// A dial whose link never comes up fails with exit 2 after appear_timeout.
func TestDialLinkNeverAppears(t *testing.T) {
	ns := nstest.New(t)
	cfg := writeConfig(t, `link: {watch: [up0]}
control_socket: `+filepath.Join(t.TempDir(), "ctl.sock")+`
pipeline:
  - exec: [true]
dial: {command: ["true"], appear_timeout: 1s}
`)
	_, errOut, code := linkctlIn(t, ns.Name, "-c", cfg, "dial")
	if code != 2 || !strings.Contains(errOut, "the link did not come up within 1s") {
		t.Errorf("exit %d, stderr %q; want 2 and the appear timeout", code, errOut)
	}
}
