package fetchmailrc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/config"
)

// The converted samples must be configs linkctl accepts: config.Parse is
// what `linkctl check` runs.
func TestConvertedSamplesPassConfigParse(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.rc")
	for _, f := range files {
		data, _ := os.ReadFile(f)
		rc, err := Parse(f, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, inline := range []bool{false, true} {
			dir := t.TempDir()
			res, err := Convert(rc, Options{InlineSecrets: inline, SecretDir: dir, LocalUser: "me", Hostname: "home.example"})
			if err != nil {
				t.Fatal(err)
			}
			for p, s := range res.Secrets {
				if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := config.Parse(filepath.Join(dir, "linkctl.yaml"), res.YAML)
			if err != nil {
				t.Errorf("%s (inline %v): config.Parse: %v\n%s", f, inline, err, res.YAML)
				continue
			}
			if len(cfg.Fetch.Accounts) == 0 {
				t.Errorf("%s: no accounts in the parsed config", f)
			}
		}
	}
}

// Every keyword at once: the result must still be a config linkctl loads,
// with each option where it belongs.
func TestKitchenSink(t *testing.T) {
	data, err := os.ReadFile("testdata/kitchen-sink.rc")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := Parse("kitchen-sink.rc", data)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := Convert(rc, Options{InlineSecrets: true, SecretDir: dir, LocalUser: "me"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(filepath.Join(dir, "linkctl.yaml"), res.YAML)
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, res.YAML)
	}
	byName := map[string]config.Account{}
	for _, a := range cfg.Fetch.Accounts {
		byName[a.Name] = a
	}
	jane, joe, kim, multi, odmr := byName["pop.isp.example-jane"], byName["pop.isp.example-joe"],
		byName["imap.work.example"], byName["multi.isp.example"], byName["odmr.isp.example"]
	if jane.TLS != "implicit" || !jane.Keep || !jane.FetchAll || jane.Limit != 2000000 || jane.CommitEvery != 25 ||
		jane.FetchLimit != 200 || jane.Password.Inline != `pa"ss` || jane.Deliver.SMTP != "localhost:2525" || jane.Timeout != 90*time.Second {
		t.Errorf("jane = %+v", jane)
	}
	if joe.Keep || joe.Deliver.LMTP != "/run/dovecot/lmtp" {
		t.Errorf("joe = %+v", joe)
	}
	if kim.Proto != "imap" || !strings.HasSuffix(kim.Server, ":993") || !kim.Idle || len(kim.Folders) != 2 ||
		strings.Join(kim.Deliver.MDA, " ") != "/usr/bin/procmail -d %T" {
		t.Errorf("kim = %+v", kim)
	}
	if multi.Envelope != "X-Original-To" || strings.Join(multi.LocalDomains, " ") != "example.org multi.isp.example" || strings.Join(multi.To, ",") != "alice,bob,*" {
		t.Errorf("multi = %+v", multi)
	}
	if odmr.Proto != "odmr" || strings.Join(odmr.Domains, " ") != "example.org" {
		t.Errorf("odmr = %+v", odmr)
	}
	if len(cfg.ETRN.Servers) != 1 || strings.Join(cfg.ETRN.Servers[0].Domains, " ") != "example.org example.net" {
		t.Errorf("etrn = %+v", cfg.ETRN)
	}
	if cfg.Link.Interval != 600*time.Second || cfg.Log.File != "/var/log/fetchmail.log" || cfg.Log.Syslog {
		t.Errorf("link %+v log %+v", cfg.Link, cfg.Log)
	}
	var steps []string
	for _, s := range cfg.Pipeline {
		steps = append(steps, s.Name)
	}
	if strings.Join(steps, " ") != "etrn vpn-up fetch vpn-down" {
		t.Errorf("pipeline = %v", steps)
	}
	warn := strings.Join(res.Warnings, "\n")
	for _, w := range []string{"skip entry \"old.isp.example\"", "batchlimit 50", "flush:", "interval 3", "idfile", "no bouncemail", "postmaster"} {
		if !strings.Contains(warn, w) {
			t.Errorf("no warning about %s in:\n%s", w, warn)
		}
	}
}
