package testpeer

import (
	"net"
	"strconv"
	"testing"
)

// TestDovecotOwnsItsPorts: Dovecot's ports are held by a listener from
// the moment they are chosen, so nothing else can bind one before Dovecot
// listens on it. (freePorts used to close its listeners first, and
// TestDovecotToSink failed with "Address already in use" when a parallel
// test took one.)
func TestDovecotOwnsItsPorts(t *testing.T) {
	t.Parallel()
	var free []int
	d := StartDovecot(t, DovecotOptions{TLS: true, beforeStart: func(_ int, ports []int) {
		for _, p := range ports {
			if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
				free = append(free, p)
				l.Close()
			}
		}
	}})
	if len(free) > 0 {
		t.Errorf("ports %v were free for anyone to take just before Dovecot started", free)
	}
	pop3Session(t, dial(t, d.POP3Addr()), "user", "password")
}

// TestDovecotRetriesATakenPort: a Dovecot that binds its own ports (a
// build without socket activation) and finds one taken is started again
// on fresh ports.
func TestDovecotRetriesATakenPort(t *testing.T) {
	t.Parallel()
	var taken net.Listener
	attempts := 0
	d := StartDovecot(t, DovecotOptions{bindOwn: true, beforeStart: func(attempt int, ports []int) {
		attempts = attempt
		if attempt == 1 {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(ports[0]))
			if err != nil {
				t.Fatalf("take port %d: %v", ports[0], err)
			}
			taken = l
			t.Cleanup(func() { l.Close() })
		}
	}})
	if attempts != 2 {
		t.Errorf("%d start attempts, want 2", attempts)
	}
	if d.POP3Addr() == taken.Addr().String() {
		t.Errorf("POP3 on the taken address %s", d.POP3Addr())
	}
	pop3Session(t, dial(t, d.POP3Addr()), "user", "password")
}

// TestPostfixRetriesATakenPort: Postfix's master binds its smtpd port
// itself; one taken between choosing it and the start is replaced by a
// fresh one.
func TestPostfixRetriesATakenPort(t *testing.T) {
	t.Parallel()
	attempts := 0
	var takenAddr string
	p := StartPostfix(t, PostfixOptions{beforeStart: func(attempt int, addr string) {
		attempts = attempt
		if attempt == 1 {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("take %s: %v", addr, err)
			}
			takenAddr = addr
			t.Cleanup(func() { l.Close() })
		}
	}})
	if attempts != 2 || p.Addr() == takenAddr {
		t.Errorf("%d start attempts, smtpd on %s (taken: %s); want 2 attempts and another port", attempts, p.Addr(), takenAddr)
	}
	if err := p.Send("a@sink.test", []string{"b@sink.test"}, "Subject: x\r\n\r\nx\r\n"); err != nil {
		t.Errorf("send through the restarted Postfix: %v", err)
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
