// Package linkstat reads an interface's byte counters from the kernel
// (rtnetlink link statistics, the figures `ip -s link` shows): what a
// metered link's provider bills. The meter (budgets) and the run history
// both read them at the start and the end of a run.
package linkstat

import (
	"github.com/vishvananda/netlink"

	"github.com/linkctl/linkctl/internal/errkind"
)

// Read returns the received and sent bytes of iface in the current
// network namespace.
func Read(iface string) (rx, tx uint64, err error) {
	l, err := netlink.LinkByName(iface)
	return Of(l, err)
}

// Of takes the counters from a looked-up link (tests look links up in a
// namespace of their own).
func Of(l netlink.Link, err error) (rx, tx uint64, _ error) {
	if err != nil {
		return 0, 0, errkind.WrapTemporary(errkind.Network, "read the link's counters", err)
	}
	st := l.Attrs().Statistics
	if st == nil {
		return 0, 0, errkind.Temporary(errkind.Network, "read the counters of "+l.Attrs().Name, "the kernel gave no statistics")
	}
	return st.RxBytes, st.TxBytes, nil
}
