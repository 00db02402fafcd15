package imap

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
)

// watchUntil runs Watch and appends a message every 100 ms until notify
// is called (the first appends may come before Watch is idling), for at
// most 10 seconds: a generous bound, not a timing assertion.
func watchUntil(t *testing.T, s *memServer, o WatchOptions) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	notified := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, o, func() {
			select {
			case notified <- struct{}{}:
			default:
			}
		})
	}()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-notified:
			break wait
		case err := <-done:
			t.Fatalf("Watch returned early: %v", err)
		case <-tick.C:
			s.add(t, msgA)
		case <-deadline:
			cancel()
			t.Fatal("no notification within 10s of new mail")
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Watch after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after its context was cancelled")
	}
}

// modes records what Watch reports through OnMode.
type modes struct {
	mu  sync.Mutex
	got []string
}

func (m *modes) set(mode string) { m.mu.Lock(); m.got = append(m.got, mode); m.mu.Unlock() }

func (m *modes) check(t *testing.T, want string) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.got) != 1 || m.got[0] != want {
		t.Errorf("OnMode called with %q, want [%s] once (one connection)", m.got, want)
	}
}

func TestWatchIdle(t *testing.T) {
	s := startMem(t, memOpts{})
	var m modes
	watchUntil(t, s, WatchOptions{Options: s.opts(t), OnMode: m.set})
	m.check(t, "idle")
}

func TestWatchPoll(t *testing.T) {
	s := startMem(t, memOpts{})
	var m modes
	watchUntil(t, s, WatchOptions{Options: s.opts(t), ForcePoll: true, Interval: 50 * time.Millisecond, OnMode: m.set})
	m.check(t, "polling")
}

func TestWatchIdleRenew(t *testing.T) {
	// Renewing IDLE every 20 ms exercises DONE and re-IDLE many times
	// while waiting for mail.
	s := startMem(t, memOpts{})
	watchUntil(t, s, WatchOptions{Options: s.opts(t), Renew: 20 * time.Millisecond})
}

func TestWatchLoginRefused(t *testing.T) {
	s := startMem(t, memOpts{})
	o := s.opts(t)
	o.Password = pass("wrong")
	err := Watch(ctxT(t), WatchOptions{Options: o}, func() {})
	if errkind.KindOf(err) != errkind.Auth {
		t.Fatalf("Watch with a wrong password: %v, want an auth error (not endless retries)", err)
	}
}

// cutProxy forwards loopback connections to addr and can cut them all.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t *testing.T, addr string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			go func() { io.Copy(b, c); b.Close() }()
			go func() { io.Copy(c, b); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cutProxy) active() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// TestWatchReconnects cuts the connection while Watch idles, adds mail
// while it is down, and expects Watch to reconnect and report it.
func TestWatchReconnects(t *testing.T) {
	s := startMem(t, memOpts{})
	p := startProxy(t, s.addr)
	o := s.opts(t)
	o.Addr = p.ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	notified := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, WatchOptions{Options: o}, func() {
			select {
			case notified <- struct{}{}:
			default:
			}
		})
	}()
	// Wait for the first connection, cut it, and add mail while down.
	for i := 0; p.active() == 0; i++ {
		if i > 1000 {
			t.Fatal("Watch never connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let it reach IDLE (not required for correctness)
	p.cut()
	s.add(t, msgA)
	select {
	case <-notified:
	case err := <-done:
		t.Fatalf("Watch returned: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("no notification after reconnecting (mail arrived while the connection was down)")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
