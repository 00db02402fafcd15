package linkwatch

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// idle is how long the storm tests let watchers sit: the storm they guard
// against ran at ~400 resubscriptions a second, so a few seconds of quiet
// are a clear verdict.
const idle = 3 * time.Second

// TestNetnsTwoWatchersIdleStayQuiet: two watchers (two daemons, or a test
// next to a daemon) in one namespace, link up, nothing changing. Each
// subscribes once and reads the state only when it starts: neither one's
// subscription or reads set the other off.
func TestNetnsTwoWatchersIdleStayQuiet(t *testing.T) {
	n := newTestNS(t)
	n.set(true)
	n.WaitQuiet(300 * time.Millisecond)
	a := n.watch(t, 50*time.Millisecond)
	wantEdge(t, a, true)
	b := n.watch(t, 50*time.Millisecond)
	wantEdge(t, b, true)
	a0, b0 := a.Counters(), b.Counters()
	time.Sleep(idle)
	for _, c := range []struct {
		name   string
		before Counters
		w      *Watcher
	}{{"first", a0, a}, {"second", b0, b}} {
		now := c.w.Counters()
		if now.Subscriptions != 1 || now.Deaths != 0 {
			t.Errorf("%s watcher: %d subscriptions, %d deaths; want 1 and 0 (noted %d errors)",
				c.name, now.Subscriptions, now.Deaths, now.Noted)
		}
		if reads := now.Reads - c.before.Reads; reads > 0 {
			t.Errorf("%s watcher: %d state re-reads in %v of idling, want none", c.name, reads, idle)
		}
	}
}

// TestNetnsForeignGroupRequestsAreHarmless: another program in the
// namespace that sends requests to the rtnetlink group addresses (as
// vishvananda/netlink does for ListExisting, so an older linkctl does at
// every resubscription) makes the kernel multicast the requests to our
// sockets, where the library reports "Wrong sender portid". The watcher
// notes them and goes on: no resubscription, no re-read, no edge.
func TestNetnsForeignGroupRequestsAreHarmless(t *testing.T) {
	n := newTestNS(t)
	n.set(true)
	n.WaitQuiet(300 * time.Millisecond)
	w := n.watch(t, 50*time.Millisecond)
	wantEdge(t, w, true)
	c0 := w.Counters()
	for range 50 {
		done := make(chan struct{})
		lch := make(chan netlink.LinkUpdate, 1024)
		ach := make(chan netlink.AddrUpdate, 1024)
		rch := make(chan netlink.RouteUpdate, 1024)
		if err := netlink.LinkSubscribeWithOptions(lch, done, netlink.LinkSubscribeOptions{Namespace: &n.Handle, ListExisting: true}); err != nil {
			t.Fatal(err)
		}
		if err := netlink.AddrSubscribeWithOptions(ach, done, netlink.AddrSubscribeOptions{Namespace: &n.Handle, ListExisting: true}); err != nil {
			t.Fatal(err)
		}
		if err := netlink.RouteSubscribeWithOptions(rch, done, netlink.RouteSubscribeOptions{Namespace: &n.Handle, ListExisting: true}); err != nil {
			t.Fatal(err)
		}
		close(done)
	}
	time.Sleep(idle)
	c := w.Counters()
	if c.Noted == c0.Noted {
		t.Fatal("the foreign requests never reached the watcher's sockets: this test tests nothing")
	}
	if c.Subscriptions != 1 || c.Deaths != 0 || c.Reads != c0.Reads {
		t.Errorf("after %d foreign messages: %d subscriptions, %d deaths, %d re-reads; want 1, 0, 0",
			c.Noted-c0.Noted, c.Subscriptions, c.Deaths, c.Reads-c0.Reads)
	}
	select {
	case e := <-w.Edges():
		t.Errorf("an edge from foreign requests: %+v", e)
	default:
	}
}

// TestNetnsOurNetlinkUseIsSilent: what the watcher itself does with
// netlink (a state read: link, address and route dumps; a subscription)
// puts no message on any rtnetlink group, so it cannot wake another
// daemon. An observer subscribed to the groups counts every message and
// every error.
func TestNetnsOurNetlinkUseIsSilent(t *testing.T) {
	n := newTestNS(t)
	n.set(true)
	n.WaitQuiet(300 * time.Millisecond)
	var seen atomic.Int64
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	count := func(error) { seen.Add(1) }
	lch := make(chan netlink.LinkUpdate, 1024)
	ach := make(chan netlink.AddrUpdate, 1024)
	rch := make(chan netlink.RouteUpdate, 1024)
	if err := netlink.LinkSubscribeWithOptions(lch, done, netlink.LinkSubscribeOptions{Namespace: &n.Handle, ErrorCallback: count}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrSubscribeWithOptions(ach, done, netlink.AddrSubscribeOptions{Namespace: &n.Handle, ErrorCallback: count}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.RouteSubscribeWithOptions(rch, done, netlink.RouteSubscribeOptions{Namespace: &n.Handle, ErrorCallback: count}); err != nil {
		t.Fatal(err)
	}
	drain := func() int {
		k := 0
		for {
			select {
			case <-lch:
			case <-ach:
			case <-rch:
			default:
				return k
			}
			k++
		}
	}

	r := NetlinkReader{Handle: n.NL}
	for range 20 {
		if _, err := r.Read(); err != nil {
			t.Fatal(err)
		}
	}
	s := NetlinkSubscriber{Namespace: &n.Handle}
	for range 20 {
		d := make(chan struct{})
		if _, err := s.Subscribe(d, func() {}); err != nil {
			t.Fatal(err)
		}
		close(d)
	}
	time.Sleep(300 * time.Millisecond)
	if k, e := drain(), seen.Load(); k != 0 || e != 0 {
		t.Errorf("20 reads and 20 subscriptions put %d updates and %d foreign or error messages on the groups, want none", k, e)
	}
}
