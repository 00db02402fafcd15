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
//
// IPv4 and IPv6 are both asked. A kernel without IPv6 answers the IPv6
// dump with ENOENT (no sock_diag handler for the family), EAFNOSUPPORT or
// EPROTONOSUPPORT: that host has no IPv6 sessions. Any other error, for
// either family, is returned (temporary, Internal): a list that might miss
// open sessions is not a list, and both callers then keep the link rather
// than cut a delivery. A dump the kernel flags as interrupted (the socket
// table changed while it was read) is asked again, a bounded number of
// times.
package sessions

import (
	"errors"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/linkctl/linkctl/internal/errkind"
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
	return list(h.SocketDiagTCP, f)
}

// dumpAttempts bounds the retries of a dump the kernel reports as
// interrupted (NLM_F_DUMP_INTR).
const dumpAttempts = 3

// list is ListIn over any dump function, so that tests can make one
// family fail.
func list(dump func(family uint8) ([]*netlink.Socket, error), f Filter) ([]Session, error) {
	if f.Empty() {
		return nil, nil
	}
	var all []*netlink.Socket
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := dumpFamily(dump, fam)
		if err != nil {
			if fam == unix.AF_INET6 && noIPv6(err) {
				continue
			}
			name := "IPv4"
			if fam == unix.AF_INET6 {
				name = "IPv6"
			}
			return nil, errkind.WrapTemporary(errkind.Internal, "list TCP sessions (sock_diag "+name+")", err)
		}
		all = append(all, socks...)
	}
	return Match(all, f), nil
}

func dumpFamily(dump func(uint8) ([]*netlink.Socket, error), fam uint8) ([]*netlink.Socket, error) {
	var err error
	for range dumpAttempts {
		var socks []*netlink.Socket
		socks, err = dump(fam)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return socks, err
		}
	}
	return nil, err
}

// noIPv6 reports whether err says the kernel has no IPv6 sockets to dump.
func noIPv6(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EPROTONOSUPPORT)
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
