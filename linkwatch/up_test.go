package linkwatch

import (
	"net/netip"
	"strings"
	"testing"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

var (
	lo      = Link{Index: 1, Name: "lo", AdminUp: true, Running: true, LowerUp: true, Loopback: true, Oper: "unknown"}
	loAddr  = Addr{Link: 1, Prefix: pfx("127.0.0.1/8")}
	eth     = Link{Index: 2, Name: "eth0", AdminUp: true, Running: true, LowerUp: true, Oper: "up"}
	ethAddr = Addr{Link: 2, Prefix: pfx("192.0.2.10/24")}
	ppp     = Link{Index: 3, Name: "ppp0", AdminUp: true, Running: true, LowerUp: true, Oper: "unknown"}
	pppAddr = Addr{Link: 3, Prefix: pfx("192.0.2.7/32")}
	wwan    = Link{Index: 4, Name: "wwan0", AdminUp: true, Running: true, LowerUp: true, Oper: "up"}
	v6Addr  = Addr{Link: 4, Prefix: pfx("2001:db8::7/64")}
	v6LL    = Addr{Link: 4, Prefix: pfx("fe80::1/64")}
)

func TestUp(t *testing.T) {
	tests := []struct {
		name   string
		st     State
		watch  []string
		want   bool
		reason string // a substring of the reason
	}{
		{"ppp UNKNOWN with RUNNING is usable",
			State{Links: []Link{lo, ppp}, Addrs: []Addr{loAddr, pppAddr}}, []string{"ppp0"}, true, "ppp0 is up with 192.0.2.7/32"},
		{"ppp UNKNOWN with only LOWER_UP is usable",
			State{Links: []Link{with(ppp, func(l *Link) { l.Running = false })}, Addrs: []Addr{pppAddr}}, []string{"ppp0"}, true, "ppp0 is up"},
		{"ppp UNKNOWN without RUNNING or LOWER_UP is not",
			State{Links: []Link{with(ppp, func(l *Link) { l.Running, l.LowerUp = false, false })}, Addrs: []Addr{pppAddr}}, []string{"ppp0"}, false, "without RUNNING"},
		{"administratively down",
			State{Links: []Link{with(ppp, func(l *Link) { l.AdminUp = false })}, Addrs: []Addr{pppAddr}}, []string{"ppp0"}, false, "administratively down"},
		{"oper down (no carrier)",
			State{Links: []Link{with(eth, func(l *Link) { l.Oper = "down"; l.LowerUp = false })}, Addrs: []Addr{ethAddr}}, []string{"eth0"}, false, "eth0 is down"},
		{"dormant does not count",
			State{Links: []Link{with(wwan, func(l *Link) { l.Oper = "dormant" })}, Addrs: []Addr{v6Addr}}, []string{"wwan0"}, false, "dormant"},
		{"no global address yet",
			State{Links: []Link{ppp}}, []string{"ppp0"}, false, "ppp0 has no global address yet"},
		{"only a link-local address",
			State{Links: []Link{wwan}, Addrs: []Addr{v6LL}}, []string{"wwan0"}, false, "no global address"},
		{"tentative IPv6 address is not usable yet",
			State{Links: []Link{wwan}, Addrs: []Addr{v6LL, {Link: 4, Prefix: pfx("2001:db8::7/64"), Tentative: true}}}, []string{"wwan0"}, false, "no global address"},
		{"IPv6 only",
			State{Links: []Link{lo, wwan}, Addrs: []Addr{loAddr, v6LL, v6Addr}}, []string{"wwan0"}, true, "2001:db8::7/64"},
		{"glob matches",
			State{Links: []Link{lo, eth, wwan}, Addrs: []Addr{ethAddr, v6Addr}}, []string{"wwan*"}, true, "wwan0 is up"},
		{"glob matches nothing",
			State{Links: []Link{lo, eth}, Addrs: []Addr{ethAddr}}, []string{"wwan*"}, false, "no link matches wwan*"},
		{"one of two watched links up is enough",
			State{Links: []Link{ppp, wwan}, Addrs: []Addr{v6Addr}}, []string{"ppp0", "wwan0"}, true, "wwan0"},
		{"the unwatched link being up does not count",
			State{Links: []Link{eth, ppp}, Addrs: []Addr{ethAddr}}, []string{"ppp0"}, false, "ppp0 has no global address"},
		{"default-route through ppp0",
			State{Links: []Link{lo, eth, ppp}, Addrs: []Addr{loAddr, pppAddr},
				Defaults: []Route{{Links: []int{3}}}}, []string{DefaultRoute}, true, "ppp0 carries the default route with 192.0.2.7/32"},
		{"empty watch means default-route",
			State{Links: []Link{ppp}, Addrs: []Addr{pppAddr}, Defaults: []Route{{Links: []int{3}}}}, nil, true, "ppp0 carries the default route"},
		{"default-route: address but no route",
			State{Links: []Link{lo, eth}, Addrs: []Addr{loAddr, ethAddr}}, []string{DefaultRoute}, false, "no link carries a default route"},
		{"default-route: IPv4 address but only an IPv6 default route",
			State{Links: []Link{eth}, Addrs: []Addr{ethAddr}, Defaults: []Route{{Links: []int{2}, V6: true}}},
			[]string{DefaultRoute}, false, "eth0 has 192.0.2.10/24 but no default route for it"},
		{"default-route: IPv6 only",
			State{Links: []Link{wwan}, Addrs: []Addr{v6LL, v6Addr}, Defaults: []Route{{Links: []int{4}, V6: true, Gateway: netip.MustParseAddr("fe80::1")}}},
			[]string{DefaultRoute}, true, "wwan0 carries the default route with 2001:db8::7/64"},
		{"default-route: route through a down link",
			State{Links: []Link{with(eth, func(l *Link) { l.Oper = "down" })}, Addrs: []Addr{ethAddr}, Defaults: []Route{{Links: []int{2}}}},
			[]string{DefaultRoute}, false, "eth0 is down"},
		{"default-route: multipath, one leg through the link",
			State{Links: []Link{eth, ppp}, Addrs: []Addr{pppAddr}, Defaults: []Route{{Links: []int{2, 3}}}},
			[]string{DefaultRoute}, true, "ppp0 carries the default route"},
		{"name or default-route",
			State{Links: []Link{eth, ppp}, Addrs: []Addr{ethAddr}, Defaults: []Route{{Links: []int{2}}}},
			[]string{"ppp0", DefaultRoute}, true, "eth0 carries the default route"},
		{"no links at all",
			State{}, []string{"ppp0"}, false, "no link matches ppp0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := Up(tt.st, tt.watch)
			if got != tt.want || !strings.Contains(reason, tt.reason) {
				t.Errorf("Up(%s, %q) = %v, %q; want %v with %q", tt.st, tt.watch, got, reason, tt.want, tt.reason)
			}
		})
	}
}

func with(l Link, f func(*Link)) Link { f(&l); return l }

// TestRenewed: what makes a link that stayed up a new session (a new up
// edge) and what does not.
func TestRenewed(t *testing.T) {
	v6 := Addr{Link: 3, Prefix: pfx("2001:db8::7/64")}
	temp := Addr{Link: 3, Prefix: pfx("2001:db8::99/64"), Temporary: true}
	other := Addr{Link: 3, Prefix: pfx("198.51.100.9/32")}
	st := func(addrs ...Addr) State { return State{Links: []Link{lo, eth, ppp}, Addrs: addrs} }
	sess := sessionAddrs(st(pppAddr, v6, temp), "ppp0")
	if len(sess) != 2 || sess[temp.Prefix] {
		t.Fatalf("session addresses %v: want the IPv4 and the stable IPv6 address, not the temporary one", sess)
	}
	v4only := sessionAddrs(st(pppAddr), "ppp0")
	for _, tc := range []struct {
		name  string
		sess  map[netip.Prefix]bool // nil: IPv4 and stable IPv6
		st    State
		iface string
		want  string
	}{
		{"same (a lease renewed: the address announced again)", nil, st(pppAddr, v6, temp), "ppp0", ""},
		{"temporary gone", nil, st(pppAddr, v6), "ppp0", ""},
		{"another temporary address (RFC 8981 rotation)", nil,
			st(pppAddr, v6, temp, Addr{Link: 3, Prefix: pfx("2001:db8::98/64"), Temporary: true}), "ppp0", ""},
		{"a link-local address appears", nil, st(pppAddr, v6, Addr{Link: 3, Prefix: pfx("fe80::7/64")}), "ppp0", ""},
		{"a new address still tentative (DAD)", nil,
			st(pppAddr, v6, Addr{Link: 3, Prefix: pfx("2001:db8:1::7/64"), Tentative: true}), "ppp0", ""},
		{"IPv6 comes up after IPv4", v4only, st(pppAddr, v6), "ppp0", ""},
		{"a DHCPv6 /128 inside the SLAAC /64", nil, st(pppAddr, v6, Addr{Link: 3, Prefix: pfx("2001:db8::abc/128")}), "ppp0", ""},
		{"another IPv4 address while the old one stays (new lease or VPN address first)", nil, st(pppAddr, v6, other), "ppp0", "new address"},
		{"a new IPv6 prefix while the old address lingers deprecated", nil,
			st(pppAddr, v6, Addr{Link: 3, Prefix: pfx("2001:db8:1::7/64")}), "ppp0", "new address"},
		{"address replaced", nil, st(other, v6), "ppp0", "new address"},
		{"IPv6 gone", nil, st(pppAddr), "ppp0", "new address"},
		{"other link", nil, st(pppAddr, v6), "eth0", "uplink moved"},
	} {
		s := tc.sess
		if s == nil {
			s = sess
		}
		if got, why := renewed(tc.st, tc.iface, "ppp0", s); got != tc.want {
			t.Errorf("%s: cause %q (%s), want %q", tc.name, got, why, tc.want)
		}
	}
}
