package meter

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	"github.com/linkctl/linkctl/internal/testpeer"
)

// privateBus starts a dbus-daemon of the test's own (its own config,
// socket in a temp dir) and returns its address.
func privateBus(t *testing.T) string {
	t.Helper()
	bin := testpeer.NeedBinary(t, "dbus-daemon", "dbus-daemon")
	dir := t.TempDir()
	conf := filepath.Join(dir, "bus.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`, dir)), 0o600)
	cmd := exec.Command(bin, "--config-file="+conf, "--print-address", "--nofork", "--nopidfile")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case addr := <-line:
		if addr == "" {
			t.Fatal("dbus-daemon printed no address")
		}
		return addr
	case <-time.After(10 * time.Second):
		t.Fatal("dbus-daemon did not start")
	}
	return ""
}

// fakeNM is NetworkManager's root object: GetDeviceByIpIface.
type fakeNM struct{ devs map[string]dbus.ObjectPath }

func (n fakeNM) GetDeviceByIpIface(iface string) (dbus.ObjectPath, *dbus.Error) {
	if p, ok := n.devs[iface]; ok {
		return p, nil
	}
	return "", dbus.NewError("org.freedesktop.NetworkManager.UnknownDevice", []any{"No device found for the requested iface."})
}

// serveFakeNM exports org.freedesktop.NetworkManager on the bus with one
// device per entry of metered, each with its Device.Metered property.
func serveFakeNM(t *testing.T, addr string, metered map[string]NMMetered) {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("fake NM: connect: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	nm := fakeNM{devs: map[string]dbus.ObjectPath{}}
	i := 0
	for iface, m := range metered {
		i++
		p := dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/NetworkManager/Devices/%d", i))
		nm.devs[iface] = p
		if _, err := prop.Export(conn, p, prop.Map{nmService + ".Device": {
			"Metered":   {Value: uint32(m), Emit: prop.EmitTrue},
			"Interface": {Value: iface, Emit: prop.EmitTrue},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.Export(nm, nmPath, nmService); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(nmService, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("fake NM: request name: %v, %v", reply, err)
	}
}

// metered: auto follows NetworkManager's Device.Metered over a real
// D-Bus: a guessed-metered LTE modem gets its budget, an unmetered
// Ethernet does not, an unknown device and a bus without NetworkManager
// mean unmetered, said why.
func TestNetworkManagerOverDBus(t *testing.T) {
	addr := privateBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nm := NM{Address: addr}
	if _, err := nm.Metered(ctx, "wwan0"); err == nil {
		t.Fatal("no NetworkManager on the bus yet, but an answer")
	}
	serveFakeNM(t, addr, map[string]NMMetered{"wwan0": NMGuessYes, "eth0": NMNo})
	for iface, want := range map[string]NMMetered{"wwan0": NMGuessYes, "eth0": NMNo} {
		got, err := nm.Metered(ctx, iface)
		if err != nil || got != want {
			t.Errorf("Metered(%s) = %v, %v; want %v", iface, got, err, want)
		}
	}

	e := newEnv(t, Policy{Match: "wwan*", Metered: MeteredAuto, Run: 1000}, Policy{Match: "eth*", Metered: MeteredAuto, Run: 1000})
	e.nm = nm.Metered
	r := e.begin(t, "wwan0")
	if m, why := r.Metered(); !m || why != "NetworkManager: metered (guessed)" {
		t.Errorf("wwan0: metered %v (%s)", m, why)
	}
	if ok, _ := r.Admit(5000); ok {
		t.Error("wwan0 is metered, yet the run budget let 5000 bytes through")
	}
	r.End()
	r = e.begin(t, "eth0")
	if m, _ := r.Metered(); m {
		t.Error("eth0: NetworkManager says not metered, yet metered")
	}
	r.End()
	if _, err := nm.Metered(ctx, "wlan9"); err == nil || !strings.Contains(err.Error(), "No device found") {
		t.Errorf("unknown device: %v", err)
	}
	st, err := e.meter(t).Status(ctx)
	if err != nil || len(st) != 2 || !st[0].IsMetered || st[0].Why != "wwan0: NetworkManager: metered (guessed)" || st[1].IsMetered {
		t.Errorf("status %+v, %v", st, err)
	}
}
