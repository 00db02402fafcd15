package meter

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// LinkCounters reads the received and sent byte counters of iface from
// the kernel (rtnetlink link statistics, the figures `ip -s link` shows).
func LinkCounters(iface string) (Counters, error) {
	return CountersOf(netlink.LinkByName(iface))
}

// CountersOf takes the counters from a looked-up link (tests look links
// up in a namespace of their own).
func CountersOf(l netlink.Link, err error) (Counters, error) {
	if err != nil {
		return Counters{}, fmt.Errorf("read the counters of the link: %w", err)
	}
	st := l.Attrs().Statistics
	if st == nil {
		return Counters{}, fmt.Errorf("link %s has no statistics", l.Attrs().Name)
	}
	return Counters{Rx: st.RxBytes, Tx: st.TxBytes}, nil
}
