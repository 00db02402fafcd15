package netconn

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "127.0.0.1": true, "127.1.2.3:25": true, "[::1]:110": true, "::1": true,
		"mail.localhost": true, "pop.example.net": false, "192.0.2.1": false, "[2001:db8::1]:993": false,
	} {
		if IsLoopback(host) != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, !want, want)
		}
	}
}

func TestHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"pop.example.net": "pop.example.net:995", "pop.example.net:1995": "pop.example.net:1995",
		"2001:db8::1": "[2001:db8::1]:995", "[2001:db8::1]": "[2001:db8::1]:995",
	} {
		if got := HostPort(in, 995); got != want {
			t.Errorf("HostPort(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIdleConnTimesOutAStalledPeerButNotASlowOne(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := Idle(a, 100*time.Millisecond)
	c.SetDeadline(time.Now()) // a library's own deadline must not govern
	go func() {
		for i := 0; i < 5; i++ { // a slow peer: a byte every 50ms keeps the conn alive
			time.Sleep(50 * time.Millisecond)
			b.Write([]byte{'x'})
		}
	}()
	buf := make([]byte, 1)
	for i := 0; i < 5; i++ {
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("read %d of a slow but moving peer failed: %v", i, err)
		}
	}
	_, err := c.Read(buf) // now the peer is stalled
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("stalled peer: err %v, want a timeout", err)
	}
	if c.BytesRead() != 5 {
		t.Errorf("BytesRead %d, want 5", c.BytesRead())
	}
}

func TestCloseOnDoneUnblocksARead(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	CloseOnDone(ctx, a)
	go cancel()
	if _, err := a.Read(make([]byte, 1)); err == nil {
		t.Fatal("read returned without error after cancel")
	}
}

func TestImplicitTLSRefusesAnUntrustedCertificate(t *testing.T) {
	srv := httptest.NewTLSServer(nil) // a self-signed certificate nobody trusts
	defer srv.Close()
	_, err := Dial(context.Background(), srv.Listener.Addr().String(), TLSImplicit, &tls.Config{ServerName: "example.com"}, 5*time.Second)
	if err == nil {
		t.Fatal("handshake with an untrusted certificate succeeded")
	}
	if errkind.KindOf(err) != errkind.Network || errkind.IsTemporary(err) {
		t.Errorf("err %v: kind %v temporary %v, want a permanent network error", err, errkind.KindOf(err), errkind.IsTemporary(err))
	}
}

func TestDialRefusedIsTemporary(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	_, err := Dial(context.Background(), addr, TLSNone, nil, time.Second)
	if err == nil || errkind.KindOf(err) != errkind.Network || !errkind.IsTemporary(err) {
		t.Fatalf("err %v, want a temporary network error", err)
	}
}
