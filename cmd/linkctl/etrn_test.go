package main

import (
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/internal/testpeer"
)

func TestETRNCommand(t *testing.T) {
	relay := testpeer.ETRNRelay(t, map[string]string{"nothere.test": "459 4.7.1 <nothere.test>: service unavailable"})
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("wrong\n"), 0o600)
	good := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(good, []byte("right\n"), 0o600)
	host, port, _ := net.SplitHostPort(relay)

	cases := []struct {
		name   string
		args   []string
		code   int
		want   []string
		absent []string
	}{
		{"accepted with transcript", []string{"etrn", "--tls", "none", "-v", relay, "example.org", "@example.org"}, 0,
			[]string{"C: ETRN example.org", "example.org: 250 Queuing started", "new connection", "@example.org: 250"}, nil},
		{"port flag", []string{"etrn", "--tls", "none", "--port", port, host, "example.org"}, 0, []string{"example.org: 250"}, nil},
		{"refused", []string{"etrn", "--tls", "none", relay, "example.org", "nothere.test"}, 7,
			[]string{"nothere.test: 459 4.7.1", "fast_flush_domains"}, nil},
		{"auth ok", []string{"etrn", "--tls", "none", "-v", "--user", "u", "--password-file", good, relay, "example.org"}, 0,
			[]string{"C: AUTH PLAIN ***", "example.org: 250"}, []string{"right", base64.StdEncoding.EncodeToString([]byte("\x00u\x00right"))}},
		{"auth failure", []string{"etrn", "--tls", "none", "-v", "--user", "u", "--password-file", pw, relay, "example.org"}, 3,
			[]string{"535 5.7.8"}, []string{"wrong"}},
		{"starttls not offered", []string{"etrn", "--tls", "starttls", relay, "example.org"}, 4, []string{"does not offer STARTTLS"}, []string{"C: ETRN"}},
		// As in a config: a relay on loopback is plaintext unless --tls says
		// otherwise (it used to demand STARTTLS here).
		{"loopback defaults to none", []string{"etrn", relay, "example.org"}, 0, []string{"(tls: none)", "example.org: 250"}, nil},
		{"bad tls", []string{"etrn", "--tls", "bogus", relay, "example.org"}, 5, []string{"linkctl etrn: --tls: invalid value \"bogus\""}, []string{"C: EHLO"}},
		{"usage", []string{"etrn", relay}, 5, []string{"DOMAIN"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := linkctl(t, nil, tc.args...)
			t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
			all := out + errOut
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(all, a) {
					t.Errorf("output has %q:\n%s", a, all)
				}
			}
		})
	}
}

func TestETRNCommandNetwork(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, errOut, code := linkctl(t, nil, "etrn", "--tls", "none", addr, "example.org")
	if code != 2 || !strings.Contains(errOut, "cannot connect") {
		t.Errorf("exit %d, stderr %q; want 2 and the connection error", code, errOut)
	}
}
