package fetchmailrc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sslcertfile names the CAs fetchmail trusts for a server: linkctl's
// ca_file, when the file is there to be checked; sslfingerprint has no
// equivalent and the warning says how to pin instead.
func TestSSLCertFileAndFingerprint(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, res := parsed(t, `poll pop.example.net proto pop3 user u pass p is me here ssl sslcertfile "`+ca+`" sslfingerprint "AB:CD"`)
	if got := cfg.Fetch.Accounts[0].Trust.CAFile; got != ca {
		t.Errorf("ca_file = %q, want %q:\n%s", got, ca, res.YAML)
	}
	if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, "linkctl pin") {
		t.Errorf("no hint to pin with linkctl pin: %q", res.Warnings)
	}
	_, res = parsed(t, `poll pop.example.net proto pop3 user u pass p is me here ssl sslcertfile "/nonexistent/ca.pem"`)
	if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, "sslcertfile /nonexistent/ca.pem cannot be read here") {
		t.Errorf("no warning for an unreadable sslcertfile: %q", res.Warnings)
	}
}
