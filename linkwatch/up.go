package linkwatch

import (
	"fmt"
	"net/netip"
	"path"
	"sort"
	"strings"
)

// DefaultRoute is the watch entry that means "whichever link carries the
// default route".
const DefaultRoute = "default-route"

// Usable reports whether a link can carry traffic by its flags alone.
// PPP, tun and WireGuard links report the operational state UNKNOWN for as
// long as they exist (their drivers never set it), so UNKNOWN counts when the
// link is administratively up and RUNNING or LOWER_UP; DOWN, DORMANT and
// LOWERLAYERDOWN never count.
func (l Link) Usable() bool {
	if !l.AdminUp {
		return false
	}
	switch l.Oper {
	case "up":
		return true
	case "unknown":
		return l.Running || l.LowerUp
	}
	return false
}

// Up reports whether the uplink described by watch is usable in st, and a
// short reason a user can read either way ("ppp0 is up with 192.0.2.7/32",
// "wwan0 has no global address yet").
//
// watch lists interface names, shell globs (wwan*, ppp[0-9]) and the word
// "default-route"; an empty list means "default-route". The uplink is up
// when at least one watched link is usable, has a global unicast address
// (IPv4 or IPv6, not link-local, not still tentative), and, for a link
// chosen through "default-route", carries a default route of the same
// address family as that address.
func Up(st State, watch []string) (bool, string) {
	up, reason, _ := upIface(st, watch)
	return up, reason
}

// upIface is Up that also names the usable link.
func upIface(st State, watch []string) (bool, string, string) {
	if len(watch) == 0 {
		watch = []string{DefaultRoute}
	}
	var byRoute bool
	var patterns []string
	for _, w := range watch {
		if w == DefaultRoute {
			byRoute = true
		} else {
			patterns = append(patterns, w)
		}
	}

	var why []string // why each candidate is not usable, for the reason
	candidates := 0
	for _, l := range st.Links {
		named := matchAny(patterns, l.Name)
		routed := byRoute && !l.Loopback && carriesDefault(st, l.Index, false, true)
		if !named && !routed {
			continue
		}
		candidates++
		if !l.Usable() {
			why = append(why, fmt.Sprintf("%s is %s", l.Name, describe(l)))
			continue
		}
		// A named link needs only an address; one chosen by the default
		// route needs the route in the family of the address it would use.
		var found, addrButNoRoute string
		for _, a := range st.Addrs {
			if a.Link != l.Index || !global(a) {
				continue
			}
			if !named && !carriesDefault(st, l.Index, a.Prefix.Addr().Is6(), false) {
				addrButNoRoute = a.Prefix.String()
				continue
			}
			found = a.Prefix.String()
			break
		}
		switch {
		case found != "":
			if named {
				return true, fmt.Sprintf("%s is up with %s", l.Name, found), l.Name
			}
			return true, fmt.Sprintf("%s carries the default route with %s", l.Name, found), l.Name
		case addrButNoRoute != "":
			why = append(why, fmt.Sprintf("%s has %s but no default route for it", l.Name, addrButNoRoute))
		default:
			why = append(why, fmt.Sprintf("%s has no global address yet", l.Name))
		}
	}
	if candidates == 0 {
		switch {
		case byRoute && len(patterns) == 0:
			return false, "no link carries a default route", ""
		case byRoute:
			return false, fmt.Sprintf("no link matches %s and none carries a default route", strings.Join(patterns, ", ")), ""
		}
		return false, fmt.Sprintf("no link matches %s", strings.Join(patterns, ", ")), ""
	}
	return false, strings.Join(why, "; "), ""
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, err := path.Match(p, name); err == nil && ok {
			return true
		}
		if p == name { // a malformed glob still matches itself
			return true
		}
	}
	return false
}

// carriesDefault reports whether a default route leaves through link index
// ix; with any set, in either family, else in the family v6 says.
func carriesDefault(st State, ix int, v6, any bool) bool {
	for _, r := range st.Defaults {
		if !any && r.V6 != v6 {
			continue
		}
		for _, l := range r.Links {
			if l == ix {
				return true
			}
		}
	}
	return false
}

// global reports whether an address can reach the Internet from our side:
// global unicast (private RFC 1918 and ULA ranges included: carrier-grade
// NAT and VPNs hand those out), and not still being checked by IPv6
// duplicate address detection (RFC 4862 section 5.4: a tentative address
// must not be used).
func global(a Addr) bool {
	ip := a.Prefix.Addr()
	return ip.IsValid() && ip.IsGlobalUnicast() && !a.Tentative
}

func describe(l Link) string {
	s := l.Oper
	if !l.AdminUp {
		return "administratively down"
	}
	if l.Oper == "unknown" {
		s += " without RUNNING or LOWER_UP"
	}
	return s
}

// sessionAddrs returns the addresses that identify the session on link
// iface: global, past duplicate address detection, and not IPv6
// temporary addresses (RFC 8981 rotates those by design).
func sessionAddrs(st State, iface string) map[netip.Prefix]bool {
	out := map[netip.Prefix]bool{}
	l, ok := st.LinkByName(iface)
	if !ok {
		return out
	}
	for _, a := range st.Addrs {
		if a.Link == l.Index && global(a) && !a.Temporary {
			out[a.Prefix] = true
		}
	}
	return out
}

// renewed says whether the uplink, still usable as iface, is not the
// session an up edge was reported for: another link carries it now
// (cause "uplink moved"), or the link changed its identity while staying
// up ("new address"): an address the session had is gone, or a fresh
// address (see fresh) appeared. why says it in full. cause is "" for the
// same session.
func renewed(st State, iface, sessIface string, sessAddrs map[netip.Prefix]bool) (cause, why string) {
	if iface != sessIface {
		return "uplink moved", fmt.Sprintf("the uplink moved from %s to %s", sessIface, iface)
	}
	cur := sessionAddrs(st, iface)
	var gone, added, now []string
	for p := range sessAddrs {
		if !cur[p] {
			gone = append(gone, p.String())
		}
	}
	for p := range cur {
		now = append(now, p.String())
		if !sessAddrs[p] && fresh(p, sessAddrs) {
			added = append(added, p.String())
		}
	}
	sort.Strings(gone)
	sort.Strings(added)
	sort.Strings(now)
	switch {
	case len(gone) > 0:
		return "new address", fmt.Sprintf("%s lost %s while staying up (now %s)", iface, strings.Join(gone, ", "), strings.Join(now, ", "))
	case len(added) > 0:
		return "new address", fmt.Sprintf("%s got %s while staying up (now %s)", iface, strings.Join(added, ", "), strings.Join(now, ", "))
	}
	return "", ""
}

// fresh reports whether p, an address the session did not have, gives the
// link a new identity: the session already has an address of p's family,
// and none of them shares a prefix with p. A VPN or a DHCP lease coming
// back with another address, or a new IPv6 prefix while the old address
// lingers deprecated until its lifetime ends, are fresh. The first address
// of a family is not (IPv6 often comes up seconds after IPv4 on a PPP
// link: the same session completing), nor is another address inside a
// prefix the session has (a DHCPv6 /128 next to the SLAAC /64).
func fresh(p netip.Prefix, sess map[netip.Prefix]bool) bool {
	family := false
	for s := range sess {
		if s.Addr().Is4() != p.Addr().Is4() {
			continue
		}
		family = true
		if s.Contains(p.Addr()) || p.Contains(s.Addr()) {
			return false
		}
	}
	return family
}

// UsableIface names the watched link that is usable now ("" when none):
// the interface a run started by hand is for.
func UsableIface(st State, watch []string) string {
	_, _, iface := upIface(st, watch)
	return iface
}
