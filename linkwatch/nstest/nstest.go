// Package nstest gives tests a network namespace of their own holding a
// veth pair, so that link watching is tested against the real kernel
// without touching the host's links. It needs root; without it the test is
// skipped (or fails under CI=true, see internal/testpeer). Addresses come
// from 192.0.2.0/24 (RFC 5737, documentation only).
package nstest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/linkctl/linkctl/internal/testpeer"
)

// NS is a namespace with "up0" (192.0.2.1/24, down at first) and its peer
// "peer0" (192.0.2.2/24, up): setting up0 up brings the pair's carrier up.
type NS struct {
	Name   string
	Handle netns.NsHandle
	NL     *netlink.Handle
	Up0    netlink.Link
	Peer0  netlink.Link
	tb     testing.TB
}

var seq atomic.Int64

// New creates the namespace and the pair; cleanup deletes them.
func New(tb testing.TB) *NS {
	tb.Helper()
	testpeer.NeedRoot(tb)
	name := fmt.Sprintf("linkctl-t-%d-%d", os.Getpid(), seq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		testpeer.Missing(tb, fmt.Sprintf("cannot create a network namespace (ip netns add): %v: %s", err, out))
	}
	tb.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			tb.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns, err := netns.GetFromName(name)
	if err != nil {
		tb.Fatalf("netns.GetFromName(%s): %v", name, err)
	}
	tb.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		tb.Fatalf("netlink.NewHandleAt: %v", err)
	}
	tb.Cleanup(h.Close)
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0"}, PeerName: "peer0"}); err != nil {
		tb.Fatalf("add veth pair: %v", err)
	}
	n := &NS{Name: name, Handle: ns, NL: h, tb: tb}
	for _, l := range []struct {
		name, ip string
		dst      *netlink.Link
	}{{"up0", "192.0.2.1/24", &n.Up0}, {"peer0", "192.0.2.2/24", &n.Peer0}} {
		link, err := h.LinkByName(l.name)
		if err != nil {
			tb.Fatalf("find %s: %v", l.name, err)
		}
		addr, _ := netlink.ParseAddr(l.ip)
		if err := h.AddrAdd(link, addr); err != nil {
			tb.Fatalf("address %s on %s: %v", l.ip, l.name, err)
		}
		*l.dst = link
	}
	if err := h.LinkSetUp(n.Peer0); err != nil {
		tb.Fatalf("peer0 up: %v", err)
	}
	return n
}

// Set brings up0 up or down.
func (n *NS) Set(up bool) {
	n.tb.Helper()
	f := n.NL.LinkSetDown
	if up {
		f = n.NL.LinkSetUp
	}
	if err := f(n.Up0); err != nil {
		n.tb.Fatalf("set up0 up=%v: %v", up, err)
	}
}

// AddTun creates a tun device called name inside the namespace and keeps
// its file open, as pppd or a VPN client would: such a link reports the
// operational state UNKNOWN with LOWER_UP once up, never UP. Closing the
// returned file removes the device.
func (n *NS) AddTun(name string) *os.File {
	n.tb.Helper()
	// The tun device is created in the namespace of the calling thread:
	// switch this (locked) thread into the test's namespace and back.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		n.tb.Fatalf("current netns: %v", err)
	}
	defer orig.Close()
	if err := netns.Set(n.Handle); err != nil {
		n.tb.Fatalf("enter netns: %v", err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic("cannot return to the original network namespace: " + err.Error())
		}
	}()
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		testpeer.Missing(n.tb, "no /dev/net/tun: "+err.Error())
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		n.tb.Fatal(err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		n.tb.Fatalf("TUNSETIFF %s: %v", name, err)
	}
	f := os.NewFile(uintptr(fd), "/dev/net/tun")
	n.tb.Cleanup(func() { f.Close() })
	return f
}

// WaitQuiet waits until no address in the namespace is tentative and no
// rtnetlink message (link, address or route change) has come for quiet:
// after a link goes up the kernel finishes duplicate address detection of
// its IPv6 link-local address one to two seconds later (RFC 4862 section
// 5.4), and a test that counts a watcher's wake-ups must start after that.
// It fails the test if the namespace is not quiet within 10 s.
func (n *NS) WaitQuiet(quiet time.Duration) {
	n.tb.Helper()
	done := make(chan struct{})
	defer close(done)
	msgs := make(chan struct{}, 1)
	note := func() {
		select {
		case msgs <- struct{}{}:
		default:
		}
	}
	lch := make(chan netlink.LinkUpdate, 64)
	ach := make(chan netlink.AddrUpdate, 64)
	rch := make(chan netlink.RouteUpdate, 64)
	errf := func(error) { note() }
	if err := netlink.LinkSubscribeWithOptions(lch, done, netlink.LinkSubscribeOptions{Namespace: &n.Handle, ErrorCallback: errf}); err != nil {
		n.tb.Fatalf("subscribe to links: %v", err)
	}
	if err := netlink.AddrSubscribeWithOptions(ach, done, netlink.AddrSubscribeOptions{Namespace: &n.Handle, ErrorCallback: errf}); err != nil {
		n.tb.Fatalf("subscribe to addresses: %v", err)
	}
	if err := netlink.RouteSubscribeWithOptions(rch, done, netlink.RouteSubscribeOptions{Namespace: &n.Handle, ErrorCallback: errf}); err != nil {
		n.tb.Fatalf("subscribe to routes: %v", err)
	}
	go func() {
		for {
			select {
			case <-lch:
			case <-ach:
			case <-rch:
			case <-done:
				return
			}
			note()
		}
	}()
	limit := time.After(10 * time.Second)
	for {
		select {
		case <-msgs:
		case <-time.After(quiet):
			if !n.tentative() {
				return
			}
		case <-limit:
			n.tb.Fatalf("the namespace never stayed quiet for %v", quiet)
		}
	}
}

// tentative reports whether an address still runs duplicate address
// detection.
func (n *NS) tentative() bool {
	n.tb.Helper()
	addrs, err := n.NL.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		n.tb.Fatalf("list addresses: %v", err)
	}
	for _, a := range addrs {
		if a.Flags&unix.IFA_F_TENTATIVE != 0 {
			return true
		}
	}
	return false
}
