package config

import (
	"strings"
	"testing"

	"github.com/linkctl/linkctl/internal/authmech"
)

// TestAuthIsTheStagesMech: `auth:` is parsed once, by authmech.Parse, into
// the type the fetch stages take: every mechanism the stages list is
// accepted (apop for POP3 only), whatever its case, and anything else is
// refused with that same list.
func TestAuthIsTheStagesMech(t *testing.T) {
	account := func(proto, auth string) string {
		return "fetch:\n  accounts:\n    - {server: s.example.net, proto: " + proto + ", user: u, password_file: /p, to: me, auth: " + auth + "}\n"
	}
	for _, proto := range []string{"pop3", "imap"} {
		for _, m := range authmech.All() {
			for _, written := range []string{string(m), strings.ToUpper(string(m))} {
				cfg, err := Parse("t.yaml", []byte(account(proto, written)))
				if m == authmech.APOP && proto == "imap" {
					if err == nil {
						t.Errorf("imap, auth %s: accepted", written)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s, auth %s: %v", proto, written, err)
					continue
				}
				var got authmech.Mech = cfg.Fetch.Accounts[0].Auth
				if got != m {
					t.Errorf("%s, auth %s: the stage gets %q, want %q", proto, written, got, m)
				}
			}
		}
	}
	_, err := Parse("t.yaml", []byte(account("pop3", "gssapi")))
	if want := `t.yaml:3: fetch.accounts[0].auth: invalid value "gssapi" (expected one of: ` + strings.Join(authmech.Names(), ", ") + `)`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("auth gssapi: %v\nwant %s", err, want)
	}
	cfg, err := Parse("t.yaml", []byte("fetch:\n  accounts:\n    - {server: s.example.net, proto: imap, user: u, password_file: /p, to: me}\n"))
	if err != nil || cfg.Fetch.Accounts[0].Auth != authmech.Auto {
		t.Errorf("auth left out: %v, %v; want auto", cfg, err)
	}
}
