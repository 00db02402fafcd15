package deliver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mta.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"mta.test"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestSMTPStartTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	sink := testpeer.StartSink(t, testpeer.SinkOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	env := Envelope{To: []string{"u@x"}}

	tg := NewSMTP(SMTPOptions{Addr: sink.Addr(), StartTLS: true, TLSConfig: &tls.Config{RootCAs: pool}, Timeout: 5 * time.Second})
	defer tg.Close()
	for i := range 2 {
		if err := tg.Deliver(context.Background(), env, strings.NewReader("Subject: tls\n\n.x\n")); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	msgs := sink.Messages()
	if len(msgs) != 2 || !msgs[0].TLS || !msgs[1].TLS || string(msgs[0].Data) != wire("Subject: tls\n\n.x\n") {
		t.Fatalf("sink: %+v", msgs)
	}

	// A certificate that does not verify is a permanent error: retrying
	// will not fix it, and nothing goes out in plaintext.
	bad := NewSMTP(SMTPOptions{Addr: sink.Addr(), StartTLS: true, Timeout: 5 * time.Second})
	defer bad.Close()
	err := bad.Deliver(context.Background(), env, strings.NewReader("secret\n"))
	if err == nil || errkind.IsTemporary(err) || errkind.KindOf(err) != errkind.Delivery {
		t.Fatalf("untrusted certificate: err %v, want a permanent delivery error", err)
	}
	if len(sink.Messages()) != 2 {
		t.Fatal("delivered over an unverified connection")
	}
}
