package linkwatch

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/linkctl/linkctl/linkwatch/nstest"
)

type testNS struct{ *nstest.NS }

func newTestNS(tb testing.TB) *testNS { return &testNS{nstest.New(tb)} }

func (n *testNS) set(up bool) { n.Set(up) }

func (n *testNS) watch(tb testing.TB, settle time.Duration) *Watcher {
	tb.Helper()
	w, err := NewWatcher(Options{Watch: []string{"up*"}, Settle: settle, Namespace: &n.Handle,
		ClockJumps: make(chan struct{})})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	return w
}

func wantEdge(t *testing.T, w *Watcher, up bool) Edge {
	t.Helper()
	e := nextEdge(t, w)
	if e.Up != up {
		t.Fatalf("edge = up:%v %q (%s), want up:%v", e.Up, e.Reason, e.Cause, up)
	}
	return e
}

func TestNetnsLinkUpOneEdgeThenDown(t *testing.T) {
	n := newTestNS(t)
	w := n.watch(t, 100*time.Millisecond)
	n.set(true)
	e := wantEdge(t, w, true)
	if e.Reason != "up0 is up with 192.0.2.1/24" || e.Iface != "up0" {
		t.Errorf("reason = %q", e.Reason)
	}
	n.set(false)
	wantEdge(t, w, false) // and no second up edge before it
}

func TestNetnsFiveFlapsWithinSettleOneEdge(t *testing.T) {
	n := newTestNS(t)
	w := n.watch(t, time.Second)
	for range 5 {
		n.set(true)
		n.set(false)
	}
	n.set(true)
	wantEdge(t, w, true)
	n.set(false)
	wantEdge(t, w, false)
}

func TestNetnsAlreadyUpAtStart(t *testing.T) {
	n := newTestNS(t)
	n.set(true)
	// Wait until the kernel shows the carrier, so that the watcher starts
	// with the link truly up.
	r := NetlinkReader{Handle: n.NL}
	for i := 0; ; i++ {
		st, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := Up(st, []string{"up0"}); ok {
			break
		}
		if i > 1000 {
			t.Fatal("veth never came up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	w := n.watch(t, 50*time.Millisecond)
	if e := wantEdge(t, w, true); e.Cause != "start" {
		t.Errorf("cause = %q, want start", e.Cause)
	}
	n.set(false)
	wantEdge(t, w, false)
}

func TestNetnsDefaultRoute(t *testing.T) {
	n := newTestNS(t)
	n.set(true)
	w, err := NewWatcher(Options{Watch: []string{DefaultRoute}, Namespace: &n.Handle, ClockJumps: make(chan struct{})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	// Address, link up, but no default route: not up. Adding the route
	// through the peer makes it up.
	_, all, _ := net.ParseCIDR("0.0.0.0/0")
	if err := n.NL.RouteAdd(&netlink.Route{LinkIndex: n.Up0.Attrs().Index, Dst: all, Gw: net.ParseIP("192.0.2.2")}); err != nil {
		t.Fatalf("add default route: %v", err)
	}
	e := wantEdge(t, w, true)
	if e.Reason != "up0 carries the default route with 192.0.2.1/24" {
		t.Errorf("reason = %q", e.Reason)
	}
}

// TestNetnsNewAddressNewEdge: on a real link that stays up, an address
// replaced (a modem or VPN reconnecting under a new address: the new one
// comes, the old one goes) gives one up edge, not two.
func TestNetnsNewAddressNewEdge(t *testing.T) {
	n := newTestNS(t)
	w := n.watch(t, 100*time.Millisecond)
	n.set(true)
	wantEdge(t, w, true)
	// Another subnet: deleting a primary IPv4 address takes the
	// secondaries of its subnet with it.
	second, _ := netlink.ParseAddr("198.51.100.1/24")
	if err := n.NL.AddrAdd(n.Up0, second); err != nil {
		t.Fatal(err)
	}
	first, _ := netlink.ParseAddr("192.0.2.1/24")
	if err := n.NL.AddrDel(n.Up0, first); err != nil {
		t.Fatal(err)
	}
	if e := wantEdge(t, w, true); e.Cause != "new address" || e.Reason != "up0 is up with 198.51.100.1/24" {
		t.Fatalf("edge %q (%s), want the link up with 198.51.100.1 caused by a new address", e.Reason, e.Cause)
	}
	n.set(false)
	wantEdge(t, w, false) // and no other edge before it
}

// BenchmarkNetnsEdgeLatency measures, over 100 flaps of a veth link, the
// time from the netlink call that brings the link up to the up edge, beyond
// Settle: the watcher's own delay before the pipeline can start.
func BenchmarkNetnsEdgeLatency(b *testing.B) {
	n := newTestNS(b)
	const settle = 20 * time.Millisecond
	w, err := NewWatcher(Options{Watch: []string{"up0"}, Settle: settle, Namespace: &n.Handle, ClockJumps: make(chan struct{})})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	next := func(up bool) Edge {
		select {
		case e := <-w.Edges():
			if e.Up != up {
				b.Fatalf("edge up=%v, want %v", e.Up, up)
			}
			return e
		case <-time.After(10 * time.Second):
			b.Fatal("no edge")
		}
		return Edge{}
	}
	var lat []time.Duration
	for b.Loop() {
		for range 100 {
			t0 := time.Now()
			n.set(true)
			e := next(true)
			lat = append(lat, e.Time.Sub(t0)-settle)
			n.set(false)
			next(false)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "ms-p99")
}

// TestNetnsTunUnknownIsUsable: a tun link (as PPP and VPNs) never reports
// UP; UNKNOWN with LOWER_UP must count, once it has its address.
func TestNetnsTunUnknownIsUsable(t *testing.T) {
	n := newTestNS(t)
	n.AddTun("tun0")
	w, err := NewWatcher(Options{Watch: []string{"tun0"}, Namespace: &n.Handle, ClockJumps: make(chan struct{})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	tun, err := n.NL.LinkByName("tun0")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.NL.LinkSetUp(tun); err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("192.0.2.9/32")
	addr.Peer = &net.IPNet{IP: net.ParseIP("192.0.2.10"), Mask: net.CIDRMask(32, 32)}
	if err := n.NL.AddrAdd(tun, addr); err != nil {
		t.Fatal(err)
	}
	e := wantEdge(t, w, true)
	l, _ := e.State.LinkByName("tun0")
	if l.Oper != "unknown" || e.Reason != "tun0 is up with 192.0.2.9/32" {
		t.Errorf("edge %q with tun0 %+v; want a usable UNKNOWN link", e.Reason, l)
	}
	if err := n.NL.LinkSetDown(tun); err != nil {
		t.Fatal(err)
	}
	wantEdge(t, w, false)
}

// noEdge fails the test if an edge comes within d.
func noEdge(t *testing.T, w *Watcher, d time.Duration, after string) {
	t.Helper()
	select {
	case e := <-w.Edges():
		t.Fatalf("after %s: an edge up:%v %q (%s), want none", after, e.Up, e.Reason, e.Cause)
	case <-time.After(d):
	}
}

// TestNetnsAddressChangesOnAnUpLink: on a real link that stays up, a new
// global address in another prefix is a new session even while the old
// address stays (a VPN or DHCP lease coming back with another address, a
// new IPv6 prefix while the old one lingers deprecated); a lease renewed
// (the same address announced again with new lifetimes), the first IPv6
// address after IPv4, and another address inside a prefix the link has
// are not.
func TestNetnsAddressChangesOnAnUpLink(t *testing.T) {
	n := newTestNS(t)
	n.set(true)
	w := n.watch(t, 100*time.Millisecond)
	wantEdge(t, w, true)
	n.WaitQuiet(300 * time.Millisecond)
	const wait = 500 * time.Millisecond // five settle periods
	renew, _ := netlink.ParseAddr("192.0.2.1/24")
	renew.ValidLft, renew.PreferedLft = 600, 600
	if err := n.NL.AddrReplace(n.Up0, renew); err != nil {
		t.Fatal(err)
	}
	noEdge(t, w, wait, "the lease was renewed")
	for _, a := range []string{"2001:db8::1/64", "2001:db8::2/128"} {
		addr, _ := netlink.ParseAddr(a)
		addr.Flags = unix.IFA_F_NODAD // usable at once: no duplicate address detection to wait for
		if err := n.NL.AddrAdd(n.Up0, addr); err != nil {
			t.Fatal(err)
		}
		noEdge(t, w, wait, "adding "+a)
	}
	second, _ := netlink.ParseAddr("198.51.100.1/24")
	if err := n.NL.AddrAdd(n.Up0, second); err != nil {
		t.Fatal(err)
	}
	if e := wantEdge(t, w, true); e.Cause != "new address" {
		t.Fatalf("edge %q (%s), want one caused by a new address", e.Reason, e.Cause)
	}
	n.set(false)
	wantEdge(t, w, false) // and no other edge before it
}
