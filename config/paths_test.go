package config

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// tildeConfig has a "~" in every kind of path a config holds.
const tildeConfig = `state_dir: ~/state
control_socket: ~/ctl.sock
metrics_file: ~/metrics.prom
log: {file: ~/linkctl.log}
etrn:
  servers:
    - {server: "127.0.0.1:25", domains: [example.org], user: u, password_file: ~/relay.pass}
fetch:
  deliver: {lmtp: ~/lmtp.sock}
  accounts:
    - {proto: pop3, server: "127.0.0.1", user: u, password_file: ~/.config/linkctl/pop.pass, to: me}
    - {name: m, proto: pop3, server: "127.0.0.1", user: u, password_file: p.pass, to: me, deliver: {maildir: ~/Maildir}}
`

// In a root-owned config every "~" is refused with its line and a hint,
// whatever HOME says; in a user's config it is that user's home from the
// passwd database.
func TestTildeFollowsTheOwner(t *testing.T) {
	testEnv(t, 0, nil)
	_, probs := parse("/etc/linkctl/linkctl.yaml", []byte(tildeConfig), "/etc/linkctl", 0)
	got := probs.Error()
	for _, want := range []string{
		`linkctl.yaml:1: state_dir: "~/state": ~ is not expanded in a config owned by root (under systemd linkctl has no HOME, and ProtectHome=yes hides /root and /home) (expected an absolute path)`,
		`:2: control_socket: "~/ctl.sock": ~ is not expanded`,
		`:3: metrics_file: `,
		`:4: log.file: `,
		`:7: etrn.servers[0].password_file: "~/relay.pass": ~ is not expanded in a config owned by root (under systemd linkctl has no HOME, and ProtectHome=yes hides /root and /home) (expected an absolute path, e.g. /etc/linkctl/relay.pass)`,
		`:9: fetch.deliver.lmtp: `,
		`:11: fetch.accounts[0].password_file: "~/.config/linkctl/pop.pass": ~ is not expanded in a config owned by root (under systemd linkctl has no HOME, and ProtectHome=yes hides /root and /home) (expected an absolute path, e.g. /etc/linkctl/pop.pass)`,
		`:12: fetch.accounts[1].deliver.maildir: `,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	if len(probs) != 8 {
		t.Errorf("%d problems, want 8:\n%s", len(probs), got)
	}

	cfg, probs := parse("/home/u/.config/linkctl/linkctl.yaml", []byte(tildeConfig), "/home/u/.config/linkctl", 1000)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	a := cfg.Fetch.Accounts
	for got, want := range map[string]string{
		cfg.StateDir: "/home/u/state", cfg.ControlSocket: "/home/u/ctl.sock", cfg.MetricsFile: "/home/u/metrics.prom",
		cfg.Log.File: "/home/u/linkctl.log", cfg.ETRN.Servers[0].Password.File: "/home/u/relay.pass",
		a[0].Deliver.LMTP: "/home/u/lmtp.sock", a[0].Password.File: "/home/u/.config/linkctl/pop.pass",
		a[1].Password.File: "/home/u/.config/linkctl/p.pass", a[1].Deliver.Maildir: "/home/u/Maildir",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}

	_, probs = parse("t.yaml", []byte("state_dir: ~bob/state\nflush: {}\n"), "/", 1000)
	if len(probs) != 1 || !strings.Contains(probs.Error(), `t.yaml:1: state_dir: "~bob/state": ~bob is not expanded (expected an absolute path)`) {
		t.Errorf("~bob: %v", probs)
	}
}

// The real thing: the same file means the same paths whether `linkctl
// check` runs in a login shell or the daemon under systemd (HOME unset),
// because "~" follows the file's owner in the passwd database.
func TestTildeIgnoresHOME(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown the config")
	}
	nobody, err := user.LookupId("65534")
	if err != nil || !filepath.IsAbs(nobody.HomeDir) {
		t.Skipf("no uid 65534 with a home in the passwd database: %v", err)
	}
	dir := t.TempDir()
	p := writeFile(t, dir, "linkctl.yaml", "state_dir: ~/state\nfetch:\n  accounts:\n    - {proto: pop3, server: 127.0.0.1, user: u, password_file: ~/.config/linkctl/pop.pass, to: me}\n", 0o600)
	for _, home := range []string{"", "/", "/root", dir} {
		t.Setenv("HOME", home)
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(p)
		if err != nil {
			t.Fatalf("HOME=%q: %v", home, err)
		}
		if want := filepath.Join(nobody.HomeDir, ".config/linkctl/pop.pass"); cfg.Fetch.Accounts[0].Password.File != want || cfg.StateDir != filepath.Join(nobody.HomeDir, "state") {
			t.Errorf("HOME=%q: password_file %q, state_dir %q; want under %s", home, cfg.Fetch.Accounts[0].Password.File, cfg.StateDir, nobody.HomeDir)
		}

		if err := os.Chown(p, 0, 0); err != nil {
			t.Fatal(err)
		}
		_, err = Load(p)
		if err == nil || !strings.Contains(err.Error(), `password_file: "~/.config/linkctl/pop.pass": ~ is not expanded in a config owned by root`) {
			t.Errorf("HOME=%q, root-owned: %v", home, err)
		}
	}
}

// An absolute path under /root or /home in a system config checks fine in
// a root shell but is hidden from the daemon by the unit: check warns.
func TestHiddenHomePathWarns(t *testing.T) {
	testEnv(t, 0, nil)
	const body = "fetch:\n  accounts:\n    - {proto: pop3, server: 127.0.0.1, user: u, password_file: /root/.config/linkctl/pop.pass, to: me}\n"
	cfg, err := Parse("/etc/linkctl/linkctl.yaml", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(cfg.Warnings(), "\n")
	if !strings.Contains(w, "/etc/linkctl/linkctl.yaml:3: fetch.accounts[0].password_file: /root/.config/linkctl/pop.pass is under /root, which the linkctl systemd unit hides (ProtectHome=yes)") {
		t.Errorf("warnings: %q", w)
	}
	// A user's own config in their home may name files there.
	cfg, err = Parse("/home/u/.config/linkctl/linkctl.yaml", []byte(strings.ReplaceAll(body, "/root/", "/home/u/")))
	if err != nil {
		t.Fatal(err)
	}
	if w := cfg.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}
}
