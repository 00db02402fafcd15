package meter

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/linkctl/linkctl/linkwatch/nstest"
)

// inNS runs fn on a thread switched into ns (sockets made there stay in
// ns) and switches back.
func inNS(t *testing.T, ns netns.NsHandle, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic("cannot return to the original network namespace: " + err.Error())
		}
	}()
	fn()
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
}

// The meter's run figure is the link's own counters: bytes moved over a
// real veth link (between two namespaces of the test) are counted from
// the kernel's statistics of the link, and linkctl's own count of the
// payload is kept beside them; the difference is the TCP/IP overhead.
func TestLinkCountersVeth(t *testing.T) {
	ns := nstest.New(t)
	far := fmt.Sprintf("%s-far", ns.Name)
	ip(t, "netns", "add", far)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", far).Run() })
	ip(t, "-n", ns.Name, "link", "set", "peer0", "netns", far)
	ip(t, "-n", far, "addr", "add", "192.0.2.2/24", "dev", "peer0")
	ip(t, "-n", far, "link", "set", "peer0", "up")
	ns.Set(true)
	ns.WaitQuiet(500 * time.Millisecond)
	farNS, err := netns.GetFromName(far)
	if err != nil {
		t.Fatal(err)
	}
	defer farNS.Close()

	var ln net.Listener
	inNS(t, farNS, func() {
		ln, err = net.Listen("tcp", "192.0.2.2:0")
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const down, up = 2 << 20, 64 << 10 // the far side sends 2 MiB, we send 64 KiB
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.CopyN(io.Discard, c, up)
		c.Write(make([]byte, down))
	}()

	counters := func(iface string) (Counters, error) { return CountersOf(ns.NL.LinkByName(iface)) }
	dir := t.TempDir()
	m := New(Options{StateDir: dir, Policies: []Policy{{Match: "up*", Metered: MeteredYes, Month: 1 << 30}},
		LinkCounters: counters, Checkpoint: -1})
	before, err := counters("up0")
	if err != nil {
		t.Fatal(err)
	}
	run, err := m.Begin(context.Background(), "up0", "test")
	if err != nil {
		t.Fatal(err)
	}
	var c net.Conn
	inNS(t, ns.Handle, func() {
		c, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	})
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(make([]byte, up)); err != nil {
		t.Fatal(err)
	}
	got, err := io.Copy(io.Discard, c)
	c.Close()
	if err != nil || got != down {
		t.Fatalf("received %d, %v", got, err)
	}
	time.Sleep(200 * time.Millisecond) // the FIN/ACKs
	run.Count("test", "", up+down)
	rec, err := run.End()
	if err != nil {
		t.Fatal(err)
	}
	after, _ := counters("up0")
	kernel := int64(after.Rx-before.Rx) + int64(after.Tx-before.Tx)
	if !rec.LinkOK || rec.Bytes != int64(rec.LinkRx+rec.LinkTx) {
		t.Fatalf("record %+v: want the run's bytes from the link counters", rec)
	}
	if rec.Bytes > kernel || rec.Bytes < kernel-2000 {
		t.Errorf("meter counted %d bytes, the kernel's counters moved %d around the run", rec.Bytes, kernel)
	}
	own := int64(up + down)
	if rec.Bytes < own || rec.Bytes > own+own/10 {
		t.Errorf("link counters %d for %d bytes of payload: more than 10%% apart", rec.Bytes, own)
	}
	t.Logf("payload (linkctl's own count) %d bytes; link counters %d (rx %d, tx %d); difference %d bytes (%.2f%%)",
		own, rec.Bytes, rec.LinkRx, rec.LinkTx, rec.Bytes-own, 100*float64(rec.Bytes-own)/float64(own))
	st, err := m.Status(context.Background())
	if err != nil || st[0].Spent.Month != rec.Bytes {
		t.Errorf("status %+v, %v: want the month to hold the run's %d", st, err, rec.Bytes)
	}
}
