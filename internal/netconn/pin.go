package netconn

// TLS pinning and private CAs (issue 20): one tls.Config builder that every
// protocol's dialer uses, so POP3, IMAP, ETRN, ODMR and SMTP delivery pin
// the same way.
//
// A pin is the SHA-256 of the server certificate's SubjectPublicKeyInfo,
// written as curl's --pinnedpubkey writes it: "sha256//" and the standard
// base64 of the 32 bytes. Pinning the key, not the certificate, survives a
// renewal that keeps the key (as certbot does by default with
// --reuse-key); a list of pins allows a key rotation without a flag day.
// As in curl, the pin is checked in addition to the normal verification
// (chain to a trusted root, name, validity), unless the config asks for
// pin-only: then the pin alone decides, which suits a self-signed
// certificate whose name does not match the host linkctl dials.

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// PinPrefix starts every pin, as in curl's --pinnedpubkey.
const PinPrefix = "sha256//"

// Pin is the SHA-256 of a certificate's SubjectPublicKeyInfo (RFC 7469
// section 2.4 hashes the same bytes).
type Pin [sha256.Size]byte

// String is the pin as written in the config: sha256//BASE64.
func (p Pin) String() string { return PinPrefix + base64.StdEncoding.EncodeToString(p[:]) }

// PinOf returns the pin of cert's public key.
func PinOf(cert *x509.Certificate) Pin { return sha256.Sum256(cert.RawSubjectPublicKeyInfo) }

// ParsePin parses one "sha256//BASE64" pin. The prefix is required: a bare
// hash could be a certificate fingerprint (what `openssl x509
// -fingerprint` and fetchmail's sslfingerprint print), which never matches.
func ParsePin(s string) (Pin, error) {
	var p Pin
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), PinPrefix)
	if !ok {
		return p, fmt.Errorf("invalid pin %q: expected sha256//BASE64 (the SHA-256 of the server's public key, as `linkctl pin` prints it)", s)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != len(p) {
		return p, fmt.Errorf("invalid pin %q: expected sha256// and 44 characters of base64 (32 bytes)", s)
	}
	copy(p[:], raw)
	return p, nil
}

// ParsePins parses a list of pins; an entry may itself hold several
// separated by ';', as curl accepts them.
func ParsePins(list []string) ([]Pin, error) {
	var out []Pin
	for _, s := range list {
		for _, one := range strings.Split(s, ";") {
			if strings.TrimSpace(one) == "" {
				continue
			}
			p, err := ParsePin(one)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// LoadCAFile reads a PEM bundle of CA certificates (or a server's own
// self-signed certificate) and checks it with [ParseCA]; it returns the
// bytes read, so that what was checked is what gets used.
func LoadCAFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if _, err := ParseCA(data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

// ParseCA parses a PEM bundle into a pool. A bundle with no certificate in
// it is an error: an empty pool would refuse every server, silently.
func ParseCA(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)")
	}
	return pool, nil
}

// Trust says how one server's certificate is trusted beyond the default
// (system roots, name and chain verified). The zero value is the default.
type Trust struct {
	Pins    []Pin          // the server's key must hash to one of these
	CAFile  string         // where Roots came from, for messages
	Roots   *x509.CertPool // replaces the system roots; nil: system roots
	PinOnly bool           // skip chain and name checks: the pin alone decides (needs Pins)
}

// IsZero reports whether t is the default trust.
func (t Trust) IsZero() bool { return len(t.Pins) == 0 && t.Roots == nil && !t.PinOnly }

// Config returns the TLS client config for a server reached as addr
// (host:port, named in the pin error), or nil for the default trust, so
// that callers keep passing nil as before. ServerName is left to
// [TLSConfig], which every dialer applies.
//
// The pin is checked in VerifyConnection, which crypto/tls runs during
// the handshake after its own verification and before the handshake
// completes: a mismatch ends the connection before the client sends a
// single byte of its own protocol, so no password is ever sent to a server
// that fails the pin.
func (t Trust) Config(addr string) *tls.Config {
	if t.IsZero() {
		return nil
	}
	c := &tls.Config{RootCAs: t.Roots, MinVersion: tls.VersionTLS12}
	if t.PinOnly && len(t.Pins) > 0 {
		// Chain and name checks off; VerifyConnection still runs and
		// requires the pin.
		c.InsecureSkipVerify = true
	}
	if len(t.Pins) > 0 {
		pins := append([]Pin(nil), t.Pins...)
		c.VerifyConnection = func(cs tls.ConnectionState) error { return checkPin(addr, pins, cs) }
	}
	return c
}

// PinError is a certificate whose key matched none of the pins. It reaches
// callers inside a *tls.CertificateVerificationError, so every protocol
// client already classifies it as a permanent certificate failure.
type PinError struct {
	Addr     string
	Got      Pin
	Expected []Pin
}

func (e *PinError) Error() string {
	want := make([]string, len(e.Expected))
	for i, p := range e.Expected {
		want[i] = p.String()
	}
	return fmt.Sprintf("server %s presented key %s, expected %s (tls_pin; if the server's key changed, check the new one with `linkctl pin %s`)",
		e.Addr, e.Got, strings.Join(want, " or "), e.Addr)
}

// Temporary is false: the same server will present the same key again.
func (e *PinError) Temporary() bool { return false }

func checkPin(addr string, pins []Pin, cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return &tls.CertificateVerificationError{Err: errors.New("server " + addr + " presented no certificate (tls_pin)")}
	}
	leaf := cs.PeerCertificates[0]
	got := PinOf(leaf)
	for _, p := range pins {
		if p == got {
			return nil
		}
	}
	return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates,
		Err: &PinError{Addr: addr, Got: got, Expected: pins}}
}
