package daemon

import (
	"net"
	"os"
	"time"
)

// Notifier tells the service manager about the daemon's state
// (sd_notify(3)): "READY=1", "STATUS=...", "STOPPING=1".
type Notifier func(state string)

// SdNotify returns a Notifier writing datagrams to socket (usually
// $NOTIFY_SOCKET; "" gives a Notifier that does nothing, as when not run by
// systemd). A leading '@' names an abstract socket. Errors are ignored:
// losing a status line must not stop the daemon.
func SdNotify(socket string) Notifier {
	if socket == "" {
		return func(string) {}
	}
	name := socket
	if name[0] == '@' {
		name = "\x00" + name[1:]
	}
	addr := &net.UnixAddr{Name: name, Net: "unixgram"}
	return func(state string) {
		c, err := net.DialUnix("unixgram", nil, addr)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write([]byte(state))
	}
}

// FromEnv is SdNotify($NOTIFY_SOCKET).
func FromEnv() Notifier { return SdNotify(os.Getenv("NOTIFY_SOCKET")) }
