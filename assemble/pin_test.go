package assemble

// TLS pinning and private CAs end to end (issue 20): a config with
// tls_pin / ca_file, assembled as `linkctl run` assembles it, against a
// private Dovecot with a certificate from its own test CA (POP3 and IMAP,
// implicit TLS and STARTTLS), a scripted ETRN relay with STARTTLS, and an
// SMTP sink with STARTTLS for delivery.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/etrn"
	"github.com/linkctl/linkctl/fetch"
	"github.com/linkctl/linkctl/fetch/deliver"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/testpeer"
)

const wrongPin = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

// pinOfPEM is the pin of the first certificate in a PEM file.
func pinOfPEM(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", path)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return netconn.PinOf(cert).String()
}

// fetchOnce runs the fetch stage of yaml once and returns the account's
// result.
func fetchOnce(t *testing.T, dir, yaml string) fetch.AccountResult {
	t.Helper()
	cfg, err := config.Parse(filepath.Join(dir, "linkctl.yaml"), []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	opts, done := New(nil).FetchOptions(cfg, nil)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, _ := fetch.Run(ctx, opts, nil)
	if len(res.Accounts) != 1 {
		t.Fatalf("results %+v", res)
	}
	return res.Accounts[0]
}

// TestPinAgainstDovecot: for POP3 and IMAP, implicit TLS and STARTTLS, the
// right pin fetches the mail; a wrong pin is refused with both pins named,
// as a permanent error, before any login (Dovecot logs no login, and the
// message stays on the server); ca_file alone is enough; without ca_file
// the test CA is not trusted.
func TestPinAgainstDovecot(t *testing.T) {
	dc := testpeer.StartDovecot(t, testpeer.DovecotOptions{TLS: true, Users: map[string]string{"alice": "secret"}})
	ca := filepath.Join(dc.Dir, "ca.pem")
	pin := pinOfPEM(t, filepath.Join(dc.Dir, "cert.pem"))
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("secret\n"), 0o600)

	for _, tc := range []struct{ proto, tls, addr string }{
		{"pop3", "implicit", dc.POP3SAddr()}, {"pop3", "starttls", dc.POP3Addr()},
		{"imap", "implicit", dc.IMAPSAddr()}, {"imap", "starttls", dc.IMAPAddr()},
	} {
		t.Run(tc.proto+"-"+tc.tls, func(t *testing.T) {
			sub := t.TempDir()
			cfg := func(trust string) string {
				return fmt.Sprintf("state_dir: %s\nfetch:\n  deliver: {maildir: %s}\n  accounts:\n"+
					"    - {name: a, proto: %s, server: \"%s\", tls: %s, user: alice, password_file: %s%s}\n",
					filepath.Join(sub, "state"), filepath.Join(sub, "Maildir"), tc.proto, tc.addr, tc.tls, pw, trust)
			}
			logins := func() int { return strings.Count(dc.Log(), "Login: user=<alice>") }

			// A wrong pin, with a chain that verifies: refused before login.
			dc.AddMessage("alice", "INBOX", []byte("Subject: pinned\r\n\r\nbody\r\n"))
			before := logins()
			r := fetchOnce(t, sub, cfg(", tls_pin: "+wrongPin+", ca_file: "+ca))
			if r.Err == nil || r.Fetched != 0 {
				t.Fatalf("wrong pin: fetched %d, err %v; want refused", r.Fetched, r.Err)
			}
			var pe *netconn.PinError
			msg := r.Err.Error()
			t.Logf("wrong pin: %s", msg)
			if !errors.As(r.Err, &pe) || !strings.Contains(msg, pin) || !strings.Contains(msg, wrongPin) || !strings.Contains(msg, tc.addr) {
				t.Errorf("wrong pin: error %q does not name the server, its key %s and the pin", msg, pin)
			}
			if errkind.IsTemporary(r.Err) {
				t.Errorf("wrong pin: %v is temporary, want permanent", r.Err)
			}
			if logins() != before {
				t.Errorf("wrong pin: Dovecot saw a login:\n%s", dc.Log())
			}

			// No ca_file: the private CA is not among the system roots.
			r = fetchOnce(t, sub, cfg(", tls_pin: "+pin))
			var cv *tls.CertificateVerificationError
			if r.Err == nil || !errors.As(r.Err, &cv) || errors.As(r.Err, &pe) {
				t.Errorf("right pin without ca_file: err %v, want an untrusted-certificate error", r.Err)
			}
			if logins() != before {
				t.Errorf("untrusted certificate: Dovecot saw a login")
			}

			// The right pin (and the CA, as a list with an old pin):
			// fetched and deleted.
			r = fetchOnce(t, sub, cfg(", tls_pin: ["+wrongPin+", "+pin+"], ca_file: "+ca))
			if r.Err != nil || r.Fetched != 1 {
				t.Fatalf("right pin: fetched %d, err %v\n%s", r.Fetched, r.Err, dc.Log())
			}
			if logins() == before {
				t.Errorf("right pin: Dovecot logged no login; the test cannot tell a login from none")
			}

			// ca_file alone.
			dc.AddMessage("alice", "INBOX", []byte("Subject: ca only\r\n\r\nbody\r\n"))
			if r = fetchOnce(t, sub, cfg(", ca_file: "+ca)); r.Err != nil || r.Fetched != 1 {
				t.Fatalf("ca_file: fetched %d, err %v", r.Fetched, r.Err)
			}
		})
	}
}

// startTLSRelay is a scripted ETRN relay offering STARTTLS and AUTH PLAIN;
// it sends every line it reads after the TLS handshake to lines (one slice
// per session), so a test can see that nothing (no AUTH) followed a
// refused certificate.
func startTLSRelay(t *testing.T, cert tls.Certificate) (string, chan []string) {
	t.Helper()
	sessions := make(chan []string, 4)
	addr := serve(t, func(c net.Conn, r *bufio.Reader) {
		fmt.Fprint(c, "220 relay.test ESMTP\r\n")
		if l, _ := r.ReadString('\n'); !strings.HasPrefix(l, "EHLO ") {
			return
		}
		fmt.Fprint(c, "250-relay.test\r\n250-STARTTLS\r\n250 ETRN\r\n")
		if l, _ := r.ReadString('\n'); l != "STARTTLS\r\n" {
			return
		}
		fmt.Fprint(c, "220 go ahead\r\n")
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		var got []string
		defer func() { sessions <- got }()
		if tc.Handshake() != nil {
			// The client refused the certificate; read whatever it
			// still sends in plaintext (it must send nothing).
			for {
				l, err := r.ReadString('\n')
				if l != "" {
					got = append(got, strings.TrimSpace(l))
				}
				if err != nil {
					return
				}
			}
		}
		tr := bufio.NewReader(tc)
		for {
			l, err := tr.ReadString('\n')
			if err != nil {
				return
			}
			l = strings.TrimSpace(l)
			got = append(got, l)
			switch verb, _, _ := strings.Cut(strings.ToUpper(l), " "); verb {
			case "EHLO":
				fmt.Fprint(tc, "250-relay.test\r\n250-AUTH PLAIN\r\n250 ETRN\r\n")
			case "AUTH":
				fmt.Fprint(tc, "235 ok\r\n")
			case "ETRN":
				fmt.Fprint(tc, "250 Queuing started\r\n")
			case "QUIT":
				fmt.Fprint(tc, "221 bye\r\n")
				return
			default:
				fmt.Fprint(tc, "500 what\r\n")
			}
		}
	})
	return addr, sessions
}

func writeCertPEM(t *testing.T, dir string, cert tls.Certificate) string {
	t.Helper()
	p := filepath.Join(dir, "relay.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func leafPinOf(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return netconn.PinOf(leaf).String()
}

// TestPinETRN: an ETRN relay behind STARTTLS with a self-signed
// certificate given as ca_file: the right pin gets EHLO, AUTH, ETRN over
// TLS; a wrong pin ends the session in the handshake, and the relay reads
// nothing more (no AUTH, no password).
func TestPinETRN(t *testing.T) {
	cert, _ := testpeer.SelfSigned(t, "127.0.0.1")
	addr, sessions := startTLSRelay(t, cert)
	dir := t.TempDir()
	certFile := writeCertPEM(t, dir, cert)
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("right\n"), 0o600)
	ask := func(pin string) (etrn.ServerResult, []string) {
		yaml := fmt.Sprintf("etrn:\n  servers:\n    - {server: \"%s\", domains: [example.org], tls: starttls, user: u, password_file: %s, tls_pin: %s, ca_file: %s}\n",
			addr, pw, pin, certFile)
		cfg, err := config.Parse(filepath.Join(dir, "linkctl.yaml"), []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res := etrn.Ask(ctx, ETRNServer(cfg.ETRN.Servers[0]), nil, nil)
		select {
		case got := <-sessions:
			return res, got
		case <-time.After(5 * time.Second):
			t.Fatal("relay saw no session end")
		}
		return res, nil
	}

	res, got := ask(leafPinOf(t, cert))
	if res.Err != nil || strings.Join(got, "|") != "EHLO "+etrn.FQDN()+"|AUTH PLAIN "+"AHUAcmlnaHQ="+"|ETRN example.org|QUIT" {
		t.Fatalf("right pin: err %v, relay read %q", res.Err, got)
	}

	res, got = ask(wrongPin)
	t.Logf("wrong pin: %v", res.Err)
	var pe *netconn.PinError
	if !errors.As(res.Err, &pe) || errkind.IsTemporary(res.Err) || !strings.Contains(res.Err.Error(), wrongPin) {
		t.Errorf("wrong pin: err %v, want a permanent pin error", res.Err)
	}
	if len(got) != 0 {
		t.Errorf("wrong pin: the relay read %q after the handshake, want nothing", got)
	}
}

// TestPinSMTPDelivery: delivery into an MTA over STARTTLS with a
// self-signed certificate as ca_file and its pin delivers; a wrong pin
// fails permanently and the MTA gets no message.
func TestPinSMTPDelivery(t *testing.T) {
	cert, _ := testpeer.SelfSigned(t, "127.0.0.1")
	sink := testpeer.StartSink(t, testpeer.SinkOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	dir := t.TempDir()
	certFile := writeCertPEM(t, dir, cert)
	deliverOne := func(pin string) error {
		yaml := fmt.Sprintf("fetch:\n  deliver: {smtp: \"%s\", tls: starttls, tls_pin: %s, ca_file: %s}\n"+
			"  accounts:\n    - {proto: pop3, server: pop.example.net, user: u, password_file: /p, to: me}\n", sink.Addr(), pin, certFile)
		cfg, err := config.Parse(filepath.Join(dir, "linkctl.yaml"), []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		tgt := New(nil).Target(cfg.Fetch.Deliver, dir)
		defer tgt.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return tgt.Deliver(ctx, deliver.Envelope{From: "a@example.org", To: []string{"me"}}, strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
	}

	err := deliverOne(wrongPin)
	t.Logf("wrong pin: %v", err)
	if err == nil || errkind.IsTemporary(err) {
		t.Errorf("wrong pin: err %v, want a permanent error", err)
	} else if !strings.Contains(err.Error(), wrongPin) || !strings.Contains(err.Error(), leafPinOf(t, cert)) {
		t.Errorf("wrong pin: error %q does not name both pins", err)
	}
	if n := len(sink.Messages()); n != 0 {
		t.Fatalf("wrong pin: the sink got %d messages", n)
	}
	if err := deliverOne(leafPinOf(t, cert)); err != nil {
		t.Fatalf("right pin: %v", err)
	}
	if m := sink.Messages(); len(m) != 1 || !m[0].TLS {
		t.Errorf("right pin: sink messages %+v, want one over TLS", m)
	}
}
