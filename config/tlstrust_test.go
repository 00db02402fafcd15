package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	pinA = "sha256//YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE="
	pinB = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
)

func writeCA(t *testing.T, dir string) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
}

func trustProblems(t *testing.T, src string) []string {
	t.Helper()
	_, err := Parse("t.yaml", []byte(src))
	var errs Errors
	if err != nil && !errors.As(err, &errs) {
		t.Fatalf("not config Errors: %v", err)
	}
	var out []string
	for _, p := range errs {
		out = append(out, p.Error())
	}
	return out
}

func TestTLSTrustParsed(t *testing.T) {
	testEnv(t, 1000, nil)
	dir := t.TempDir()
	ca := writeCA(t, dir)
	src := "etrn:\n  servers:\n    - {server: mx.example.net, domains: [a], tls_pin: " + pinA + "}\n" +
		"fetch:\n  deliver: {smtp: mta.example.net, tls_pin: [" + pinA + "], ca_file: " + ca + ", tls_verify: pin-only}\n" +
		"  accounts:\n    - {server: pop.example.net, proto: pop3, user: u, password_file: /p, to: me,\n" +
		"       tls_pin: [" + pinA + ", \"" + pinB + "\"], ca_file: " + ca + "}\n"
	c, err := Parse(filepath.Join(dir, "t.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	s := c.ETRN.Servers[0].Trust
	if len(s.Pins) != 1 || s.Pins[0].String() != pinA || s.CAFile != "" || s.PinOnly {
		t.Errorf("etrn trust %+v", s)
	}
	a := c.Fetch.Accounts[0].Trust
	if got := a.Strings(); !reflect.DeepEqual(got, []string{pinA, pinB}) || a.CAFile != ca || len(a.CA) == 0 || a.PinOnly {
		t.Errorf("account trust %+v", a)
	}
	d := c.Fetch.Deliver.Trust
	if len(d.Pins) != 1 || !d.PinOnly || d.CAFile != ca {
		t.Errorf("deliver trust %+v", d)
	}
	// The effective config shows the keys and parses back the same.
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tls_pin:", pinB, "ca_file: " + ca, "tls_verify: pin-only"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("Redacted lacks %q:\n%s", want, out)
		}
	}
	c2, err := Parse(filepath.Join(dir, "t.yaml"), out)
	if err != nil {
		t.Fatalf("Redacted does not parse: %v\n%s", err, out)
	}
	clearLines(c)
	clearLines(c2)
	if !reflect.DeepEqual(c, c2) {
		t.Errorf("round trip differs:\n%+v\n%+v", c, c2)
	}
}

func TestTLSTrustProblems(t *testing.T) {
	testEnv(t, 1000, nil)
	dir := t.TempDir()
	ca := writeCA(t, dir)
	notPEM := writeFile(t, dir, "junk.pem", "hello\n", 0o644)
	missing := filepath.Join(dir, "missing.pem")
	const pop = "fetch:\n  accounts:\n    - {server: pop.example.net, proto: pop3, user: u, password_file: /p, to: me, "
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"fingerprint, not a pin", pop + "tls_pin: \"AB:CD:EF\"}\n", []string{
			`t.yaml:3: fetch.accounts[0].tls_pin: invalid pin "AB:CD:EF": expected sha256//BASE64 (the SHA-256 of the server's public key, as ` + "`linkctl pin`" + ` prints it)`}},
		{"short pin in a list", pop + "tls_pin: [" + pinA + ", sha256//AAAA]}\n", []string{
			`t.yaml:3: fetch.accounts[0].tls_pin[1]: invalid pin "sha256//AAAA": expected sha256// and 44 characters of base64 (32 bytes)`}},
		{"missing ca_file", pop + "ca_file: " + missing + "}\n", []string{
			`t.yaml:3: fetch.accounts[0].ca_file: cannot use it: open ` + missing + `: no such file or directory (expected a readable PEM file of CA certificates, or the server's own self-signed certificate)`}},
		{"ca_file without certificates", pop + "ca_file: " + notPEM + "}\n", []string{
			`t.yaml:3: fetch.accounts[0].ca_file: cannot use it: ` + notPEM + `: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----) (expected a readable PEM file of CA certificates, or the server's own self-signed certificate)`}},
		{"pin with tls none", pop + "tls: none, tls_pin: " + pinA + "}\n", []string{
			`t.yaml:3: fetch.accounts[0].tls_pin: needs TLS, but tls is none (expected tls: implicit or starttls)`}},
		{"pin on loopback without tls", "fetch:\n  accounts:\n    - {server: 127.0.0.1, proto: imap, user: u, password_file: /p, to: me, ca_file: " + ca + "}\n", []string{
			`t.yaml:3: fetch.accounts[0].ca_file: needs TLS, but tls defaults to none for a loopback server (expected tls: implicit or starttls)`}},
		{"pin over a plugin", pop + "plugin: [ssh, h, pop3d], tls_pin: " + pinA + "}\n", []string{
			`t.yaml:3: fetch.accounts[0].tls_pin: does not apply over a plugin (expected none of tls_pin, ca_file, tls_verify; the plugin secures the stream)`}},
		{"pin-only without a pin", pop + "tls_verify: pin-only}\n", []string{
			`t.yaml:3: fetch.accounts[0].tls_verify: pin-only without a tls_pin (expected a tls_pin too: without it nothing would be checked)`}},
		{"bad tls_verify", pop + "tls_verify: none}\n", []string{
			`t.yaml:3: fetch.accounts[0].tls_verify: invalid value "none" (expected one of: full, pin-only)`}},
		{"etrn pin with tls none", "etrn:\n  servers:\n    - {server: mx.example.net, domains: [a], tls: none, tls_pin: " + pinA + "}\n", []string{
			`t.yaml:3: etrn.servers[0].tls_pin: needs TLS, but tls is none (expected tls: starttls or implicit)`}},
		{"deliver pin to loopback smtp", "fetch:\n  deliver: {smtp: 127.0.0.1, tls_pin: " + pinA + "}\n  accounts:\n" + acct, []string{
			`t.yaml:2: fetch.deliver.tls_pin: needs TLS, but tls defaults to none for a loopback server (expected tls: starttls)`}},
		{"deliver pin to lmtp", "fetch:\n  deliver: {lmtp: /run/lmtp, ca_file: " + ca + "}\n  accounts:\n" + acct, []string{
			`t.yaml:2: fetch.deliver.ca_file: applies only to smtp delivery (expected no tls_pin, ca_file or tls_verify for lmtp, mda or maildir)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := trustProblems(t, tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
