package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
)

const inlinePW = `fetch:
  accounts:
    - {server: pop.example.net, proto: pop3, user: u, password: "hunter2", to: me}
`

const filePW = `fetch:
  accounts:
    - {server: pop.example.net, proto: pop3, user: u, password_file: pop.pass, to: me}
`

func TestPermissions(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	writeFile(t, dir, "linkctl.yaml", inlinePW, 0o644)
	_, err := Load("linkctl.yaml")
	if errkind.KindOf(err) != errkind.Permission || errkind.ExitCode(err) != 6 {
		t.Fatalf("0644 with password: got %v (kind %v), want a permission error", err, errkind.KindOf(err))
	}
	want := "linkctl.yaml: contains a password but is readable by group/others (mode 0644); run: chmod 600 linkctl.yaml"
	if err.Error() != want {
		t.Errorf("message:\n got %s\nwant %s", err, want)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Error("the password leaked into the error")
	}

	os.Chmod("linkctl.yaml", 0o640)
	if _, err := Load("linkctl.yaml"); errkind.KindOf(err) != errkind.Permission {
		t.Errorf("0640 with password: %v, want permission error", err)
	}
	os.Chmod("linkctl.yaml", 0o600)
	if _, err := Load("linkctl.yaml"); err != nil {
		t.Errorf("0600 with password: %v", err)
	}

	writeFile(t, dir, "pf.yaml", filePW, 0o644)
	c, err := Load("pf.yaml")
	if err != nil {
		t.Fatalf("0644 with password_file: %v", err)
	}
	if got := c.Fetch.Accounts[0].Password.File; got != filepath.Join(dir, "pop.pass") {
		t.Errorf("relative password_file resolved to %q, want it next to the config", got)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if errkind.KindOf(err) != errkind.Usage || !strings.Contains(err.Error(), "no such config file") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v (%v)", err, errkind.KindOf(err))
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	p := writeFile(t, dir, "pw", "s3cret\r\nsecond line\n", 0o600)
	got, err := Secret{File: p}.Get(ctx)
	if err != nil || got != "s3cret" {
		t.Fatalf("Get = %q, %v; want first line without CR/LF", got, err)
	}
	os.Chmod(p, 0o644)
	_, err = Secret{File: p}.Get(ctx)
	if errkind.KindOf(err) != errkind.Permission || !strings.Contains(err.Error(), "run: chmod 600 "+p) {
		t.Errorf("0644 password file: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "s3cret") {
		t.Error("secret in error")
	}
	_, err = Secret{File: filepath.Join(dir, "missing")}.Get(ctx)
	if errkind.KindOf(err) != errkind.Usage {
		t.Errorf("missing file: %v", err)
	}
	empty := writeFile(t, dir, "empty", "\nx\n", 0o600)
	if _, err := (Secret{File: empty}).Get(ctx); err == nil {
		t.Error("empty first line accepted")
	}
}

func TestSecretCommand(t *testing.T) {
	ctx := context.Background()
	got, err := Secret{Command: []string{"printf", "tok en\nrest\n"}}.Get(ctx)
	if err != nil || got != "tok en" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	// No shell: metacharacters are plain arguments.
	got, err = Secret{Command: []string{"echo", "$HOME;", "|x"}}.Get(ctx)
	if err != nil || got != "$HOME; |x" {
		t.Fatalf("Get = %q, %v (a shell ran?)", got, err)
	}
	// A failing command that printed the secret on stdout and on stderr:
	// its stderr is quoted, the secret never.
	_, err = Secret{Command: []string{"sh", "-c", "echo topsecret; echo 'vault locked: topsecret' >&2; exit 3"}}.Get(ctx)
	if err == nil {
		t.Fatal("failing command accepted")
	}
	if strings.Contains(err.Error(), "topsecret") {
		t.Errorf("secret in error: %v", err)
	}
	if !strings.Contains(err.Error(), "vault locked: ***") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("stderr or status missing: %v", err)
	}
	if errkind.KindOf(err) != errkind.Auth || errkind.IsTemporary(err) {
		t.Errorf("kind %v temp %v", errkind.KindOf(err), errkind.IsTemporary(err))
	}
	_, err = Secret{Command: []string{"sh", "-c", "exit 75"}}.Get(ctx)
	if !errkind.IsTemporary(err) {
		t.Errorf("exit 75 not temporary: %v", err)
	}
	_, err = Secret{Command: []string{"/nonexistent/helper"}}.Get(ctx)
	if errkind.KindOf(err) != errkind.Usage || !strings.Contains(err.Error(), "program not found") {
		t.Errorf("missing program: %v", err)
	}
	_, err = Secret{Command: []string{"true"}}.Get(ctx)
	if err == nil || !strings.Contains(err.Error(), "printed nothing") {
		t.Errorf("empty output: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := (Secret{Command: []string{"sleep", "10"}}).Get(cctx); err == nil {
		t.Error("cancelled context: no error")
	}
	if s := (Secret{Inline: "x"}).String(); s != "***" {
		t.Errorf("String = %q", s)
	}
}

func TestDefaults(t *testing.T) {
	in := []byte("fetch:\n  accounts:\n    - {server: mail.example.net, proto: imap, user: u, password_file: /p, to: me}\n    - {server: 127.0.0.1, proto: pop3, user: u, password_file: /p, to: me}\n    - {server: \"pop.example.net:110\", proto: pop3, user: u, password_file: /p, to: me}\n    - {server: odmr.example.net, proto: odmr, user: u, password_file: /p}\netrn:\n  servers:\n    - {server: mx.example.net, domains: example.org}\n    - {server: \"mx2.example.net:465\", domains: [a]}\n    - {server: \"[::1]\", domains: [a]}\n    - {server: mx3.example.net, domains: [a], tls: none}\n    - {server: mx4.example.net, domains: [a], tls: implicit}\ndrop: {interface: ppp0}\nflush:\n")

	testEnv(t, 1000, map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000"})
	c, err := Parse("t.yaml", in)
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != "/home/u/.local/state/linkctl" || c.ControlSocket != "/run/user/1000/linkctl.sock" {
		t.Errorf("user paths: %q %q", c.StateDir, c.ControlSocket)
	}
	if !reflect.DeepEqual(c.Link.Watch, []string{"default-route"}) || c.Link.Settle != 2*time.Second || c.Link.Interval != 0 {
		t.Errorf("link: %+v", c.Link)
	}
	if c.Log != (Log{Level: "info", Format: "text"}) {
		t.Errorf("log: %+v", c.Log)
	}
	if f := c.Flush; f.MTA != "auto" || f.Wait != "drained" || f.Timeout != 5*time.Minute || f.OnError != Continue {
		t.Errorf("flush: %+v", f)
	}
	e := c.ETRN
	if e.Quiet != 10*time.Second || e.QuietMax != 5*time.Minute || !reflect.DeepEqual(e.Ports, []int{25}) || e.Parallel != 4 {
		t.Errorf("etrn: %+v", e)
	}
	wantETRN := []struct {
		server string
		tls    TLSMode
	}{
		{"mx.example.net:25", "starttls"}, {"mx2.example.net:465", "implicit"}, {"[::1]:25", "none"},
		{"mx3.example.net:25", "none"}, {"mx4.example.net:465", "implicit"},
	}
	for i, w := range wantETRN {
		if s := e.Servers[i]; s.Server != w.server || s.TLS != w.tls {
			t.Errorf("etrn server %d: %s %s, want %s %s", i, s.Server, s.TLS, w.server, w.tls)
		}
	}
	if !reflect.DeepEqual(e.Servers[0].Domains, []string{"example.org"}) {
		t.Errorf("domains as a single value: %v", e.Servers[0].Domains)
	}
	f := c.Fetch
	if f.Parallel != 2 || !f.Received || !reflect.DeepEqual(f.Deliver, Deliver{SMTP: "127.0.0.1:25", Sessions: 4, TLS: "none", Domain: "localhost"}) {
		t.Errorf("fetch: %+v", f)
	}
	wantAcc := []struct {
		server string
		tls    TLSMode
	}{
		{"mail.example.net:993", "implicit"}, {"127.0.0.1:110", "none"}, {"pop.example.net:110", "starttls"},
		{"odmr.example.net:366", "starttls"},
	}
	for i, w := range wantAcc {
		if a := f.Accounts[i]; a.Server != w.server || a.TLS != w.tls || a.Auth != "auto" || a.Deliver.SMTP != DefaultSMTP {
			t.Errorf("account %d: %+v, want %s %s", i, a, w.server, w.tls)
		}
	}
	if a := f.Accounts[0]; !reflect.DeepEqual(a.Folders, []string{"INBOX"}) || a.Expunge != "auto" || a.Compress != "auto" {
		t.Errorf("imap defaults: %+v", a)
	}
	if c.Drop.Idle != time.Second {
		t.Errorf("drop: %+v", c.Drop)
	}
	// The default pipeline is [[flush, etrn, fetch], drop]: the stages
	// that share no direction of the link run side by side.
	var got []string
	for _, s := range c.Pipeline {
		if len(s.Group) > 0 {
			var g []string
			for _, m := range s.Group {
				g = append(g, m.Stage+"/"+string(m.OnError))
			}
			got = append(got, "["+strings.Join(g, " ")+"] "+s.Name+"/"+string(s.OnError))
			continue
		}
		got = append(got, s.Stage+"/"+string(s.OnError))
	}
	if want := []string{"[flush/continue etrn/continue fetch/continue] flush+etrn+fetch/continue", "drop/continue"}; !reflect.DeepEqual(got, want) {
		t.Errorf("default pipeline %v, want %v", got, want)
	}
	if h := Hosts(c); !reflect.DeepEqual(h, []string{"mx.example.net", "mx2.example.net", "::1", "mx3.example.net", "mx4.example.net", "mail.example.net", "127.0.0.1", "pop.example.net", "odmr.example.net"}) {
		t.Errorf("Hosts = %v", h)
	}

	testEnv(t, 1000, map[string]string{"XDG_STATE_HOME": "/xdg/state"})
	c, _ = Parse("t.yaml", in)
	if c.StateDir != "/xdg/state/linkctl" || c.ControlSocket != "/xdg/state/linkctl/control.sock" {
		t.Errorf("no runtime dir: %q %q", c.StateDir, c.ControlSocket)
	}
	testEnv(t, 0, map[string]string{"XDG_RUNTIME_DIR": "/run/user/0"})
	c, _ = Parse("t.yaml", in)
	if c.StateDir != "/var/lib/linkctl" || c.ControlSocket != "/run/linkctl/control.sock" {
		t.Errorf("root paths: %q %q", c.StateDir, c.ControlSocket)
	}
	if DefaultPath() != "/etc/linkctl/linkctl.yaml" {
		t.Errorf("root DefaultPath = %s", DefaultPath())
	}
	testEnv(t, 1000, nil)
	if DefaultPath() != "/home/u/.config/linkctl/linkctl.yaml" {
		t.Errorf("user DefaultPath = %s", DefaultPath())
	}
}

func TestPipelineForms(t *testing.T) {
	testEnv(t, 1000, nil)
	in := `flush: {timeout: 2m, on_error: stop}
etrn:
  servers: [{server: mx, domains: [a]}]
fetch:
  timeout: 20m
  accounts: [{server: s, proto: pop3, user: u, password_file: /p, to: me}]
drop: {command: [poff]}
pipeline:
  - [flush, etrn]
  - {stage: fetch, timeout: 10m, on_error: stop}
  - {exec: [/usr/local/bin/after-mail, --quiet]}
  - {exec: [/usr/local/bin/after-mail], name: again, timeout: 1m, on_error: continue}
  - {exec: [/bin/echo, a]}
  - {exec: [/bin/echo, b]}
  - drop
`
	c, err := Parse("t.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Pipeline
	if len(p) != 7 {
		t.Fatalf("%d steps: %+v", len(p), p)
	}
	g := p[0]
	if g.Stage != "" || len(g.Group) != 2 || g.Name != "flush+etrn" || g.OnError != Stop || g.Line != 9 {
		t.Errorf("group: %+v", g)
	}
	if f := g.Group[0]; f.Stage != StageFlush || f.Timeout != 2*time.Minute || f.OnError != Stop {
		t.Errorf("flush in group takes its section's timeout and on_error: %+v", f)
	}
	if e := g.Group[1]; e.Stage != StageETRN || e.OnError != Continue {
		t.Errorf("etrn: %+v", e)
	}
	if f := p[1]; f.Stage != StageFetch || f.Timeout != 10*time.Minute || f.OnError != Stop {
		t.Errorf("fetch map form overrides the section: %+v", f)
	}
	if x := p[2]; x.Stage != StageExec || x.Name != "after-mail" || x.OnError != Stop || x.Timeout != 0 ||
		!reflect.DeepEqual(x.Argv, []string{"/usr/local/bin/after-mail", "--quiet"}) {
		t.Errorf("exec default: %+v", x)
	}
	if x := p[3]; x.Name != "again" || x.Timeout != time.Minute || x.OnError != Continue {
		t.Errorf("exec with options: %+v", x)
	}
	if p[4].Name != "echo" || p[5].Name != "echo-2" {
		t.Errorf("defaulted names not made unique: %q %q", p[4].Name, p[5].Name)
	}
	if p[6].Stage != StageDrop || p[6].Line != 15 {
		t.Errorf("drop: %+v", p[6])
	}
}

// Redacted prints every default, hides inline passwords, and parses back
// into the same Config.
func TestRedactedRoundTrip(t *testing.T) {
	testEnv(t, 1000, nil)
	for _, src := range []struct {
		name string
		data []byte
	}{{"reference.yaml", Reference}, {"minimal.yaml", Minimal}, {"inline.yaml", []byte(inlinePW)}} {
		c, err := Parse(src.name, src.data)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Redacted()
		if err != nil {
			t.Fatal(err)
		}
		if src.name == "minimal.yaml" {
			for _, want := range []string{"\n  interval: 0\n", "\n  timeout: 5m\n", "\n      password_file: /etc/linkctl/pop.pass\n"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("Redacted lacks %q:\n%s", want, out)
				}
			}
		}
		if strings.Contains(string(out), "hunter2") {
			t.Fatalf("%s: password in Redacted:\n%s", src.name, out)
		}
		c2, err := Parse(src.name, out)
		if err != nil {
			t.Fatalf("%s: Redacted does not parse: %v\n%s", src.name, err, out)
		}
		for i := range c.Fetch.Accounts {
			if c.Fetch.Accounts[i].Password.Inline != "" {
				if c2.Fetch.Accounts[i].Password.Inline != "***" {
					t.Errorf("inline password shown as %q", c2.Fetch.Accounts[i].Password.Inline)
				}
				c2.Fetch.Accounts[i].Password.Inline = c.Fetch.Accounts[i].Password.Inline
			}
		}
		clearLines(c)
		clearLines(c2)
		if !reflect.DeepEqual(c, c2) {
			t.Errorf("%s: round trip differs:\n%+v\n%+v\n%s", src.name, c, c2, out)
		}
	}
}

func clearLines(c *Config) {
	var clr func([]Step)
	clr = func(s []Step) {
		for i := range s {
			s[i].Line = 0
			clr(s[i].Group)
		}
	}
	clr(c.Pipeline)
	for i := range c.ETRN.Servers {
		c.ETRN.Servers[i].Line = 0
	}
	for i := range c.Fetch.Accounts {
		c.Fetch.Accounts[i].Line = 0
	}
}

// reference.yaml must mention every key the loader knows, so that it stays
// the complete reference.
func TestReferenceShowsEveryKey(t *testing.T) {
	testEnv(t, 1000, nil)
	if _, err := Parse("reference.yaml", Reference); err != nil {
		t.Fatal(err)
	}
	ref := string(Reference)
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(tp reflect.Type) {
		if seen[tp] {
			return
		}
		seen[tp] = true
		for i := 0; i < tp.NumField(); i++ {
			f := tp.Field(i)
			tag := f.Tag.Get("yaml")
			if strings.HasPrefix(tag, "-") {
				continue
			}
			if !strings.Contains(ref, tag+":") {
				t.Errorf("reference.yaml does not show %s.%s", tp.Name(), tag)
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft.Name() != "Node" {
				walk(ft)
			}
		}
	}
	walk(reflect.TypeOf(rawConfig{}))
	walk(reflect.TypeOf(rawStep{}))
}

// Every example config shipped under scripts/examples must load.
func TestExamplesParse(t *testing.T) {
	files, _ := filepath.Glob("../scripts/examples/*.yaml")
	more, _ := filepath.Glob("../scripts/examples/*/*.yaml")
	files = append(files, more...)
	if len(files) == 0 {
		t.Skip("no scripts/examples/*.yaml yet")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(f, data); err != nil {
			t.Errorf("%v", err)
		}
	}
}

func TestErrorsAs(t *testing.T) {
	_, err := Parse("x.yaml", []byte("link: {settle: 1 s}\nflush:\n"))
	var p *Problem
	if !errors.As(err, &p) || p.Line != 1 || p.Path != "link.settle" {
		t.Errorf("errors.As *Problem: %+v %v", p, err)
	}
}

func TestAliasesAndMerge(t *testing.T) {
	testEnv(t, 1000, nil)
	in := `x-defaults: &d {proto: imap, user: u, password_file: /p, to: me, keep: true}
fetch:
  accounts:
    - {<<: *d, server: a.example.net}
    - {<<: *d, server: b.example.net, keep: false}
`
	c, err := Parse("t.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := c.Fetch.Accounts[0], c.Fetch.Accounts[1]; !a.Keep || b.Keep || b.Server != "b.example.net:993" || b.Proto != "imap" {
		t.Errorf("merge from an x- key: %+v / %+v", a, b)
	}
	// Anchors may sit anywhere a value is: put them on the first account.
	in = `fetch:
  accounts:
    - &first {proto: imap, user: u, password_file: /p, to: me, keep: true, server: a.example.net, name: a}
    - {<<: *first, name: b, keep: false}
`
	c, err = Parse("t.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := c.Fetch.Accounts[0], c.Fetch.Accounts[1]; !a.Keep || b.Keep || b.Server != "a.example.net:993" || b.Proto != "imap" {
		t.Errorf("merge: %+v / %+v", a, b)
	}
	// Only top-level x- keys are free; elsewhere they are unknown.
	_, err = Parse("t.yaml", []byte("flush: {x-a: 1}\n"))
	if lines := problems(t, err); len(lines) != 1 || !strings.HasPrefix(lines[0], "t.yaml:1: flush.x-a: unknown key") {
		t.Errorf("got %q", lines)
	}
}

// Two users on one server need no names: the second is told apart by user.
func TestSeveralUsersPerServer(t *testing.T) {
	in := "fetch:\n  accounts:\n    - {server: pop.example.net, proto: pop3, user: ann, password_file: /p, to: ann}\n    - {server: pop.example.net, proto: pop3, user: bob, password_file: /q, to: bob}\n"
	c, err := Parse("t.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := c.Fetch.Accounts[0].Name, c.Fetch.Accounts[1].Name; a != "pop.example.net" || b != "bob@pop.example.net" {
		t.Errorf("names %q %q", a, b)
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1000": 1000, "500k": 500 << 10, "10M": 10 << 20, "1G": 1 << 30, "2MB": 2 << 20, "3KiB": 3 << 10} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "k", "1T", "99999999999G", "1.5M"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

func TestCheckSecretFiles(t *testing.T) {
	dir := t.TempDir()
	ok := writeFile(t, dir, "ok.pass", "pw\n", 0o600)
	loose := writeFile(t, dir, "loose.pass", "pw\n", 0o644)
	c := &Config{Fetch: Fetch{Accounts: []Account{{Name: "a", Password: Secret{File: ok}}, {Name: "b", Password: Secret{Command: []string{"false"}}}}}}
	if err := c.CheckSecretFiles(); err != nil {
		t.Errorf("good files: %v", err)
	}
	c.Fetch.Accounts = append(c.Fetch.Accounts, Account{Name: "c", Password: Secret{File: loose}}, Account{Name: "d", Password: Secret{File: filepath.Join(dir, "none")}})
	err := c.CheckSecretFiles()
	if errkind.KindOf(err) != errkind.Permission || !strings.Contains(err.Error(), "account c: password_file") ||
		!strings.Contains(err.Error(), "account d: password_file") {
		t.Errorf("got %v (%v)", err, errkind.KindOf(err))
	}
	if _, found := c.Account("c"); !found {
		t.Error("Account(c) not found")
	}
}

func TestWarnings(t *testing.T) {
	in := `etrn:
  count_loopback: true
  servers: [{server: mx.example.net, domains: [a], tls: none, user: u, password_file: /p}]
fetch:
  accounts:
    - {server: pop.example.net, proto: pop3, tls: none, user: u, password_file: /p, to: me}
    - {server: localhost, proto: pop3, user: u, password_file: /p, to: me, keep: true}
    - {server: imap.example.net, proto: imap, user: u, password_file: /p, to: me}
`
	c, err := Parse("w.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"w.yaml:3: etrn.servers[0].tls: none: the password for mx.example.net:25 goes over the network in clear (use starttls or implicit)",
		"w.yaml:6: fetch.accounts[0].tls: none: the password for pop.example.net:110 goes over the network in clear (use implicit or starttls)",
		"w.yaml:7: fetch.accounts[1].keep: true without keep_days: mail stays on localhost:110 for good (set keep_days to have it deleted later)",
		"w.yaml: etrn.count_loopback: true counts local SMTP sessions as inbound mail (meant for tests): the quiet wait may never end on a busy host",
	}
	if got := c.Warnings(); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	c, _ = Parse("m.yaml", Minimal)
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("minimal.yaml warns: %q", w)
	}
}

// The config block of DESIGN.md is the contract scripts rely on: it must
// load as written (testdata/design.yaml is a copy of it).
func TestDesignExample(t *testing.T) {
	testEnv(t, 0, nil)
	c, err := Load("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range c.Pipeline {
		names = append(names, s.Name)
	}
	if want := []string{"flush+etrn", "fetch", "after-mail", "drop"}; !reflect.DeepEqual(names, want) {
		t.Errorf("pipeline %v, want %v", names, want)
	}
	if c.Link.Interval != 15*time.Minute || c.ETRN.Servers[0].TLS != "starttls" || c.Fetch.Accounts[1].Name != "work" ||
		!reflect.DeepEqual(c.Fetch.Accounts[1].Password.Command, []string{"pass", "show", "work"}) || c.Drop.Idle != 30*time.Second {
		t.Errorf("unexpected values: %+v", c)
	}
}
