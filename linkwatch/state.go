// Package linkwatch answers "is the uplink usable right now?" and tells the
// daemon when the answer changes.
//
// The flow:
//
//  1. [Read] takes a [State] snapshot from netlink: every link with its flags
//     and operational state, every address, and the default routes (IPv4 and
//     IPv6, main table).
//  2. [Up] is a pure predicate over a State and the configured watch list
//     (interface names, globs such as wwan*, or "default-route"): a watched
//     link is usable when it is administratively up and either
//     operationally UP or UNKNOWN with RUNNING/LOWER_UP (PPP and tun never
//     report UP), has a global address that finished duplicate address
//     detection, and, when chosen through "default-route", carries the
//     default route. Up is table-tested without a kernel. [UsableIface]
//     names the usable watched link: the link a run started by hand is
//     metered on (package assemble).
//  3. The [Watcher] subscribes to link, address and route updates. Netlink
//     messages are only hints: they are coalesced into a channel of one, the
//     whole State is re-read, and Up is evaluated again. An up edge is
//     reported only after the link stayed usable for Settle (flaps within
//     Settle give one edge); a down edge is reported at once. Only a dead
//     socket (a failed receive, ENOBUFS included, closes the update
//     channel) makes the watcher resubscribe: it re-reads at once and
//     resubscribes after a capped exponential backoff with jitter. Errors
//     the subscription survives are not deaths: a message from another
//     program's port ("Wrong sender portid", which a second daemon's
//     requests used to cause) is ignored, others give a re-read. Neither a
//     subscription nor a re-read sends anything to the rtnetlink groups, so
//     two idle daemons in one namespace do not wake each other.
//     A wall-clock jump (resume from suspend) is a possible up edge: the
//     kernel may still show the link up while the session behind it is new.
//     So is a link that stays up while it changes its identity: an address
//     it had is gone, a new global address appears in a family it already
//     had an address in and outside that address's prefix (an LTE modem,
//     a VPN or a DHCP lease coming back with another address, a new IPv6
//     prefix while the old one is still deprecated), or the default route
//     moves to another link. Connections bound to the old address are
//     dead, and the mail window is a new one. IPv6 temporary addresses,
//     link-local ones, the first address of a family (IPv6 after IPv4 on
//     PPP), another address inside a prefix the link has (a DHCPv6 /128
//     next to a SLAAC /64), and an address announced again unchanged (a
//     lease renewed) are not.
//     The jump is noticed through a timerfd with TFD_TIMER_CANCEL_ON_SET, so
//     an idle daemon sleeps in the kernel and wakes only when something
//     happens: there is no polling timer.
//
// linkwatch only watches: hanging up at the end of a run is the drop
// stage's job (package drop).
package linkwatch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/linkctl/linkctl/internal/errkind"
)

// Link is one network interface as netlink reports it.
type Link struct {
	Index    int
	Name     string
	AdminUp  bool   // IFF_UP: configured up
	Running  bool   // IFF_RUNNING
	LowerUp  bool   // IFF_LOWER_UP: carrier
	Loopback bool   // IFF_LOOPBACK
	Oper     string // RFC 2863 operational state: "up", "down", "unknown", "dormant", ...
}

// Addr is one address on a link.
type Addr struct {
	Link      int // interface index
	Prefix    netip.Prefix
	Tentative bool // IPv6 duplicate address detection not finished (or failed): unusable
	Temporary bool // IPv6 temporary address (RFC 8981): rotated by design, so not the session's identity
}

// Route is a default route (0.0.0.0/0 or ::/0) in the main table.
type Route struct {
	Links   []int      // outgoing interfaces (several for a multipath route)
	Gateway netip.Addr // zero for a point-to-point route
	V6      bool
}

// State is a snapshot of the links, addresses and default routes.
type State struct {
	Links    []Link
	Addrs    []Addr
	Defaults []Route
}

// LinkByName returns the link called name.
func (s State) LinkByName(name string) (Link, bool) {
	for _, l := range s.Links {
		if l.Name == name {
			return l, true
		}
	}
	return Link{}, false
}

// String is a compact one-line form for debug logs.
func (s State) String() string {
	var b strings.Builder
	for i, l := range s.Links {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s %s", l.Name, l.Oper)
		if l.AdminUp {
			b.WriteString(",UP")
		}
		if l.Running {
			b.WriteString(",RUNNING")
		}
		if l.LowerUp {
			b.WriteString(",LOWER_UP")
		}
		for _, a := range s.Addrs {
			if a.Link == l.Index {
				b.WriteString(" " + a.Prefix.String())
				if a.Tentative {
					b.WriteString("(tentative)")
				}
			}
		}
		for _, r := range s.Defaults {
			for _, ix := range r.Links {
				if ix == l.Index {
					b.WriteString(" default")
					if r.V6 {
						b.WriteString("6")
					}
				}
			}
		}
	}
	return b.String()
}

// equal reports whether two snapshots describe the same thing.
func (s State) equal(o State) bool { return s.String() == o.String() }

// Reader is where a State comes from: netlink in the daemon, a fake in tests.
type Reader interface {
	Read() (State, error)
}

// NetlinkReader reads States through a netlink handle.
type NetlinkReader struct {
	// Handle is the netlink handle to use; nil uses the current network
	// namespace. Tests pass netlink.NewHandleAt(ns).
	Handle *netlink.Handle
}

// Read takes a snapshot. A dump interrupted by a concurrent change
// (ErrDumpInterrupted) is retried a few times, since a half-read state could
// show a link without its addresses.
func (r NetlinkReader) Read() (State, error) {
	h := r.Handle
	if h == nil {
		h = &netlink.Handle{}
	}
	var err error
	for range 5 {
		var st State
		st, err = readOnce(h)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return st, err
		}
	}
	return State{}, errkind.WrapTemporary(errkind.Internal, "read link state", err)
}

func readOnce(h *netlink.Handle) (State, error) {
	var st State
	links, err := h.LinkList()
	if err != nil {
		return st, wrapRead("list links", err)
	}
	for _, l := range links {
		a := l.Attrs()
		st.Links = append(st.Links, Link{
			Index:    a.Index,
			Name:     a.Name,
			AdminUp:  a.Flags&net.FlagUp != 0,
			Running:  a.Flags&net.FlagRunning != 0,
			LowerUp:  a.RawFlags&unix.IFF_LOWER_UP != 0,
			Loopback: a.Flags&net.FlagLoopback != 0,
			Oper:     a.OperState.String(),
		})
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return st, wrapRead("list addresses", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		st.Addrs = append(st.Addrs, Addr{
			Link:      a.LinkIndex,
			Prefix:    netip.PrefixFrom(ip.Unmap(), ones),
			Tentative: a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0,
			// The same bit means "secondary" for IPv4.
			Temporary: ip.Is6() && a.Flags&unix.IFA_F_TEMPORARY != 0,
		})
	}
	routes, err := h.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return st, wrapRead("list routes", err)
	}
	for _, r := range routes {
		if !isDefault(r) {
			continue
		}
		d := Route{V6: r.Family == unix.AF_INET6}
		if gw, ok := netip.AddrFromSlice(r.Gw); ok {
			d.Gateway = gw.Unmap()
		}
		if r.LinkIndex > 0 {
			d.Links = append(d.Links, r.LinkIndex)
		}
		for _, nh := range r.MultiPath {
			d.Links = append(d.Links, nh.LinkIndex)
		}
		st.Defaults = append(st.Defaults, d)
	}
	sort.Slice(st.Links, func(i, j int) bool { return st.Links[i].Index < st.Links[j].Index })
	sort.Slice(st.Addrs, func(i, j int) bool {
		if st.Addrs[i].Link != st.Addrs[j].Link {
			return st.Addrs[i].Link < st.Addrs[j].Link
		}
		return st.Addrs[i].Prefix.String() < st.Addrs[j].Prefix.String()
	})
	return st, nil
}

func wrapRead(what string, err error) error {
	if errors.Is(err, netlink.ErrDumpInterrupted) {
		return err // retried by Read
	}
	return errkind.WrapTemporary(errkind.Internal, "read link state: "+what, err)
}

// isDefault reports whether r is a usable default route. Netlink reports
// the default route's Dst as 0.0.0.0/0 (or ::/0) in recent versions and as
// nil in older ones; unreachable/blackhole defaults (which some VPN kill
// switches install) carry no traffic and do not count.
func isDefault(r netlink.Route) bool {
	if r.Type != 0 && r.Type != unix.RTN_UNICAST {
		return false
	}
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0 && r.Dst.IP.IsUnspecified()
}
