package netconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// tlsServer accepts TLS connections with cert and records whether any
// application byte arrived after a handshake (a client that refused the
// certificate must not have sent one).
func tlsServer(t *testing.T, cert tls.Certificate) (addr string, gotData chan []byte) {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	gotData = make(chan []byte, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 64)
				n, _ := c.Read(buf)
				if n > 0 {
					gotData <- buf[:n]
				}
			}()
		}
	}()
	return l.Addr().String(), gotData
}

func leafPin(t *testing.T, cert tls.Certificate) Pin {
	t.Helper()
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return PinOf(leaf)
}

func TestParsePin(t *testing.T) {
	good := "sha256//" + strings.Repeat("A", 43) + "="
	if p, err := ParsePin(good); err != nil || p.String() != good {
		t.Fatalf("ParsePin(%q) = %v, %v; want the same pin back", good, p, err)
	}
	for _, bad := range []string{
		"", "sha256//", strings.Repeat("A", 43) + "=", // no prefix: maybe a certificate fingerprint
		"sha1//" + strings.Repeat("A", 27) + "=",
		"sha256//" + strings.Repeat("A", 40) + "=", // short
		"sha256//" + strings.Repeat("!", 44),       // not base64
		"AB:CD:EF",                                 // openssl -fingerprint style
	} {
		if _, err := ParsePin(bad); err == nil {
			t.Errorf("ParsePin(%q) accepted", bad)
		}
	}
	pins, err := ParsePins([]string{good + ";" + good, good})
	if err != nil || len(pins) != 3 {
		t.Errorf("ParsePins with ';' = %d pins, %v; want 3", len(pins), err)
	}
}

func TestPinMatchesAndCAFileTrusts(t *testing.T) {
	cert, pool := testpeer.SelfSigned(t, "127.0.0.1")
	addr, _ := tlsServer(t, cert)
	trust := Trust{Pins: []Pin{leafPin(t, cert)}, Roots: pool}
	c, err := Dial(context.Background(), addr, TLSImplicit, trust.Config(addr), 5*time.Second)
	if err != nil {
		t.Fatalf("right pin and trusted CA refused: %v", err)
	}
	c.Close()

	// The CA alone (no pin) is enough; the system roots (no ca_file) are not.
	if c, err := Dial(context.Background(), addr, TLSImplicit, Trust{Roots: pool}.Config(addr), 5*time.Second); err != nil {
		t.Fatalf("ca_file refused: %v", err)
	} else {
		c.Close()
	}
	if _, err := Dial(context.Background(), addr, TLSImplicit, nil, 5*time.Second); err == nil {
		t.Fatal("self-signed certificate accepted without ca_file")
	}
}

func TestPinMismatchIsPermanentAndNamesBothPins(t *testing.T) {
	cert, pool := testpeer.SelfSigned(t, "127.0.0.1")
	addr, gotData := tlsServer(t, cert)
	var wrong Pin
	wrong[0] = 1
	// The chain verifies (the CA is trusted): only the pin is wrong.
	_, err := Dial(context.Background(), addr, TLSImplicit, Trust{Pins: []Pin{wrong}, Roots: pool}.Config(addr), 5*time.Second)
	if err == nil {
		t.Fatal("wrong pin accepted")
	}
	var pe *PinError
	if !errors.As(err, &pe) {
		t.Fatalf("err %v: not a PinError", err)
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{addr, leafPin(t, cert).String(), wrong.String(), "tls_pin"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	if errkind.IsTemporary(err) || errkind.KindOf(err) != errkind.Network {
		t.Errorf("err %v: temporary %v kind %v, want a permanent network error", err, errkind.IsTemporary(err), errkind.KindOf(err))
	}
	select {
	case b := <-gotData:
		t.Errorf("client sent %q after a pin mismatch", b)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestPinDoesNotReplaceVerification(t *testing.T) {
	// curl's rule: a pin is checked on top of the chain. The right pin on
	// an untrusted (self-signed, no ca_file) certificate is refused...
	cert, _ := testpeer.SelfSigned(t, "127.0.0.1")
	addr, _ := tlsServer(t, cert)
	pin := leafPin(t, cert)
	_, err := Dial(context.Background(), addr, TLSImplicit, Trust{Pins: []Pin{pin}}.Config(addr), 5*time.Second)
	var cv *tls.CertificateVerificationError
	if !errors.As(err, &cv) {
		t.Fatalf("right pin without a trusted chain: err %v, want a certificate verification error", err)
	}
	// ...unless pin-only is asked for, which also ignores the name: the
	// certificate is for "mail.invalid", dialled as 127.0.0.1.
	other, _ := testpeer.SelfSigned(t, "mail.invalid")
	addr2, _ := tlsServer(t, other)
	c, err := Dial(context.Background(), addr2, TLSImplicit, Trust{Pins: []Pin{leafPin(t, other)}, PinOnly: true}.Config(addr2), 5*time.Second)
	if err != nil {
		t.Fatalf("pin-only with the right pin refused: %v", err)
	}
	c.Close()
	var wrong Pin
	if _, err := Dial(context.Background(), addr2, TLSImplicit, Trust{Pins: []Pin{wrong}, PinOnly: true}.Config(addr2), 5*time.Second); err == nil {
		t.Fatal("pin-only with a wrong pin accepted")
	}
}

func TestPinListAllowsRotation(t *testing.T) {
	cert, pool := testpeer.SelfSigned(t, "127.0.0.1")
	addr, _ := tlsServer(t, cert)
	var old Pin
	old[31] = 7
	c, err := Dial(context.Background(), addr, TLSImplicit, Trust{Pins: []Pin{old, leafPin(t, cert)}, Roots: pool}.Config(addr), 5*time.Second)
	if err != nil {
		t.Fatalf("second pin of a list refused: %v", err)
	}
	c.Close()
}

func TestLoadCAFile(t *testing.T) {
	cert, _ := testpeer.SelfSigned(t, "127.0.0.1")
	dir := t.TempDir()
	good := filepath.Join(dir, "ca.pem")
	os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644)
	data, err := LoadCAFile(good)
	if err != nil {
		t.Fatalf("LoadCAFile: %v", err)
	}
	if _, err := ParseCA(data); err != nil {
		t.Fatalf("ParseCA of what LoadCAFile returned: %v", err)
	}
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, []byte("not a certificate\n"), 0o644)
	if _, err := LoadCAFile(empty); err == nil {
		t.Error("a file without certificates was accepted")
	}
	broken := filepath.Join(dir, "broken.pem")
	os.WriteFile(broken, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}), 0o644)
	if _, err := LoadCAFile(broken); err == nil {
		t.Error("a broken certificate was accepted")
	}
	if _, err := LoadCAFile(filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("a missing file was accepted")
	}
}
