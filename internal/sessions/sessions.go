// Package sessions counts the inbound TCP sessions open on local ports,
// asking the kernel through netlink sock_diag (the dump `ss -tn state
// established` shows). It is the one counter behind both uses of that
// question: the etrn stage's quiet wait (a relay answering our ETRN, RFC
// 1985, delivers over new inbound SMTP connections) and the drop stage
// (the link is never dropped while such a session is open).
//
// An inbound session is an ESTABLISHED socket whose local (source) port is
// one of the given ports; our own outbound connections to a remote port 25
// have an ephemeral local port and are not counted. Loopback peers are
// left out unless asked for: local submissions and fetch's own deliveries
// to 127.0.0.1:25 are not mail arriving over the link.
//
// IPv4 and IPv6 are both asked. A kernel without IPv6 answers the IPv6
// dump with ENOENT (no sock_diag handler for the family) or EAFNOSUPPORT:
// that host has no IPv6 sessions, and the count is the IPv4 one. Any other
// error, for either family, is returned: a count that might have missed
// open sessions is not a count, and both callers then keep the link rather
// than cut a delivery.
package sessions

import (
	"errors"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/linkctl/linkctl/internal/errkind"
)

// tcpEstablished is TCP_ESTABLISHED in the kernel's tcp_states.h.
const tcpEstablished = 1

// dumpAttempts bounds the retries of a dump the kernel reports as
// interrupted (NLM_F_DUMP_INTR: the socket table changed while it was
// read, so the result may miss sockets).
const dumpAttempts = 3

// Inbound counts the ESTABLISHED inbound TCP sessions on ports, over IPv4
// and IPv6, through h (nil: the current network namespace). Loopback (and
// unspecified) peers count only when countLoopback is set.
func Inbound(h *netlink.Handle, ports []int, countLoopback bool) (int, error) {
	if h == nil {
		h = &netlink.Handle{}
	}
	return count(h.SocketDiagTCP, ports, countLoopback)
}

// count is Inbound over any dump function, so that tests can make one
// family fail.
func count(dump func(family uint8) ([]*netlink.Socket, error), ports []int, countLoopback bool) (int, error) {
	n := 0
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := dumpFamily(dump, fam)
		if err != nil {
			if fam == unix.AF_INET6 && noIPv6(err) {
				continue
			}
			return 0, errkind.Wrap(errkind.Internal, true, "count inbound TCP sessions (sock_diag "+familyName(fam)+")", err)
		}
		n += countSockets(socks, ports, countLoopback)
	}
	return n, nil
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

// noIPv6 reports whether err says the kernel has no IPv6 sockets to dump:
// ENOENT when no sock_diag handler exists for AF_INET6 (a kernel built
// without IPv6), EAFNOSUPPORT or EPROTONOSUPPORT from a kernel refusing
// the family.
func noIPv6(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EPROTONOSUPPORT)
}

func familyName(fam uint8) string {
	if fam == unix.AF_INET6 {
		return "IPv6"
	}
	return "IPv4"
}

func countSockets(socks []*netlink.Socket, ports []int, countLoopback bool) int {
	n := 0
	for _, s := range socks {
		if s == nil || s.State != tcpEstablished || !slices.Contains(ports, int(s.ID.SourcePort)) {
			continue
		}
		if !countLoopback && (s.ID.Destination.IsLoopback() || s.ID.Destination.IsUnspecified()) {
			continue
		}
		n++
	}
	return n
}
