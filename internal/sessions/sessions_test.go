package sessions

import (
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/linkctl/linkctl/internal/errkind"
)

func sock(state uint8, lport uint16, peer string) *netlink.Socket {
	return &netlink.Socket{State: state, ID: netlink.SocketID{SourcePort: lport, Destination: net.ParseIP(peer)}}
}

func TestCountSockets(t *testing.T) {
	socks := []*netlink.Socket{
		sock(tcpEstablished, 25, "192.0.2.7"),
		sock(tcpEstablished, 25, "2001:db8::1"),
		sock(tcpEstablished, 25, "127.0.0.1"),
		sock(tcpEstablished, 25, "::ffff:127.0.0.1"),
		sock(tcpEstablished, 25, "::1"),
		sock(tcpEstablished, 587, "192.0.2.8"),
		sock(10 /* LISTEN */, 25, "0.0.0.0"),
		sock(8 /* CLOSE_WAIT */, 25, "192.0.2.9"),
		sock(tcpEstablished, 40000, "192.0.2.25"), // our outbound session to someone's port 25
		nil,
	}
	if n := countSockets(socks, []int{25}, false); n != 2 {
		t.Errorf("port 25, no loopback: %d, want 2", n)
	}
	if n := countSockets(socks, []int{25}, true); n != 5 {
		t.Errorf("port 25 with loopback: %d, want 5", n)
	}
	if n := countSockets(socks, []int{25, 587}, false); n != 3 {
		t.Errorf("ports 25+587: %d, want 3", n)
	}
}

// TestIPv6Errors: a host without IPv6 counts its IPv4 sessions; any other
// failure of either dump is an error (temporary, Internal), never a count
// that may have missed a relay still delivering. Before this package the
// etrn quiet wait ignored every IPv6 error while the drop stage failed on
// every one.
func TestIPv6Errors(t *testing.T) {
	v4 := []*netlink.Socket{sock(tcpEstablished, 25, "192.0.2.7")}
	v6 := []*netlink.Socket{sock(tcpEstablished, 25, "2001:db8::1")}
	tests := []struct {
		name         string
		v4err, v6err error
		want         int
		wantErr      string // "" = no error
	}{
		{"both answer", nil, nil, 2, ""},
		{"kernel without IPv6 (ENOENT)", nil, syscall.ENOENT, 1, ""},
		{"IPv6 family refused (EAFNOSUPPORT)", nil, syscall.EAFNOSUPPORT, 1, ""},
		{"IPv6 dump fails (ENOBUFS)", nil, syscall.ENOBUFS, 0, "sock_diag IPv6"},
		{"IPv6 dump not permitted (EPERM)", nil, syscall.EPERM, 0, "sock_diag IPv6"},
		{"IPv4 dump fails", syscall.ENOBUFS, nil, 0, "sock_diag IPv4"},
		{"IPv4 ENOENT is not 'no IPv6'", syscall.ENOENT, nil, 0, "sock_diag IPv4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dump := func(fam uint8) ([]*netlink.Socket, error) {
				if fam == unix.AF_INET6 {
					if tt.v6err != nil {
						return nil, tt.v6err
					}
					return v6, nil
				}
				if tt.v4err != nil {
					return nil, tt.v4err
				}
				return v4, nil
			}
			n, err := count(dump, []int{25}, false)
			if tt.wantErr == "" {
				if err != nil || n != tt.want {
					t.Fatalf("count = %d, %v; want %d, no error", n, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("count = %d, %v; want an error naming %q", n, err, tt.wantErr)
			}
			if errkind.KindOf(err) != errkind.Internal || !errkind.IsTemporary(err) {
				t.Errorf("err %v: kind %v temp %v, want Internal, temporary", err, errkind.KindOf(err), errkind.IsTemporary(err))
			}
		})
	}
}

// TestDumpInterruptedIsRetried: a dump the kernel flags as interrupted
// may miss sockets, so it is asked again; one that stays interrupted is an
// error, not a partial count.
func TestDumpInterruptedIsRetried(t *testing.T) {
	calls := 0
	flaky := func(fam uint8) ([]*netlink.Socket, error) {
		calls++
		if fam == unix.AF_INET && calls == 1 {
			return nil, netlink.ErrDumpInterrupted
		}
		if fam == unix.AF_INET {
			return []*netlink.Socket{sock(tcpEstablished, 25, "192.0.2.7")}, nil
		}
		return nil, nil
	}
	if n, err := count(flaky, []int{25}, false); err != nil || n != 1 {
		t.Errorf("interrupted once: count = %d, %v; want 1", n, err)
	}
	always := func(uint8) ([]*netlink.Socket, error) {
		return []*netlink.Socket{sock(tcpEstablished, 25, "192.0.2.7")}, netlink.ErrDumpInterrupted
	}
	if n, err := count(always, []int{25}, false); err == nil {
		t.Errorf("always interrupted: count = %d, no error", n)
	}
}

// TestInboundLive asks the kernel for real loopback sessions, over IPv4
// and (where the host has it) IPv6.
func TestInboundLive(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "tcp6" {
				addr = "[::1]:0"
			}
			ln, err := net.Listen(network, addr)
			if err != nil {
				t.Skipf("no %s loopback here: %v", network, err)
			}
			defer ln.Close()
			port := ln.Addr().(*net.TCPAddr).Port
			c, err := net.Dial(network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			n, err := Inbound(nil, []int{port}, true)
			if err != nil {
				t.Skipf("sock_diag not available here: %v", err)
			}
			if n != 1 {
				t.Errorf("with loopback: %d sessions, want 1", n)
			}
			if n, _ := Inbound(nil, []int{port}, false); n != 0 {
				t.Errorf("without loopback: %d sessions, want 0", n)
			}
		})
	}
}
