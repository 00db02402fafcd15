package sessions

import (
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

func sock(state uint8, src string, sport uint16, dst string, dport uint16) *netlink.Socket {
	s := &netlink.Socket{State: state}
	s.ID.Source = net.ParseIP(src)
	s.ID.SourcePort = sport
	s.ID.Destination = net.ParseIP(dst)
	s.ID.DestinationPort = dport
	return s
}

func TestMatch(t *testing.T) {
	socks := []*netlink.Socket{
		sock(tcpEstablished, "192.0.2.1", 25, "198.51.100.7", 40001),  // a relay delivering to us
		sock(tcpEstablished, "127.0.0.1", 25, "127.0.0.1", 40002),     // a local submission
		sock(10, "0.0.0.0", 25, "0.0.0.0", 0),                         // the listener
		sock(tcpEstablished, "192.0.2.1", 51000, "203.0.113.9", 25),   // our MTA delivering out
		sock(tcpEstablished, "192.0.2.1", 51001, "203.0.113.9", 993),  // an IMAP IDLE: not mail in flight
		sock(tcpEstablished, "2001:db8::1", 25, "2001:db8::2", 40003), // IPv6 relay
		nil,
	}
	for _, tc := range []struct {
		name string
		f    Filter
		want []string
	}{
		{"inbound", Filter{LocalPorts: []int{25}}, []string{"198.51.100.7:40001", "[2001:db8::2]:40003"}},
		{"inbound+loopback", Filter{LocalPorts: []int{25}, Loopback: true}, []string{"198.51.100.7:40001", "127.0.0.1:40002", "[2001:db8::2]:40003"}},
		{"outbound", Filter{PeerPorts: []int{25, 465, 587}}, []string{"203.0.113.9:25"}},
		{"none", Filter{}, nil},
	} {
		got := Match(socks, tc.f)
		if len(got) != len(tc.want) {
			t.Errorf("%s: %v, want peers %v", tc.name, got, tc.want)
			continue
		}
		for i, s := range got {
			if s.Peer.String() != tc.want[i] {
				t.Errorf("%s: session %d peer %v, want %s", tc.name, i, s.Peer, tc.want[i])
			}
		}
	}
}

// TestListLive opens a real loopback session and finds it from both
// ends: by our listening port (inbound) and by the peer's port
// (outbound). It skips where sock_diag is not allowed.
func TestListLive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := <-accepted
	defer sc.Close()
	in, err := List(Filter{LocalPorts: []int{port}, Loopback: true})
	if err != nil {
		t.Skipf("sock_diag not available here: %v", err)
	}
	want := netip.MustParseAddrPort(c.LocalAddr().String())
	if len(in) != 1 || in[0].Peer != want {
		t.Fatalf("inbound on port %d: %v, want one from %v", port, in, want)
	}
	out, err := List(Filter{PeerPorts: []int{port}, Loopback: true})
	if err != nil || len(out) != 1 || out[0].Peer.Port() != uint16(port) {
		t.Fatalf("outbound to port %d: %v, %v; want one", port, out, err)
	}
	if in, _ := List(Filter{LocalPorts: []int{port}}); len(in) != 0 {
		t.Fatalf("loopback peers counted without Loopback: %v", in)
	}
	c.Close()
	sc.Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		in, _ := List(Filter{LocalPorts: []int{port}, Loopback: true})
		if len(in) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session on port %s still listed after close: %v", strconv.Itoa(port), in)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
