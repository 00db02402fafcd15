package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
)

// The one-off commands take the config's defaults: a server named on the
// command line gets the TLS mode and port a config file would give it.
// Before issue 16 `linkctl fetch --server` defaulted to STARTTLS (the
// config: implicit TLS) and `linkctl etrn` to STARTTLS on loopback (the
// config: none).
func TestOneOffDefaultsAreTheConfigs(t *testing.T) {
	for _, tc := range []struct {
		proto, server, tls, addr string
		mode                     TLSMode
	}{
		{"pop3", "pop.example.net", "", "pop.example.net:995", TLSImplicit},
		{"pop3", "pop.example.net:110", "", "pop.example.net:110", TLSStartTLS},
		{"pop3", "localhost", "", "localhost:110", TLSNone},
		{"imap", "imap.example.net", "", "imap.example.net:993", TLSImplicit},
		{"imap", "imap.example.net", "starttls", "imap.example.net:143", TLSStartTLS},
		{"imap", "::1", "", "[::1]:143", TLSNone},
		{"etrn", "mx.example.net", "", "mx.example.net:25", TLSStartTLS},
		{"etrn", "127.0.0.1", "", "127.0.0.1:25", TLSNone},
		{"etrn", "mx.example.net", "implicit", "mx.example.net:465", TLSImplicit},
		{"etrn", "mx.example.net:587", "none", "mx.example.net:587", TLSNone},
	} {
		var addr string
		var mode TLSMode
		var err error
		if tc.proto == "etrn" {
			var c *Config
			if c, err = OneOffETRN(ETRNFlags{Server: tc.server, Domains: []string{"example.org"}, TLS: tc.tls}); err == nil {
				addr, mode = c.ETRN.Servers[0].Server, c.ETRN.Servers[0].TLS
			}
		} else {
			var c *Config
			c, err = OneOffFetch(FetchFlags{Proto: tc.proto, Server: tc.server, TLS: tc.tls, User: "u",
				PasswordFile: "/p", Deliver: "smtp:127.0.0.1:25"})
			if err == nil {
				addr, mode = c.Fetch.Accounts[0].Server, c.Fetch.Accounts[0].TLS
			}
		}
		if err != nil || addr != tc.addr || mode != tc.mode {
			t.Errorf("%s %s tls %q: %s %s %v; want %s %s", tc.proto, tc.server, tc.tls, addr, mode, err, tc.addr, tc.mode)
		}
		// The same server written in a file gets the same.
		var file string
		if tc.proto == "etrn" {
			file = "etrn:\n  servers: [{server: \"" + tc.server + "\", domains: [example.org]" + tlsKey(tc.tls) + "}]\n"
		} else {
			file = "fetch:\n  accounts: [{proto: " + tc.proto + ", server: \"" + tc.server + "\", user: u, password_file: /p, to: me" + tlsKey(tc.tls) + "}]\n"
		}
		c, err := Parse("t.yaml", []byte(file))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if tc.proto == "etrn" {
			addr, mode = c.ETRN.Servers[0].Server, c.ETRN.Servers[0].TLS
		} else {
			addr, mode = c.Fetch.Accounts[0].Server, c.Fetch.Accounts[0].TLS
		}
		if addr != tc.addr || mode != tc.mode {
			t.Errorf("file %q: %s %s; want %s %s", file, addr, mode, tc.addr, tc.mode)
		}
	}
}

func tlsKey(s string) string {
	if s == "" {
		return ""
	}
	return ", tls: " + s
}

// A bad flag is refused with the config's check, naming the flag.
func TestOneOffProblemsNameTheFlag(t *testing.T) {
	good := FetchFlags{Proto: "pop3", Server: "pop.example.net", User: "u", PasswordFile: "/p", Deliver: "smtp:127.0.0.1:25"}
	for _, tc := range []struct {
		mod  func(*FetchFlags)
		want string
	}{
		{func(f *FetchFlags) { f.TLS = "ssl" }, `linkctl fetch: --tls: invalid value "ssl"`},
		{func(f *FetchFlags) { f.Proto = "pop2" }, `linkctl fetch: --proto: invalid value "pop2"`},
		{func(f *FetchFlags) { f.Server = "a b" }, `linkctl fetch: --server: invalid value "a b"`},
		{func(f *FetchFlags) { f.Auth = "cram-md5" }, `linkctl fetch: --auth: cram-md5 is not supported`},
		{func(f *FetchFlags) { f.Auth = "apop"; f.Proto = "imap" }, `--auth: apop is for pop3 only`},
		{func(f *FetchFlags) { f.Deliver = "pop3:x" }, `linkctl fetch: --deliver: "pop3:x" is not a delivery target`},
		{func(f *FetchFlags) { f.Deliver = "smtp:" }, `--deliver: "smtp:" is not a delivery target`},
		{func(f *FetchFlags) { f.Limit = -1 }, `--limit: invalid size "-1"`},
		{func(f *FetchFlags) { f.Sessions = 1000 }, `--sessions: invalid number "1000"`},
		{func(f *FetchFlags) { f.Timeout = -time.Second }, `--timeout: negative duration`},
		{func(f *FetchFlags) { f.Folder = "Lists" }, `--folder: only for proto imap`},
		{func(f *FetchFlags) { f.TLSPin = "AB:CD" }, `linkctl fetch: --tls-pin:`},
		{func(f *FetchFlags) { f.CAFile = "/nonexistent/ca.pem" }, `linkctl fetch: --ca-file:`},
	} {
		f := good
		tc.mod(&f)
		_, err := OneOffFetch(f)
		var ce Errors
		if errkind.KindOf(err) != errkind.Usage || !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want a usage error with %q", f, err, tc.want)
		}
	}
	if _, err := OneOffETRN(ETRNFlags{Server: "mx.example.net", Domains: []string{"a b"}}); err == nil || !strings.Contains(err.Error(), "linkctl etrn: DOMAIN: invalid value") {
		t.Errorf("etrn domain with a blank: %v", err)
	}
	if _, err := OneOffETRN(ETRNFlags{Server: "mx.example.net", Domains: []string{"example.org"}, TLS: "ssl"}); err == nil || !strings.Contains(err.Error(), "linkctl etrn: --tls: invalid value") {
		t.Errorf("etrn --tls ssl: %v", err)
	}
}

// The one-off commands take the same pins as a config's servers.
func TestOneOffTLSPin(t *testing.T) {
	pin := "sha256//" + strings.Repeat("A", 43) + "="
	cfg, err := OneOffFetch(FetchFlags{Proto: "pop3", Server: "pop.example.net", User: "u", PasswordFile: "/p",
		Deliver: "smtp:127.0.0.1:25", TLSPin: pin})
	if err != nil || len(cfg.Fetch.Accounts[0].Trust.Pins) != 1 {
		t.Fatalf("fetch --tls-pin: %v", err)
	}
	cfg, err = OneOffETRN(ETRNFlags{Server: "mx.example.net", Domains: []string{"example.org"}, TLSPin: pin})
	if err != nil || len(cfg.ETRN.Servers[0].Trust.Pins) != 1 {
		t.Fatalf("etrn --tls-pin: %v", err)
	}
	if _, err := OneOffETRN(ETRNFlags{Server: "mx.example.net", Domains: []string{"example.org"}, TLSPin: "AB:CD"}); err == nil || !strings.Contains(err.Error(), "linkctl etrn: --tls-pin:") {
		t.Errorf("etrn --tls-pin AB:CD: %v", err)
	}
}

func TestOneOffDeliver(t *testing.T) {
	for in, want := range map[string]string{
		"smtp:127.0.0.1:2525":         "smtp 127.0.0.1:2525",
		"smtp:localhost":              "smtp localhost:25",
		"lmtp:/run/dovecot/lmtp":      "lmtp /run/dovecot/lmtp",
		"maildir:/home/u/Maildir":     "maildir /home/u/Maildir",
		"mda:/usr/bin/procmail -d %T": "mda [/usr/bin/procmail -d %T]",
	} {
		c, err := OneOffFetch(FetchFlags{Proto: "pop3", Server: "localhost", User: "u", PasswordFile: "/p", Deliver: in})
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		d := c.Fetch.Accounts[0].Deliver
		var got string
		switch {
		case d.SMTP != "":
			got = "smtp " + d.SMTP
		case d.LMTP != "":
			got = "lmtp " + d.LMTP
		case d.Maildir != "":
			got = "maildir " + d.Maildir
		default:
			got = "mda [" + strings.Join(d.MDA, " ") + "]"
		}
		if got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
		if d.Sessions != DefaultSessions {
			t.Errorf("%s: %d sessions, want the default %d", in, d.Sessions, DefaultSessions)
		}
	}
	for _, bad := range []string{"", "smtp:", "pop3:x", "maildir", "mda: "} {
		if _, err := OneOffFetch(FetchFlags{Proto: "pop3", Server: "localhost", User: "u", PasswordFile: "/p", Deliver: bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// auth: cram-md5 used to pass check and fail at run time ("unknown auth",
// exit 5): neither fetch client speaks it. Check refuses it now.
func TestCheckRefusesCRAMMD5(t *testing.T) {
	for _, proto := range []string{"pop3", "imap"} {
		_, err := Parse("t.yaml", []byte("fetch:\n  accounts:\n    - {server: s.example.net, proto: "+proto+", user: u, password_file: /p, to: me, auth: cram-md5}\n"))
		if err == nil || !strings.Contains(err.Error(), "t.yaml:3: fetch.accounts[0].auth: cram-md5 is not supported for fetching") {
			t.Errorf("%s: %v", proto, err)
		}
	}
}

// A plugin with a password logs in, so it needs a user: check used to
// accept it and POP3 then failed at run time ("no user configured",
// exit 5). A plugin without a password runs pre-authenticated.
func TestPluginWithPasswordNeedsUser(t *testing.T) {
	_, err := Parse("t.yaml", []byte("fetch:\n  accounts:\n    - {proto: pop3, server: tunnel, plugin: [ssh, h, pop3d], password: p, to: me}\n"))
	if err == nil || !strings.Contains(err.Error(), "fetch.accounts[0].user: missing") {
		t.Errorf("plugin with password, no user: %v", err)
	}
	c, err := Parse("t.yaml", []byte("fetch:\n  accounts:\n    - {proto: pop3, server: tunnel, plugin: [ssh, h, pop3d], to: me}\n"))
	if err != nil || !c.Fetch.Accounts[0].PreAuth {
		t.Errorf("plugin without password: %v", err)
	}
}
