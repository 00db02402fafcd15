package scripts

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fake is a directory with a recording `linkctl` in it.
type fake struct {
	dir     string // put first in PATH
	bin     string // the fake's path
	log     string // one line per call: the argv joined by spaces
	detail  string // of the last call: PATH, session id, stdin
	release string // the fake waits for this file before it exits
	config  string // an existing config file: hooks stay inert without one
}

func newFake(t *testing.T, wait bool) *fake {
	t.Helper()
	dir := t.TempDir()
	f := &fake{dir: dir, bin: filepath.Join(dir, "linkctl"), log: filepath.Join(dir, "calls"),
		detail: filepath.Join(dir, "detail"), release: filepath.Join(dir, "release"),
		config: filepath.Join(dir, "linkctl.yaml")}
	if err := os.WriteFile(f.config, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if !wait {
		if err := os.WriteFile(f.release, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The fake waits (up to 30 s) for the release file, so a hook that
	// waits for linkctl does not return before the test releases it.
	script := fmt.Sprintf(`#!/bin/sh
echo "$*" >> %[1]q
read -r _ _ _ _ _ sid _ < /proc/$$/stat
ign=$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status)
{ echo "PATH=$PATH"; echo "sid=$sid"; echo "stdin=$(readlink /proc/$$/fd/0)"; echo "sigign=$ign"; } > %[2]q
i=0
while [ ! -e %[3]q ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
`, f.log, f.detail, f.release)
	if err := os.WriteFile(f.bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fake) calls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(f.log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// run runs a hook the way its caller does: the given argv and exactly the
// given environment (nothing inherited from the test). It returns after the
// hook has exited; then, if the fake waits, release lets it go; then it
// waits until every process the hook started has exited, known by a pipe
// end (fd 3) that all of them inherit: its reader sees EOF only when the
// last holder is gone. No sleeps, no timing.
func run(t *testing.T, f *fake, script string, env []string, args ...string) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd := exec.Command("/bin/sh", append([]string{script}, args...)...)
	cmd.Env = env
	if !hasKey(env, "LINKCTL_CONFIG") {
		cmd.Env = append(cmd.Env, "LINKCTL_CONFIG="+f.config)
	}
	cmd.ExtraFiles = []*os.File{pw}
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(20 * time.Second): // a hang guard, not a timing assertion
		_ = cmd.Process.Kill()
		t.Fatalf("%s did not return while linkctl was still running: callers wait for their hooks", script)
	}
	if err != nil {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("%s: %v\n%s", script, err, b)
	}
	if err := os.WriteFile(f.release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_ = pr.SetReadDeadline(time.Now().Add(40 * time.Second)) // hang guard
	if _, err := io.Copy(io.Discard, pr); err != nil {
		t.Fatalf("waiting for the processes %s started: %v", script, err)
	}
}

func hasKey(env []string, key string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			return true
		}
	}
	return false
}

func detail(t *testing.T, f *fake) map[string]string {
	t.Helper()
	b, err := os.ReadFile(f.detail)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestPPPUpFromDebianRunParts(t *testing.T) {
	// Debian's /etc/ppp/ip-up exports PPP_* and calls run-parts with no
	// arguments; the fake linkctl does not exit until released, so the
	// hook must return without waiting for it.
	f := newFake(t, true)
	run(t, f, "ppp/ip-up.d/linkctl", []string{
		"PATH=" + f.dir + ":/usr/bin:/bin", "PPP_IFACE=ppp0", "PPP_TTY=/dev/ttyUSB0", "PPP_SPEED=115200",
		"PPP_LOCAL=192.0.2.10", "PPP_REMOTE=192.0.2.1", "PPP_IPPARAM=provider",
	})
	if got := f.calls(t); len(got) != 1 || got[0] != "up --no-wait ppp0" {
		t.Fatalf("calls = %q, want [up --no-wait ppp0]", got)
	}
	d := detail(t, f)
	sid, _ := unix.Getsid(0)
	if d["sid"] == strconv.Itoa(sid) || d["sid"] == "" {
		t.Errorf("linkctl ran in the caller's session %s: it must be detached with setsid", d["sid"])
	}
	if d["stdin"] != "/dev/null" {
		t.Errorf("linkctl's stdin is %q, want /dev/null (not pppd's)", d["stdin"])
	}
}

func TestPPPUpFromPppdWithoutPATH(t *testing.T) {
	// pppd itself: interface in $1 and IFNAME, no PATH at all.
	f := newFake(t, false)
	run(t, f, "ppp/ip-up.d/linkctl", []string{"IFNAME=ppp1", "DEVICE=/dev/ttyS0", "LINKCTL_BIN=" + f.bin},
		"ppp1", "/dev/ttyS0", "38400", "192.0.2.10", "192.0.2.1", "")
	if got := f.calls(t); len(got) != 1 || got[0] != "up --no-wait ppp1" {
		t.Fatalf("calls = %q", got)
	}
	p := detail(t, f)["PATH"]
	for _, dir := range []string{"/usr/local/bin", "/usr/sbin", "/bin"} {
		if !strings.Contains(":"+p+":", ":"+dir+":") {
			t.Errorf("PATH %q given to linkctl lacks %s", p, dir)
		}
	}
}

func TestPPPUpResetsIgnoredSignals(t *testing.T) {
	if exec.Command("env", "--default-signal", "true").Run() != nil {
		t.Skip("this env has no --default-signal (coreutils before 8.31)")
	}
	// pppd's scripts start with signals ignored; an ignored signal survives
	// exec, so the hook runs under a shell that ignores HUP, INT and TERM.
	f := newFake(t, false)
	run(t, f, "-c", []string{"PATH=" + f.dir + ":/usr/bin:/bin", "PPP_IFACE=ppp0"},
		`trap "" HUP INT TERM; exec /bin/sh ppp/ip-up.d/linkctl`)
	if got := f.calls(t); len(got) != 1 || got[0] != "up --no-wait ppp0" {
		t.Fatalf("calls = %q", got)
	}
	ign, err := strconv.ParseUint(detail(t, f)["sigign"], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []unix.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGTERM} {
		if ign&(1<<(uint(sig)-1)) != 0 {
			t.Errorf("linkctl starts with %v ignored (SigIgn %x)", sig, ign)
		}
	}
}

func TestPPPDown(t *testing.T) {
	f := newFake(t, false)
	run(t, f, "ppp/ip-down.d/linkctl", []string{"PATH=" + f.dir + ":/usr/bin:/bin", "PPP_IFACE=ppp0"})
	if got := f.calls(t); len(got) != 1 || got[0] != "down ppp0" {
		t.Fatalf("calls = %q, want [down ppp0]", got)
	}
	f = newFake(t, false)
	run(t, f, "ppp/ip-down.d/linkctl", []string{"LINKCTL_BIN=" + f.bin}, "ppp2")
	if got := f.calls(t); len(got) != 1 || got[0] != "down ppp2" {
		t.Fatalf("calls = %q, want [down ppp2]", got)
	}
}

func TestPPPWithoutInterfaceDoesNothing(t *testing.T) {
	f := newFake(t, false)
	run(t, f, "ppp/ip-up.d/linkctl", []string{"PATH=" + f.dir + ":/usr/bin:/bin"})
	if got := f.calls(t); got != nil {
		t.Fatalf("calls = %q, want none", got)
	}
}

// Until the admin writes a config (the Debian package installs only an
// example), no hook starts linkctl: no surprise run, no error logged at
// every connection.
func TestHooksInertWithoutConfig(t *testing.T) {
	for _, h := range []struct {
		script string
		env    []string
		args   []string
	}{
		{"ppp/ip-up.d/linkctl", []string{"PPP_IFACE=ppp0"}, nil},
		{"ppp/ip-down.d/linkctl", []string{"PPP_IFACE=ppp0"}, nil},
		{"NetworkManager/dispatcher.d/90-linkctl", nil, []string{"wwan0", "up"}},
		{"networkd-dispatcher/linkctl", []string{"IFACE=wwan0", "STATE=routable"}, nil},
		{"ifupdown/linkctl", []string{"IFACE=eth1", "MODE=start", "PHASE=post-up"}, nil},
	} {
		t.Run(h.script, func(t *testing.T) {
			f := newFake(t, false)
			env := append([]string{"LINKCTL_BIN=" + f.bin, "LINKCTL_CONFIG=" + filepath.Join(f.dir, "absent.yaml")}, h.env...)
			run(t, f, h.script, env, h.args...)
			if got := f.calls(t); got != nil {
				t.Fatalf("calls = %q, want none without a config", got)
			}
		})
	}
}

func TestNetworkManagerDispatcher(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want string // "" for no call
	}{
		{[]string{"wwan0", "up"}, []string{"DEVICE_IFACE=wwan0", "CONNECTION_ID=LTE"}, "up --no-wait wwan0"},
		{[]string{"tun0", "vpn-up"}, []string{"VPN_IP_IFACE=tun0", "CONNECTION_ID=office"}, "up --no-wait tun0"},
		{[]string{"eth0", "vpn-up"}, []string{"VPN_IP_IFACE=wg0"}, "up --no-wait wg0"},
		{[]string{"wwan0", "down"}, nil, "down wwan0"},
		{[]string{"tun0", "vpn-down"}, []string{"VPN_IP_IFACE=tun0"}, "down tun0"},
		{[]string{"", "connectivity-change"}, []string{"CONNECTIVITY_STATE=FULL"}, "up --no-wait"},
		{[]string{"", "connectivity-change"}, []string{"CONNECTIVITY_STATE=LIMITED"}, ""},
		{[]string{"wwan0", "dhcp4-change"}, nil, ""},
		{[]string{"wwan0", "pre-up"}, nil, ""},
		{[]string{"lo", "up"}, nil, ""},
		{[]string{"none", "hostname"}, nil, ""},
	} {
		f := newFake(t, false)
		env := append([]string{"PATH=" + f.dir + ":/usr/bin:/bin"}, tc.env...)
		run(t, f, "NetworkManager/dispatcher.d/90-linkctl", env, tc.args...)
		checkCalls(t, f, fmt.Sprint(tc.args, tc.env), tc.want)
	}
}

func TestNetworkdDispatcher(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"IFACE=wwan0", "STATE=routable", "ADDR=192.0.2.7", "IP_ADDRS=192.0.2.7"}, "up --no-wait wwan0"},
		{[]string{"IFACE=wwan0", "STATE=off"}, "down wwan0"},
		{[]string{"IFACE=wwan0", "OperationalState=routable", "AdministrativeState=configured"}, "up --no-wait wwan0"},
		{[]string{"IFACE=wwan0", "STATE=no-carrier"}, "down wwan0"},
		{[]string{"IFACE=wwan0", "STATE=degraded"}, ""},
		{[]string{"IFACE=wwan0", "STATE=configuring"}, ""},
		{[]string{"IFACE=lo", "STATE=routable"}, ""},
	} {
		f := newFake(t, false)
		run(t, f, "networkd-dispatcher/linkctl", append([]string{"PATH=" + f.dir + ":/usr/bin:/bin"}, tc.env...))
		checkCalls(t, f, fmt.Sprint(tc.env), tc.want)
	}
}

func TestIfupdown(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"IFACE=ppp0", "LOGICAL=dsl", "ADDRFAM=inet", "METHOD=ppp", "MODE=start", "PHASE=post-up"}, "up --no-wait ppp0"},
		{[]string{"IFACE=ppp0", "LOGICAL=dsl", "ADDRFAM=inet", "METHOD=ppp", "MODE=stop", "PHASE=pre-down"}, "down ppp0"},
		{[]string{"IFACE=ppp0", "MODE=start", "PHASE=pre-up"}, ""},
		{[]string{"IFACE=ppp0", "MODE=stop", "PHASE=post-down"}, ""},
		{[]string{"IFACE=--all", "MODE=start", "PHASE=post-up"}, ""},
		{[]string{"IFACE=lo", "MODE=start", "PHASE=post-up"}, ""},
	} {
		f := newFake(t, false)
		run(t, f, "ifupdown/linkctl", append([]string{"PATH=" + f.dir + ":/usr/bin:/bin"}, tc.env...))
		checkCalls(t, f, fmt.Sprint(tc.env), tc.want)
	}
}

// noIgnored checks that linkctl did not start with INT, QUIT, HUP or TERM
// ignored (a background job of sh gets INT and QUIT ignored).
func noIgnored(t *testing.T, f *fake, what string) {
	t.Helper()
	if exec.Command("env", "--default-signal", "true").Run() != nil {
		return // coreutils before 8.31: nothing the hook can do
	}
	ign, err := strconv.ParseUint(detail(t, f)["sigign"], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []unix.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM} {
		if ign&(1<<(uint(sig)-1)) != 0 {
			t.Errorf("%s: linkctl starts with %v ignored (SigIgn %x)", what, sig, ign)
		}
	}
}

func checkCalls(t *testing.T, f *fake, what, want string) {
	t.Helper()
	if strings.HasPrefix(want, "up") {
		defer noIgnored(t, f, what)
	}
	got := f.calls(t)
	switch {
	case want == "" && got != nil:
		t.Errorf("%s: calls = %q, want none", what, got)
	case want != "" && (len(got) != 1 || got[0] != want):
		t.Errorf("%s: calls = %q, want [%s]", what, got, want)
	}
}

// Hooks are installed by copying: they must be executable POSIX sh.
func TestHooksAreExecutableSh(t *testing.T) {
	for _, p := range []string{"ppp/ip-up.d/linkctl", "ppp/ip-down.d/linkctl",
		"NetworkManager/dispatcher.d/90-linkctl", "networkd-dispatcher/linkctl", "ifupdown/linkctl"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o111 == 0 || fi.Mode().Perm()&0o022 != 0 {
			t.Errorf("%s: mode %v, want 0755", p, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(p)
		if !strings.HasPrefix(string(b), "#!/bin/sh\n") {
			t.Errorf("%s does not start with #!/bin/sh", p)
		}
		if out, err := exec.Command("/bin/sh", "-n", p).CombinedOutput(); err != nil {
			t.Errorf("%s: sh -n: %v\n%s", p, err, out)
		}
	}
}
