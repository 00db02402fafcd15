package scripted

import (
	"net"
	"sync"
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

// Serve accepts connections on ln until the test ends and runs session on
// each in its own goroutine, closing the connection when session returns.
// The test's cleanup closes ln and every connection still open, so that a
// session that stalls on purpose ends with the test; session must not use
// t, since it may outlive the test by a moment.
func Serve(t testing.TB, ln net.Listener, session func(net.Conn)) {
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range open {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open[c] = true
			mu.Unlock()
			go func() {
				defer func() {
					c.Close()
					mu.Lock()
					delete(open, c)
					mu.Unlock()
				}()
				session(c)
			}()
		}
	}()
}
