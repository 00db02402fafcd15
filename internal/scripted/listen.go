package scripted

import (
	"net"
	"testing"
)

// Listen opens a loopback TCP listener and runs session on each connection
// it accepts (see Serve), for a test peer that the code under test must
// dial itself. It returns the listener; Addr().String() is what to dial.
func Listen(t testing.TB, session func(net.Conn)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	Serve(t, ln, session)
	return ln
}

// Serve accepts connections on ln until the test ends (its cleanup closes
// ln) and runs session on each in its own goroutine, closing the
// connection when session returns.
func Serve(t testing.TB, ln net.Listener, session func(net.Conn)) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				session(c)
			}()
		}
	}()
}
