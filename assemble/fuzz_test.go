package assemble

import (
	"slices"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/internal/authmech"
)

// seedConfigs are configs that use every kind of stage, account and
// delivery target; FuzzAssemble mutates them.
var seedConfigs = []string{
	string(config.Reference),
	string(config.Minimal),
	`fetch:
  deliver: {lmtp: /run/dovecot/lmtp}
  accounts:
    - {proto: imap, server: "127.0.0.1:1", user: u, password: p, to: me, idle: true, keep: true, mark_seen: true, expunge: all}
    - {proto: pop3, server: tunnel, plugin: [ssh, h, dovecot, exec, pop3], deliver: {maildir: /var/mail/u/Maildir}}
    - {name: t2, proto: imap, server: tunnel, plugin: [ssh, h, imapd], auth: external, deliver: {mda: [procmail, -f, "%F"]}}
    - {proto: odmr, server: odmr.example.net, user: u, password_command: [pass, x], domains: [example.org]}
    - {proto: pop3, server: pop.example.net:110, user: u, password_file: p, envelope: Delivered-To, localdomains: [example.org], to: ["*"], auth: apop}
`,
	`pipeline: [[flush, etrn], {stage: fetch, on_error: stop, timeout: 1m}, {exec: [/bin/true], name: hook}, drop]
flush: {mta: command, flush_command: [/usr/sbin/sendmail, -q], list_command: [mailq]}
etrn: {parallel: 2, ports: [25, 2525], servers: [{server: "[::1]", domains: ["@example.org", "#q"], user: u, password: p}]}
fetch: {accounts: [{proto: imap, server: i.example.net, user: u, password: p, to: me, folders: [INBOX, "Sent Items"], compress: on}]}
drop: {interface: ppp0, idle: 1s}
link: {watch: [wwan*], interval: 15m}
`,
}

// checkAssembles fails t when a config that check accepts does not
// assemble into runnable stages, or holds a value a stage refuses at run
// time as a config error (errkind.Usage). The second list mirrors those
// run-time checks of the stages (fetch/source_pop3.go, fetch/imap
// client.go and handshake.go, fetch/source_imap.go, fetch/odmr, fetch
// engine.go, fetch/deliver/mda.go, flush/driver.go, linkwatch/drop.go).
func checkAssembles(t *testing.T, cfg *config.Config) {
	t.Helper()
	as := New(nil)
	steps, err := as.Steps(cfg, nil)
	if err != nil {
		t.Fatalf("validated config does not assemble: %v", err)
	}
	var leaves func(ss []config.Step) int
	leaves = func(ss []config.Step) int {
		n := 0
		for _, s := range ss {
			if len(s.Group) > 0 {
				n += leaves(s.Group)
			} else {
				n++
			}
		}
		return n
	}
	got := 0
	for _, s := range steps {
		if len(s.Group) > 0 {
			got += len(s.Group)
		} else {
			got++
		}
	}
	if got != leaves(cfg.Pipeline) {
		t.Errorf("%d stages assembled for %d in the pipeline", got, leaves(cfg.Pipeline))
	}
	for _, s := range StageNames(cfg.Pipeline) {
		if _, err := as.Steps(cfg, []string{s}); err != nil {
			t.Errorf("run %s: %v", s, err)
		}
	}
	d := as.DaemonOptions(cfg)
	if d.LockPath == "" || d.StateDir == "" || d.ControlSocket == "" {
		t.Errorf("daemon options without paths: %+v", d)
	}
	idle := 0
	for _, a := range cfg.Fetch.Accounts {
		if a.Idle {
			idle++
		}
	}
	if len(d.Idle) != idle {
		t.Errorf("%d watchers for %d idle accounts", len(d.Idle), idle)
	}
	opts, done := as.FetchOptions(cfg, nil)
	defer done()
	for _, a := range opts.Accounts {
		if (a.Open == nil) == (a.Push == nil) || a.Target == nil || a.Workers <= 0 {
			t.Errorf("fetch account %s is not runnable: %+v", a.Name, a)
		}
	}

	for _, a := range cfg.Fetch.Accounts {
		bad := func(what string) {
			t.Errorf("account %s (line %d) passes check but fails at run time: %s", a.Name, a.Line, what)
		}
		switch a.Proto {
		case config.POP3:
			if a.User == "" && !a.PreAuth {
				bad("pop3 without user")
			}
			if !slices.Contains(authmech.All(), a.Auth) {
				bad("pop3 auth " + string(a.Auth))
			}
		case config.IMAP:
			if a.Auth == config.AuthAPOP || !slices.Contains(authmech.All(), a.Auth) {
				bad("imap auth " + string(a.Auth))
			}
			if a.Expunge != "auto" && a.Expunge != "all" {
				bad("expunge " + a.Expunge)
			}
			if a.Compress != "auto" && a.Compress != "on" && a.Compress != "off" {
				bad("compress " + a.Compress)
			}
			if len(a.Folders) == 0 {
				bad("no folder")
			}
		case config.ODMR:
			if a.User == "" || a.Password.IsZero() {
				bad("odmr without user or password")
			}
		default:
			bad("proto " + string(a.Proto))
		}
		switch a.TLS {
		case config.TLSImplicit, config.TLSStartTLS, config.TLSNone:
		default:
			bad("tls " + string(a.TLS))
		}
		if slices.Contains(a.To, "*") && (a.Envelope == "" || a.Envelope == "none") {
			bad(`to: "*" without multidrop`)
		}
		if n := btoi(a.Deliver.SMTP != "") + btoi(a.Deliver.LMTP != "") + btoi(len(a.Deliver.MDA) > 0) + btoi(a.Deliver.Maildir != ""); n != 1 || a.Deliver.Sessions < 1 {
			bad("delivery target")
		}
	}
	for _, s := range cfg.ETRN.Servers {
		if !strings.Contains(s.Server, ":") || (s.TLS != config.TLSImplicit && s.TLS != config.TLSStartTLS && s.TLS != config.TLSNone) {
			t.Errorf("etrn server %+v", s)
		}
	}
	if slices.Contains(StageNames(cfg.Pipeline), config.StageFlush) {
		if !slices.Contains([]string{"auto", "postfix", "sendmail", "exim", "opensmtpd", "command"}, cfg.Flush.MTA) ||
			(cfg.Flush.MTA == "command" && len(cfg.Flush.FlushCommand) == 0) {
			t.Errorf("flush %+v", cfg.Flush)
		}
	}
	if slices.Contains(StageNames(cfg.Pipeline), config.StageDrop) && len(cfg.Drop.Command) == 0 && cfg.Drop.Interface == "" {
		t.Errorf("drop without command or interface")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestEveryValidConfigAssembles: the shipped configs and the seeds pass
// check and assemble.
func TestEveryValidConfigAssembles(t *testing.T) {
	for i, s := range seedConfigs {
		cfg, err := config.Parse("/etc/linkctl/seed.yaml", []byte(s))
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		checkAssembles(t, cfg)
	}
}

// FuzzAssemble: whatever YAML passes check assembles into stages that do
// not fail with a config error at run time.
func FuzzAssemble(f *testing.F) {
	for _, s := range seedConfigs {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("/etc/linkctl/fuzz.yaml", data)
		if err != nil {
			return
		}
		checkAssembles(t, cfg)
	})
}
