package meter

import (
	"github.com/vishvananda/netlink"

	"github.com/linkctl/linkctl/internal/linkstat"
)

// LinkCounters reads the received and sent byte counters of iface from
// the kernel (package linkstat).
func LinkCounters(iface string) (Counters, error) {
	return CountersOf(netlink.LinkByName(iface))
}

// CountersOf takes the counters from a looked-up link (tests look links
// up in a namespace of their own).
func CountersOf(l netlink.Link, err error) (Counters, error) {
	rx, tx, err := linkstat.Of(l, err)
	return Counters{Rx: rx, Tx: tx}, err
}
