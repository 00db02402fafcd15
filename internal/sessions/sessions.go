// Package sessions lists the established TCP sessions that can still
// carry mail over the link, from the kernel's socket table (netlink
// sock_diag, the dump `ss -tn state established` shows), for IPv4 and
// IPv6. It is the one inbound-session counter of linkctl: the etrn stage
// watches the relays' deliveries with it, the drop stage what can still
// cause traffic.
//
// A Filter picks sessions by our local port (inbound: a relay delivering
// to our SMTP port after ETRN, RFC 1985) or by the peer's port (outbound:
// our MTA delivering to a remote SMTP port). Loopback peers are left out
// unless Filter.Loopback is set: local submissions and fetch's own
// deliveries to 127.0.0.1 never cross the link. The kernel call is
// separate from the pure Match, which tests drive with made-up sockets.
package sessions

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Session is one established TCP session.
type Session struct {
	Local netip.AddrPort
	Peer  netip.AddrPort
}

// Filter says which sessions count. A session counts when its local port
// is one of LocalPorts or its peer's port is one of PeerPorts.
type Filter struct {
	LocalPorts []int // inbound: our listening SMTP ports
	PeerPorts  []int // outbound: remote SMTP ports (25, 465, 587)
	Loopback   bool  // count loopback peers too (tests, the link simulator)
}

// Empty reports whether f can match nothing.
func (f Filter) Empty() bool { return len(f.LocalPorts) == 0 && len(f.PeerPorts) == 0 }

// Lister lists the sessions f picks; List is the kernel's, tests swap it.
type Lister func(f Filter) ([]Session, error)

// tcpEstablished is TCP_ESTABLISHED in the kernel's tcp_states.h.
const tcpEstablished = 1

// List asks the kernel for the sessions f picks, in the current network
// namespace.
func List(f Filter) ([]Session, error) { return ListIn(nil, f) }

// ListIn is List through h (a handle in another network namespace); nil
// is the current one. A host without IPv6 has only IPv4 sessions.
func ListIn(h *netlink.Handle, f Filter) ([]Session, error) {
	if h == nil {
		h = &netlink.Handle{}
	}
	if f.Empty() {
		return nil, nil
	}
	v4, err := h.SocketDiagTCP(unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("sock_diag TCP/IPv4: %w", err)
	}
	v6, err := h.SocketDiagTCP(unix.AF_INET6)
	if err != nil && !errors.Is(err, unix.EAFNOSUPPORT) && !errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("sock_diag TCP/IPv6: %w", err)
	}
	return Match(append(v4, v6...), f), nil
}

// Match keeps the established sockets f picks.
func Match(socks []*netlink.Socket, f Filter) []Session {
	var out []Session
	for _, s := range socks {
		if s == nil || s.State != tcpEstablished {
			continue
		}
		local, lok := netip.AddrFromSlice(s.ID.Source)
		peer, pok := netip.AddrFromSlice(s.ID.Destination)
		if !lok || !pok {
			continue
		}
		local, peer = local.Unmap(), peer.Unmap()
		if !slices.Contains(f.LocalPorts, int(s.ID.SourcePort)) && !slices.Contains(f.PeerPorts, int(s.ID.DestinationPort)) {
			continue
		}
		if !f.Loopback && (peer.IsLoopback() || peer.IsUnspecified()) {
			continue
		}
		out = append(out, Session{Local: netip.AddrPortFrom(local, s.ID.SourcePort), Peer: netip.AddrPortFrom(peer, s.ID.DestinationPort)})
	}
	return out
}
