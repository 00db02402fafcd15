package tlsprobe

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// scriptedIMAP answers one connection: the greeting, then reply to the
// client's first line; when tlsCert is set it then shakes hands.
func scriptedIMAP(t *testing.T, greeting, reply string, cert *tls.Certificate) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(greeting))
		if l, _ := bufio.NewReader(c).ReadString('\n'); l != "P1 STARTTLS\r\n" {
			return
		}
		c.Write([]byte(reply))
		if cert != nil {
			tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*cert}}).Handshake()
		}
	}()
	return ln.Addr().String()
}

func TestIMAPStartTLS(t *testing.T) {
	cert, pool := testpeer.SelfSigned(t, "127.0.0.1")
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	addr := scriptedIMAP(t, "* OK ready\r\n", "* CAPABILITY IMAP4rev1\r\nP1 OK begin TLS\r\n", &cert)
	r, err := Probe(context.Background(), Options{Addr: addr, Proto: "imap", TLS: netconn.TLSStartTLS, Roots: pool, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Pin != netconn.PinOf(leaf) || r.VerifyErr != nil {
		t.Errorf("pin %s verify %v; want %s and verified", r.Pin, r.VerifyErr, netconn.PinOf(leaf))
	}
}

func TestIMAPStartTLSFailures(t *testing.T) {
	long := "* " + strings.Repeat("x", 9000) + "\r\n"
	for _, tc := range []struct {
		name, greeting, reply, want string
	}{
		{"refused", "* OK ready\r\n", "P1 NO not now\r\n", "STARTTLS refused"},
		{"bad greeting", "* BYE go away\r\n", "", "greeting"},
		{"data after OK", "* OK ready\r\n", "P1 OK go\r\nX injected\r\n", "after its STARTTLS OK"},
		{"overlong line", "* OK ready\r\n", long, "longer than 8 KiB"},
		{"endless untagged", "* OK ready\r\n", strings.Repeat("* 1 EXISTS\r\n", 200), "no answer to STARTTLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := scriptedIMAP(t, tc.greeting, tc.reply, nil)
			_, err := Probe(context.Background(), Options{Addr: addr, Proto: "imap", TLS: netconn.TLSStartTLS, Timeout: 2 * time.Second})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one saying %q", err, tc.want)
			}
			if errkind.KindOf(err) != errkind.Protocol {
				t.Errorf("kind %v, want protocol", errkind.KindOf(err))
			}
		})
	}
}

// An untrusted certificate is still shown, with the verification error.
func TestUntrustedIsShown(t *testing.T) {
	cert, _ := testpeer.SelfSigned(t, "127.0.0.1")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	r, err := Probe(context.Background(), Options{Addr: ln.Addr().String(), Proto: "pop3", TLS: netconn.TLSImplicit, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.VerifyErr == nil || len(r.Chain) != 1 {
		t.Errorf("verify %v, chain %d; want an error and the certificate", r.VerifyErr, len(r.Chain))
	}
}
