package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/linkctl/linkctl/internal/netconn"
)

// Pin is the SHA-256 of a server's SubjectPublicKeyInfo, decoded from
// "sha256//BASE64" (the form of curl's --pinnedpubkey).
type Pin = netconn.Pin

// Verify values of `tls_verify:`.
const (
	VerifyFull    = "full"     // chain to a trusted root and the name, plus the pin if any
	VerifyPinOnly = "pin-only" // the pin alone (a self-signed certificate for another name)
)

// TLSTrust is how one server's certificate is trusted beyond the default
// (system roots, chain and name verified): the keys of tls_pin, ca_file
// and tls_verify on an ETRN relay, a fetch account, or SMTP delivery. The
// zero value is the default.
type TLSTrust struct {
	Pins    []Pin  // the server's key must hash to one of these
	CAFile  string // "" for the system roots
	CA      []byte // the PEM bundle read from CAFile and checked by validation
	PinOnly bool   // tls_verify: pin-only
}

// IsZero reports whether t is the default trust.
func (t TLSTrust) IsZero() bool { return len(t.Pins) == 0 && t.CAFile == "" && !t.PinOnly }

// Strings are the pins as written in the config.
func (t TLSTrust) Strings() []string {
	out := make([]string, len(t.Pins))
	for i, p := range t.Pins {
		out[i] = p.String()
	}
	return out
}

// rawTrust are the three keys as read.
type rawTrust struct{ pin, caFile, verify *yaml.Node }

// trust checks tls_pin, ca_file and tls_verify of the entry at path p.
// noTLS is "" when the connection uses TLS, else the problem with the keys
// there ("needs TLS, but tls is none"): a pin on a plaintext connection
// would protect nothing while looking as if it did.
func (c *checker) trust(r rawTrust, p, noTLS, expected string) TLSTrust {
	var t TLSTrust
	const pinExp = "expected sha256//BASE64 (the SHA-256 of the server's public key, as `linkctl pin HOST` prints it), or a list of them"
	for i, s := range c.list(r.pin, p+".tls_pin", true, pinExp) {
		at, path := r.pin, p+".tls_pin"
		if r.pin.Kind == yaml.SequenceNode {
			at, path = elem(r.pin, i), fmt.Sprintf("%s[%d]", path, i)
		}
		pins, err := netconn.ParsePins([]string{s})
		if err != nil {
			c.add(at, path, err.Error(), "")
			continue
		}
		t.Pins = append(t.Pins, pins...)
	}
	if t.CAFile = c.file(r.caFile, p+".ca_file"); t.CAFile != "" {
		data, err := netconn.LoadCAFile(t.CAFile)
		if err != nil {
			c.add(r.caFile, p+".ca_file", "cannot use it: "+err.Error(),
				"expected a readable PEM file of CA certificates, or the server's own self-signed certificate")
			t.CAFile = ""
		} else {
			t.CA = data
		}
	}
	verify := c.oneOf(r.verify, p+".tls_verify", VerifyFull, VerifyFull, VerifyPinOnly)
	if verify == VerifyPinOnly {
		if len(t.Pins) == 0 && isNull(r.pin) {
			c.add(r.verify, p+".tls_verify", "pin-only without a tls_pin", "expected a tls_pin too: without it nothing would be checked")
		}
		t.PinOnly = true
	}
	if noTLS != "" {
		for _, k := range []struct {
			n   *yaml.Node
			key string
		}{{r.pin, "tls_pin"}, {r.caFile, "ca_file"}, {r.verify, "tls_verify"}} {
			if !isNull(k.n) {
				c.add(k.n, p+"."+k.key, noTLS, expected)
			}
		}
		return TLSTrust{}
	}
	return t
}

// noTLS is the problem with a pin or CA on a connection in mode ("" when
// it uses TLS).
func noTLS(mode TLSMode, written bool) string {
	switch {
	case mode != TLSNone:
		return ""
	case written:
		return "needs TLS, but tls is none"
	}
	return "needs TLS, but tls defaults to none for a loopback server"
}
