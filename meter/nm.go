package meter

import (
	"context"
	"fmt"

	"github.com/godbus/dbus/v5"
)

// NMMetered is NetworkManager's NMMetered enum: the Metered property of a
// device, taken from its active connection (the connection's
// connection.metered setting, or NM's guess from the device type).
type NMMetered uint32

// NetworkManager's values.
const (
	NMUnknown  NMMetered = 0
	NMYes      NMMetered = 1
	NMNo       NMMetered = 2
	NMGuessYes NMMetered = 3
	NMGuessNo  NMMetered = 4
)

// Metered is true for "yes" and "guess-yes": NM guesses metered for
// mobile broadband and for Wi-Fi tethered to a phone, which is what a
// budget is for. Unknown counts as unmetered.
func (m NMMetered) Metered() bool { return m == NMYes || m == NMGuessYes }

func (m NMMetered) String() string {
	switch m {
	case NMYes:
		return "metered"
	case NMNo:
		return "not metered"
	case NMGuessYes:
		return "metered (guessed)"
	case NMGuessNo:
		return "not metered (guessed)"
	case NMUnknown:
		return "metered unknown: unmetered"
	}
	return fmt.Sprintf("metered value %d: unmetered", uint32(m))
}

// NM asks NetworkManager over D-Bus. NetworkManager keeps the metered
// state of a connection only there (no file, no netlink attribute), so a
// D-Bus client is the one way to follow it.
type NM struct {
	// Address of the bus (default: the system bus, or
	// DBUS_SYSTEM_BUS_ADDRESS).
	Address string
}

const (
	nmService = "org.freedesktop.NetworkManager"
	nmPath    = "/org/freedesktop/NetworkManager"
)

// Metered returns the Metered property of the device named iface:
// GetDeviceByIpIface on the NetworkManager object, then
// org.freedesktop.NetworkManager.Device.Metered on the device.
func (n NM) Metered(ctx context.Context, iface string) (NMMetered, error) {
	var (
		conn *dbus.Conn
		err  error
	)
	if n.Address == "" {
		conn, err = dbus.ConnectSystemBus(dbus.WithContext(ctx))
	} else {
		conn, err = dbus.Connect(n.Address, dbus.WithContext(ctx))
	}
	if err != nil {
		return 0, fmt.Errorf("connect to D-Bus: %w", err)
	}
	defer conn.Close()
	var dev dbus.ObjectPath
	err = conn.Object(nmService, nmPath).CallWithContext(ctx, nmService+".GetDeviceByIpIface", 0, iface).Store(&dev)
	if err != nil {
		return 0, fmt.Errorf("NetworkManager GetDeviceByIpIface(%s): %w", iface, err)
	}
	var v dbus.Variant
	err = conn.Object(nmService, dev).CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, nmService+".Device", "Metered").Store(&v)
	if err != nil {
		return 0, fmt.Errorf("NetworkManager %s Metered: %w", dev, err)
	}
	m, ok := v.Value().(uint32)
	if !ok {
		return 0, fmt.Errorf("NetworkManager %s Metered is %s, not a uint32", dev, v.Signature())
	}
	return NMMetered(m), nil
}
