package fetchmailrc

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/config"
)

// parsed converts src and loads the result the way `linkctl check` does.
func parsed(t *testing.T, src string) (*config.Config, *Result) {
	t.Helper()
	dir := t.TempDir()
	res := convert(t, src, Options{InlineSecrets: true, SecretDir: dir, LocalUser: "me", Hostname: "home.example"})
	cfg, err := config.Parse(filepath.Join(dir, "linkctl.yaml"), res.YAML)
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, res.YAML)
	}
	return cfg, res
}

// Issue 18 (a): an ETRN relay is asked for the fetchdomains, not this
// host's name; (d) the poll name of a via entry is kept.
func TestETRNFetchdomainsAndPollName(t *testing.T) {
	cfg, res := parsed(t, `poll getmail via pop.essadm.org proto etrn fetchdomains example.org,@lists.example.org`)
	if len(cfg.ETRN.Servers) != 1 {
		t.Fatalf("etrn servers: %+v", cfg.ETRN.Servers)
	}
	s := cfg.ETRN.Servers[0]
	if got := strings.Join(s.Domains, " "); got != "example.org @lists.example.org" {
		t.Errorf("ETRN domains = %q, want the fetchdomains", got)
	}
	if s.Server != "pop.essadm.org:25" {
		t.Errorf("server = %q", s.Server)
	}
	if s.Name != "getmail" {
		t.Errorf("etrn server name = %q, want the poll name getmail:\n%s", s.Name, res.YAML)
	}
	// Without fetchdomains fetchmail asks for this host's name.
	cfg, _ = parsed(t, `poll relay.example.net proto etrn`)
	if got := strings.Join(cfg.ETRN.Servers[0].Domains, " "); got != "home.example" {
		t.Errorf("default ETRN domains = %q", got)
	}
	// localdomains are not what ETRN asks for, in fetchmail either: warned.
	_, res = parsed(t, `poll relay.example.net proto etrn localdomains example.org fetchdomains example.net`)
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "localdomains example.org") {
		t.Errorf("no warning about the unused localdomains: %q", res.Warnings)
	}
}

// Issue 18 (b): envelope "Delivered-To:" loses its colon; the skip count
// is warned about.
func TestEnvelopeColonStripped(t *testing.T) {
	cfg, res := parsed(t, `poll mx.example.org proto imap envelope 1 "Delivered-To:" localdomains example.org
		user box pass p to anna bert here`)
	a := cfg.Fetch.Accounts[0]
	if a.Envelope != "Delivered-To" {
		t.Errorf("envelope = %q", a.Envelope)
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), `envelope 1 "Delivered-To:"`) {
		t.Errorf("no warning about the skip count: %q", res.Warnings)
	}
}

// Issue 18 (c): qvirtual and an ODMR entry's fetchdomains are carried over.
func TestQvirtualAndODMRDomains(t *testing.T) {
	cfg, res := parsed(t, `poll mx.example.org proto pop3 envelope X-Original-To qvirtual "fm-"
		localdomains example.org user box pass p to anna bert here
		poll odmr.example.net proto odmr user site pass s fetchdomains example.org example.com`)
	if a := cfg.Fetch.Accounts[0]; a.QVirtual != "fm-" {
		t.Errorf("qvirtual = %q", a.QVirtual)
	}
	if o := cfg.Fetch.Accounts[1]; strings.Join(o.Domains, " ") != "example.org example.com" {
		t.Errorf("ODMR domains = %q", o.Domains)
	}
	if w := strings.Join(res.Warnings, "\n"); strings.Contains(w, "qvirtual") || strings.Contains(w, "fetchdomains") {
		t.Errorf("carried-over options warned as dropped: %q", res.Warnings)
	}
}

// An entry's "no envelope" wins over the defaults' envelope, and the
// defaults' "no envelope" does not undo an entry's own header.
func TestNoEnvelopeAgainstDefaults(t *testing.T) {
	cfg, _ := parsed(t, `defaults envelope X-Original-To
		poll a.example proto pop3 no envelope localdomains example.org user box pass p to anna bert here`)
	if e := cfg.Fetch.Accounts[0].Envelope; e != "" {
		t.Errorf("envelope = %q, want none (no envelope)", e)
	}
	cfg, _ = parsed(t, `defaults no envelope
		poll b.example proto pop3 envelope Delivered-To localdomains example.org user box pass p to anna bert here`)
	if e := cfg.Fetch.Accounts[0].Envelope; e != "Delivered-To" {
		t.Errorf("envelope = %q, want Delivered-To", e)
	}
}
