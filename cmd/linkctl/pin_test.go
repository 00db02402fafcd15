package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// TestPinCommand: `linkctl pin` against a private Dovecot (POP3 and IMAP,
// implicit TLS and STARTTLS) prints the pin computed from Dovecot's own
// certificate file, says whether the chain verifies (not against the
// system roots, yes with --ca-file), and never logs in.
func TestPinCommand(t *testing.T) {
	dc := testpeer.StartDovecot(t, testpeer.DovecotOptions{TLS: true})
	data, err := os.ReadFile(filepath.Join(dc.Dir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	want := netconn.PinOf(cert).String()
	ca := filepath.Join(dc.Dir, "ca.pem")

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"pop3s", []string{"pin", "--proto", "pop3", "--tls", "implicit", dc.POP3SAddr()}},
		{"pop3 stls", []string{"pin", "--proto", "pop3", "--tls", "starttls", dc.POP3Addr()}},
		{"imaps", []string{"pin", "--proto", "imap", "--tls", "implicit", dc.IMAPSAddr()}},
		{"imap starttls", []string{"pin", "--proto", "imap", "--tls", "starttls", dc.IMAPAddr()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := linkctl(t, nil, tc.args...)
			t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
			if code != 0 {
				t.Fatalf("exit %d", code)
			}
			for _, w := range []string{"pin       " + want, "\ntls_pin: " + want + "\n", "verified  NO", "subject   ", "issuer    ", "valid     "} {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			out, _, code = linkctl(t, nil, append([]string{tc.args[0], "--ca-file", ca}, tc.args[1:]...)...)
			if code != 0 || !strings.Contains(out, "verified  yes") || !strings.Contains(out, want) {
				t.Errorf("with --ca-file: exit %d\n%s", code, out)
			}
		})
	}
	if strings.Contains(dc.Log(), "Login: ") {
		t.Errorf("linkctl pin logged in:\n%s", dc.Log())
	}
}

// TestPinCommandSMTP: STARTTLS for SMTP (the default on port 25's
// protocol), against a sink with a self-signed certificate.
func TestPinCommandSMTP(t *testing.T) {
	cert, _ := testpeer.SelfSigned(t, "127.0.0.1")
	sink := testpeer.StartSink(t, testpeer.SinkOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	out, errOut, code := linkctl(t, nil, "pin", "--proto", "smtp", sink.Addr())
	if code != 0 || !strings.Contains(out, "tls_pin: "+netconn.PinOf(leaf).String()) || !strings.Contains(out, "tls: starttls") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

func TestPinCommandUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pin"}, "need one HOST[:PORT]"},
		{[]string{"pin", "127.0.0.1:4444"}, "--proto"},
		{[]string{"pin", "--proto", "nntp", "127.0.0.1:4444"}, "expected pop3, imap, smtp or etrn"},
		{[]string{"pin", "--proto", "pop3", "--tls", "none", "127.0.0.1:4444"}, "expected implicit or starttls"},
	} {
		_, errOut, code := linkctl(t, nil, tc.args...)
		if code != 5 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 5 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestPinOptionsDefaults(t *testing.T) {
	for _, tc := range []struct{ server, proto, tls, addr, gotProto, gotTLS string }{
		{"pop.example.net:995", "", "", "pop.example.net:995", "pop3", "implicit"},
		{"pop.example.net:110", "", "", "pop.example.net:110", "pop3", "starttls"},
		{"imap.example.net", "imap", "", "imap.example.net:993", "imap", "implicit"},
		{"imap.example.net", "imap", "starttls", "imap.example.net:143", "imap", "starttls"},
		{"mx.example.net", "etrn", "", "mx.example.net:25", "etrn", "starttls"},
		{"mx.example.net:587", "", "", "mx.example.net:587", "smtp", "starttls"},
		{"[2001:db8::1]:465", "", "", "[2001:db8::1]:465", "smtp", "implicit"},
	} {
		o, err := pinOptions(tc.server, tc.proto, tc.tls)
		if err != nil || o.Addr != tc.addr || o.Proto != tc.gotProto || string(o.TLS) != tc.gotTLS {
			t.Errorf("pinOptions(%q, %q, %q) = %s %s %s, %v; want %s %s %s", tc.server, tc.proto, tc.tls,
				o.Addr, o.Proto, o.TLS, err, tc.addr, tc.gotProto, tc.gotTLS)
		}
	}
}
