package config

import (
	"strings"
	"testing"
)

// acct is a valid POP3 account line for building test configs.
const acct = "    - {server: pop.example.net, proto: pop3, user: u, password_file: /p, to: me}\n"

// TestValidationMessages checks every validation message: each input must
// produce exactly the listed problems, in order, with their lines.
func TestValidationMessages(t *testing.T) {
	testEnv(t, 1000, nil)
	cases := []struct {
		name string
		in   string
		want []string
	}{
		{"syntax", "fetch:\n  accounts: [\n", []string{`t.yaml:2: YAML syntax error: did not find expected node content (expected key: value lines, lists as - items or [a, b])`}},
		{"not a mapping", "- a\n- b\n", []string{`t.yaml:1: is a list, not a mapping (expected key: value lines below it)`}},
		{"empty file", "", []string{`t.yaml:1: pipeline: nothing to do (expected a flush, etrn, fetch or drop section, or a pipeline with exec steps)`}},
		{"two documents", "flush:\n---\nflush:\n", []string{`t.yaml:2: a second YAML document (after ---) (expected one document per config file)`}},
		{"unknown top", "flsuh: {}\n", []string{
			`t.yaml:1: flsuh: unknown key (expected one of: link, state_dir, control_socket, metrics_file, log, pipeline, flush, etrn, fetch, drop, dial; did you mean flush?)`,
			`t.yaml:1: pipeline: nothing to do (expected a flush, etrn, fetch or drop section, or a pipeline with exec steps)`}},
		{"duplicate key", "flush:\n  mta: auto\n  mta: exim\n", []string{`t.yaml:3: flush.mta: duplicate key (first written at line 2; write it once)`}},
		{"section not mapping", "flush: [a]\n", []string{`t.yaml:1: flush: is a list, not a mapping (expected key: value lines below it)`}},
		{"bad duration", "flush:\n  timeout: 5\n", []string{`t.yaml:2: flush.timeout: invalid duration "5" (expected e.g. 2s, 500ms)`}},
		{"negative duration", "link: {settle: -2s}\nflush:\n", []string{`t.yaml:1: link.settle: negative duration "-2s" (expected e.g. 2s, 500ms)`}},
		{"bad enum", "flush: {mta: qmail}\n", []string{`t.yaml:1: flush.mta: invalid value "qmail" (expected one of: auto, postfix, sendmail, exim, opensmtpd, command)`}},
		{"bad bool", "flush:\nlog: {syslog: maybe}\n", []string{`t.yaml:2: log.syslog: invalid value "maybe" (expected true or false)`}},
		{"bad level", "flush:\nlog: {level: loud}\n", []string{`t.yaml:2: log.level: invalid value "loud" (expected one of: info, debug, trace)`}},
		{"bad watch", "flush:\nlink: {watch: [\"ppp[\"]}\n", []string{`t.yaml:2: link.watch[0]: invalid interface name or glob "ppp[" (expected e.g. ppp0, wwan*, or default-route)`}},
		{"mta command without commands", "flush: {mta: command}\n", []string{
			`t.yaml:1: flush.flush_command: missing with mta: command (expected e.g. [/usr/sbin/sendmail, -q])`,
			`t.yaml:1: flush.list_command: missing with mta: command and wait: drained (expected e.g. [/usr/bin/mailq], or wait: none)`}},
		{"flush_command without mta command", "flush: {flush_command: [x]}\n", []string{`t.yaml:1: flush.flush_command: only used with mta: command (expected mta: command, or remove it)`}},
		{"argv as string", "drop: {command: poff provider}\n", []string{`t.yaml:1: drop.command: command "poff provider" is one string (expected a list such as [poff, provider]; linkctl runs no shell)`}},
		{"drop neither", "drop: {idle: 5s}\n", []string{`t.yaml:1: drop: says neither how to hang up (expected command: [poff, provider] or interface: ppp0)`}},
		{"drop both", "drop: {command: [poff], interface: ppp0}\n", []string{`t.yaml:1: drop: has both command and interface (expected exactly one of them)`}},
		{"etrn no servers", "etrn: {quiet: 5s}\n", []string{`t.yaml:1: etrn.servers: no server (expected a list of relays, e.g. - {server: mail.example.net, domains: [example.org]})`}},
		{"etrn server missing", "etrn:\n  servers:\n    - {tls: none}\n", []string{
			`t.yaml:3: etrn.servers[0].server: missing (expected the relay's host[:port])`,
			`t.yaml:3: etrn.servers[0].domains: missing (expected the domains the relay holds mail for, e.g. [example.org])`}},
		{"etrn bad port", "etrn:\n  servers:\n    - {server: \"mx:99999\", domains: [a]}\n", []string{
			`t.yaml:3: etrn.servers[0].server: invalid server "mx:99999": port "99999" is not a number from 1 to 65535 (expected host or host:port, e.g. mail.example.net:25)`}},
		{"etrn bad tls", "etrn:\n  servers:\n    - {server: mx, domains: [a], tls: ssl}\n", []string{`t.yaml:3: etrn.servers[0].tls: invalid value "ssl" (expected one of: starttls, implicit, none)`}},
		{"etrn user without password", "etrn:\n  servers:\n    - {server: mx, domains: [a], user: u}\n", []string{`t.yaml:3: etrn.servers[0].user: set without a password (expected password_file, password_command or password too)`}},
		{"etrn quiet_max", "etrn:\n  quiet: 1m\n  quiet_max: 10s\n  servers: [{server: mx, domains: [a]}]\n", []string{`t.yaml:3: etrn.quiet_max: 10s is shorter than quiet (1m0s) (expected quiet_max >= quiet)`}},
		{"etrn bad ports", "etrn:\n  ports: [25, 0]\n  servers: [{server: mx, domains: [a]}]\n", []string{`t.yaml:2: etrn.ports[1]: invalid number "0" (expected a whole number from 1 to 65535)`}},
		{"accounts not a list", "fetch:\n  accounts: {server: s}\n", []string{`t.yaml:2: fetch.accounts: is a mapping, not a list (expected a list of entries, each starting with -)`}},
		{"fetch no accounts", "fetch: {parallel: 2}\n", []string{`t.yaml:1: fetch.accounts: no account (expected a list of mailboxes, e.g. - {proto: pop3, server: pop.example.net, user: me, password_file: /etc/linkctl/isp.pass, to: me})`}},
		{"account empty", "fetch:\n  accounts:\n    - {keep: true}\n", []string{
			`t.yaml:3: fetch.accounts[0].proto: missing (expected pop3, imap or odmr)`,
			`t.yaml:3: fetch.accounts[0].server: missing (expected the mail server's host[:port])`,
			`t.yaml:3: fetch.accounts[0].user: missing (expected the login name on the server)`,
			`t.yaml:3: fetch.accounts[0].password_file: no password given (expected one of password_file, password_command, password)`,
			`t.yaml:3: fetch.accounts[0].to: missing: SMTP/LMTP delivery needs a recipient (expected the local user, e.g. to: chavez)`}},
		{"account bad proto", "fetch:\n  accounts:\n    - {server: s, proto: pop2, user: u, password: p, to: me}\n", []string{`t.yaml:3: fetch.accounts[0].proto: invalid value "pop2" (expected one of: pop3, imap, odmr)`}},
		{"two secrets", "fetch:\n  accounts:\n    - {server: s, proto: pop3, user: u, password: p, password_file: /f, to: me}\n", []string{`t.yaml:3: fetch.accounts[0]: more than one of password, password_file, password_command (expected exactly one)`}},
		{"duplicate names", "fetch:\n  accounts:\n" + acct + acct + acct, []string{`t.yaml:5: fetch.accounts[2].name: duplicate account name "u@pop.example.net" (first at line 4) (expected a unique name per account)`}},
		{"duplicate explicit names", "fetch:\n  accounts:\n    - {name: a, server: s, proto: pop3, user: u, password_file: /p, to: me}\n    - {name: a, server: t, proto: pop3, user: u, password_file: /p, to: me}\n", []string{`t.yaml:4: fetch.accounts[1].name: duplicate account name "a" (first at line 3) (expected a unique name per account)`}},
		{"bad limit", "fetch:\n  accounts:\n    - {server: s, proto: pop3, user: u, password_file: /p, to: me, limit: 10 megs}\n", []string{`t.yaml:3: fetch.accounts[0].limit: invalid size "10 megs" (expected bytes, e.g. 500000, 500k, 10M)`}},
		{"bad int", "fetch:\n  parallel: two\n  accounts:\n" + acct, []string{`t.yaml:2: fetch.parallel: invalid number "two" (expected a whole number from 1 to 64)`}},
		{"imap only key", "fetch:\n  accounts:\n    - {server: s, proto: pop3, user: u, password_file: /p, to: me, folders: [INBOX]}\n", []string{`t.yaml:3: fetch.accounts[0].folders: only for proto imap (expected proto: imap, or remove it)`}},
		{"folder and folders", "fetch:\n  accounts:\n    - {server: s, proto: imap, user: u, password_file: /p, to: me, folders: [a], folder: b}\n", []string{`t.yaml:3: fetch.accounts[0].folder: given together with folders (expected one of folder, folders)`}},
		{"keep_days without keep", "fetch:\n  accounts:\n    - {server: s, proto: pop3, user: u, password_file: /p, to: me, keep_days: 3}\n", []string{`t.yaml:3: fetch.accounts[0].keep_days: set without keep: true (expected keep: true; without keep mail is deleted at once)`}},
		{"mark_seen without keep", "fetch:\n  accounts:\n    - {server: s, proto: imap, user: u, password_file: /p, to: me, mark_seen: true}\n", []string{`t.yaml:3: fetch.accounts[0].mark_seen: set without keep: true (expected keep: true; fetched mail is deleted otherwise)`}},
		{"move_to with keep", "fetch:\n  accounts:\n    - {server: s, proto: imap, user: u, password_file: /p, to: me, keep: true, move_to: Archive}\n", []string{`t.yaml:3: fetch.accounts[0].move_to: conflicts with keep: true (expected either keep (leave mail) or move_to (move it))`}},
		{"apop on imap", "fetch:\n  accounts:\n    - {server: s, proto: imap, user: u, password_file: /p, to: me, auth: apop}\n", []string{`t.yaml:3: fetch.accounts[0].auth: apop is for pop3 only (expected one of: auto, password, apop, plain, login, xoauth2, oauthbearer, external)`}},
		{"tls with plugin", "fetch:\n  accounts:\n    - {server: s, proto: imap, to: me, plugin: [ssh, \"%h\", imapd], tls: implicit}\n", []string{`t.yaml:3: fetch.accounts[0].tls: does not apply over a plugin (expected no tls key; the plugin secures the stream)`}},
		{"odmr over a plugin still authenticates", "fetch:\n  accounts:\n    - {server: s, proto: odmr, plugin: [ssh, \"%h\", nc, localhost, \"366\"], domains: [example.org]}\n", []string{
			`t.yaml:3: fetch.accounts[0].user: missing (expected the login name on the server)`,
			`t.yaml:3: fetch.accounts[0].password_file: no password given (expected one of password_file, password_command, password)`}},
		{"domains on pop3", "fetch:\n  accounts:\n    - {server: s, proto: pop3, user: u, password_file: /p, to: me, domains: [a]}\n", []string{`t.yaml:3: fetch.accounts[0].domains: only for proto odmr (expected proto: odmr; for multidrop use localdomains)`}},
		{"localdomains without envelope", "fetch:\n  accounts:\n    - {server: s, proto: pop3, user: u, password_file: /p, to: me, localdomains: [example.org]}\n", []string{`t.yaml:3: fetch.accounts[0].localdomains: multidrop needs an envelope header (expected envelope: Delivered-To (or the header your ISP sets); linkctl does not guess recipients from To/Cc)`}},
		{"star without multidrop", "fetch:\n  accounts:\n    - {server: s, proto: pop3, user: u, password_file: /p, to: \"*\"}\n", []string{`t.yaml:3: fetch.accounts[0].to: "*" (every local recipient) needs multidrop (expected envelope: HEADER and localdomains: [...] too)`}},
		{"envelope without localdomains", "fetch:\n  accounts:\n    - {server: s, proto: pop3, user: u, password_file: /p, to: me, envelope: Delivered-To}\n", []string{`t.yaml:3: fetch.accounts[0].localdomains: missing with an envelope header (expected the domains whose recipients are local)`}},
		{"bad envelope", "fetch:\n  accounts:\n    - {server: s, proto: pop3, user: u, password_file: /p, to: me, envelope: \"X:Y\", localdomains: [a]}\n", []string{`t.yaml:3: fetch.accounts[0].envelope: invalid header name "X:Y" (expected e.g. Delivered-To, X-Original-To, Envelope-To, or none)`}},
		{"qvirtual without envelope", "fetch:\n  accounts:\n    - {server: s, proto: pop3, user: u, password_file: /p, to: me, qvirtual: x-}\n", []string{`t.yaml:3: fetch.accounts[0].qvirtual: set without an envelope header (expected envelope: HEADER too)`}},
		{"deliver none", "fetch:\n  deliver: {sessions: 2}\n  accounts:\n" + acct, []string{`t.yaml:2: fetch.deliver: names no target (expected exactly one of smtp, lmtp, mda, maildir)`}},
		{"deliver tls unknown", "fetch:\n  deliver: {smtp: mx.example.net, tls: yes-please}\n  accounts:\n" + acct, []string{`t.yaml:2: fetch.deliver.tls: unknown mode "yes-please" (expected starttls or none)`}},
		{"deliver tls on maildir", "fetch:\n  deliver: {maildir: /m, tls: none}\n  accounts:\n" + acct, []string{`t.yaml:2: fetch.deliver.tls: applies only to smtp delivery (expected no tls key for lmtp, mda or maildir)`}},
		{"deliver domain on lmtp", "fetch:\n  deliver: {lmtp: /run/dovecot/lmtp, domain: example.org}\n  accounts:\n" + acct, []string{`t.yaml:2: fetch.deliver.domain: applies only to smtp delivery (expected no domain key for lmtp, mda or maildir (they get bare user names))`}},
		{"deliver domain bad", "fetch:\n  deliver: {smtp: localhost, domain: \"@example.org\"}\n  accounts:\n" + acct, []string{`t.yaml:2: fetch.deliver.domain: invalid domain "@example.org" (expected a domain name such as example.org or localhost)`}},
		{"deliver two", "fetch:\n  deliver: {smtp: localhost, maildir: /m}\n  accounts:\n" + acct, []string{`t.yaml:2: fetch.deliver: names more than one target (expected exactly one of smtp, lmtp, mda, maildir)`}},
		{"mda embedded %T", "fetch:\n  deliver: {mda: [procmail, \"-d%T\"]}\n  accounts:\n" + acct, []string{`t.yaml:2: fetch.deliver.mda[1]: "-d%T" embeds %F or %T (expected %F and %T as arguments of their own, e.g. [procmail, -f, %F])`}},
		{"mda %T without to", "fetch:\n  deliver: {mda: [procmail, -d, \"%T\"]}\n  accounts:\n    - {server: s, proto: pop3, user: u, password_file: /p}\n", []string{`t.yaml:4: fetch.accounts[0].to: missing: the mda command uses %T (expected the local user, e.g. to: chavez)`}},
		{"pipeline unknown stage", "flush:\npipeline: [flush, fecth]\n", []string{`t.yaml:2: pipeline[1]: unknown stage "fecth" (expected flush, etrn, fetch, drop, or {exec: [argv...]})`}},
		{"pipeline stage without section", "pipeline: [fetch]\n", []string{`t.yaml:1: pipeline[0]: stage "fetch" has no fetch section (expected a top-level fetch: section configuring it)`}},
		{"pipeline bare exec", "pipeline: [exec]\n", []string{`t.yaml:1: pipeline[0]: exec needs a command (expected {exec: [program, args...]})`}},
		{"pipeline drop not last", "drop: {command: [poff]}\npipeline:\n  - drop\n  - {exec: [\"true\"]}\n", []string{`t.yaml:3: pipeline[0]: drop must be the last step (expected drop at the end: the link goes after everything else is done)`}},
		{"pipeline drop in group", "drop: {command: [poff]}\nflush:\npipeline:\n  - [flush, drop]\n", []string{`t.yaml:4: pipeline[0][1]: drop cannot run at the same time as other stages (expected drop as the last step of its own)`}},
		{"pipeline nested group", "flush:\npipeline:\n  - [flush, [flush]]\n", []string{`t.yaml:3: pipeline[0][1]: groups cannot nest (expected a stage name or {stage: ...} / {exec: [...]})`}},
		{"pipeline both", "flush:\npipeline:\n  - {stage: flush, exec: [x]}\n", []string{`t.yaml:3: pipeline[0]: has both stage and exec (expected one of them)`}},
		{"pipeline neither", "flush:\npipeline:\n  - {name: x}\n", []string{`t.yaml:3: pipeline[0]: names no stage (expected {stage: fetch, ...} or {exec: [argv...], ...})`}},
		{"pipeline unknown key", "flush:\npipeline:\n  - {exec: [x], onerror: stop}\n", []string{`t.yaml:3: pipeline[0].onerror: unknown key (expected one of: stage, exec, name, timeout, on_error; did you mean on_error?)`}},
		{"pipeline bad on_error", "pipeline:\n  - {exec: [x], on_error: ignore}\n", []string{`t.yaml:2: pipeline[0].on_error: invalid value "ignore" (expected one of: stop, continue)`}},
		{"pipeline duplicate names", "pipeline:\n  - {exec: [x], name: a}\n  - {exec: [y], name: a}\n", []string{`t.yaml:3: pipeline[1].name: duplicate step name "a" (first at line 2) (expected a unique name per step)`}},
		{"pipeline empty", "flush:\npipeline: []\n", []string{`t.yaml:2: pipeline: is empty (expected a list of stages, e.g. [flush, etrn, fetch])`}},
		{"pipeline empty group", "flush:\npipeline: [[]]\n", []string{`t.yaml:2: pipeline[0]: is an empty group (expected stages to run at the same time, e.g. [flush, etrn])`}},
		{"merge of scalar", "flush:\n  <<: 3\n", []string{`t.yaml:2: flush<<: merge of something that is not a mapping (expected <<: *anchor of a mapping)`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.in))
			got := problems(t, err)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("input:\n%s\ngot:\n%s\nwant:\n%s", tc.in, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// The defaults of a delivery target: STARTTLS required off loopback, and
// deliver.domain qualifying bare names for SMTP only (localhost unless
// set; nothing for the targets that take user names).
func TestDeliverDefaults(t *testing.T) {
	for body, want := range map[string]struct {
		tls    TLSMode
		domain string
	}{
		"{smtp: 127.0.0.1:25}":                       {"none", "localhost"},
		"{smtp: mx.example.net}":                     {"starttls", "localhost"},
		"{smtp: mx.example.net, tls: none}":          {"none", "localhost"},
		"{smtp: 127.0.0.1:25, domain: mail.example}": {"none", "mail.example"},
		"{lmtp: /run/dovecot/lmtp}":                  {"none", ""},
		"{maildir: /m}":                              {"none", ""},
	} {
		cfg, err := Parse("t.yaml", []byte("fetch:\n  deliver: "+body+"\n  accounts:\n    - {server: 127.0.0.1, proto: pop3, user: u, password_file: /p, to: me}\n"))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if d := cfg.Fetch.Deliver; d.TLS != want.tls || d.Domain != want.domain {
			t.Errorf("deliver %s: tls %q, domain %q; want %q, %q", body, d.TLS, d.Domain, want.tls, want.domain)
		}
	}
}
