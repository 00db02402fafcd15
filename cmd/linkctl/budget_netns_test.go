package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/linkctl/linkctl/internal/scripted"
	"github.com/linkctl/linkctl/internal/testpeer"
	"github.com/linkctl/linkctl/linkwatch/nstest"
)

// forwardFrom listens on addr inside the namespace ns and forwards every
// connection to target, dialled from the test's own namespace: a POP3
// server that is reached over the test's veth link.
func forwardFrom(t *testing.T, ns netns.NsHandle, addr, target string) string {
	t.Helper()
	var (
		ln  net.Listener
		err error
	)
	func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, _ := netns.Get()
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := netns.Set(orig); err != nil {
				panic(err)
			}
		}()
		ln, err = net.Listen("tcp", addr)
	}()
	if err != nil {
		t.Fatal(err)
	}
	scripted.Serve(t, ln, func(c net.Conn) {
		u, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer u.Close()
		go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite() }()
		io.Copy(c, u)
	})
	return ln.Addr().String()
}

// A real `linkctl run` on a metered veth link (its own namespace, the POP3
// server behind the far end): the run budget lets the 3 smallest of 5
// messages through, the rest stay on the server, the run exits 13, and
// `linkctl status` (no daemon) shows the policy, the spending against
// the budgets and the link counters beside linkctl's own count.
func TestStatusShowsBudgetsNetns(t *testing.T) {
	testpeer.Short(t)
	ns := nstest.New(t)
	far := ns.Name + "-far"
	for _, args := range [][]string{
		{"netns", "add", far},
		{"-n", ns.Name, "link", "set", "peer0", "netns", far},
		{"-n", far, "addr", "add", "192.0.2.2/24", "dev", "peer0"},
		{"-n", far, "link", "set", "peer0", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
		if args[0] == "netns" {
			t.Cleanup(func() { exec.Command("ip", "netns", "del", far).Run() })
		}
	}
	ns.Set(true)
	ns.WaitQuiet(300 * time.Millisecond)
	farNS, err := netns.GetFromName(far)
	if err != nil {
		t.Fatal(err)
	}
	defer farNS.Close()

	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{Users: map[string]string{"alice": "alice-pw"}})
	for i, n := range []int{60000, 5000, 80000, 15000, 10000} {
		d.AddMessage("alice", "INBOX", []byte(fmt.Sprintf("Subject: m%d\r\n\r\n%s\r\n", i, strings.Repeat("x", n))))
	}
	addr := forwardFrom(t, farNS, "192.0.2.2:0", d.POP3Addr())
	box := filepath.Join(t.TempDir(), "Maildir")
	cfg := writeConfig(t, fmt.Sprintf(`link:
  watch: [up0]
  policies:
    - {match: "up*", metered: true, budget: {run: 40k, day: 1M, month: 2G}, max_message: 100k}
fetch:
  deliver: {maildir: %s}
  accounts:
    - {name: isp, proto: pop3, server: "%s", tls: none, user: alice, password: alice-pw}
pipeline: [fetch]
`, box, addr))
	run := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, linkctlBin, "-c", cfg}, args...)...)
		cmd.Env = os.Environ()
		return runCmd(t, cmd)
	}
	out, errOut, code := run("run", "--iface", "up0")
	t.Logf("linkctl run (exit %d):\n%s%s", code, out, errOut)
	if code != 13 {
		t.Errorf("exit %d, want 13 (stopped at a budget)", code)
	}
	if n := d.Count("alice", "INBOX"); n != 2 {
		t.Errorf("%d messages on the server, want the 2 biggest", n)
	}
	if !strings.Contains(out+errOut, "left 2 messages (140 kB) for an unmetered link: the run budget has") {
		t.Errorf("the run does not say what it left and why")
	}
	out, errOut, code = run("status")
	t.Logf("linkctl status:\n%s%s", out, errOut)
	if code != 0 || !strings.Contains(out, "up*      metered (metered: true; config)") || !strings.Contains(out, "of 40.0 KiB · day") {
		t.Errorf("status does not show the policy and its budgets")
	}
	out, _, _ = run("status", "--json")
	var st struct {
		Links []struct {
			Spent struct{ Run, Day, Month int64 }
			Run   struct {
				LinkRx uint64 `json:"link_rx"`
				LinkTx uint64 `json:"link_tx"`
				LinkOK bool   `json:"link_ok"`
				Own    int64  `json:"own_bytes"`
				Bytes  int64
			} `json:"last_run"`
		}
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Links) != 1 {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	r := st.Links[0].Run
	link := int64(r.LinkRx + r.LinkTx)
	t.Logf("link counters %d bytes (rx %d, tx %d), linkctl counted %d: they differ by %d bytes", link, r.LinkRx, r.LinkTx, r.Own, link-r.Own)
	if !r.LinkOK || r.Bytes != link || link < r.Own || st.Links[0].Spent.Month != link {
		t.Errorf("run record %+v, spent %+v: want the link counters to count", r, st.Links[0].Spent)
	}
}
