package scripts

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/config"
)

// hiddenFromUnit are the directories the shipped unit hides from the
// daemon (ProtectHome=yes, PrivateTmp=yes).
var hiddenFromUnit = []string{"/root", "/home", "/run/user", "/tmp", "/var/tmp"}

// systemPaths parses data as the root-owned /etc/linkctl/linkctl.yaml, as
// the daemon reads it under systemd (no HOME), and fails t for a path the
// daemon could not reach. It returns the password files named.
func systemPaths(t *testing.T, name string, data []byte) []string {
	t.Helper()
	// `linkctl check` in a root shell (HOME=/root) and the daemon under
	// systemd (no HOME) must read the same paths.
	t.Setenv("HOME", "/root")
	inShell, err := config.Parse("/etc/linkctl/linkctl.yaml", data)
	if err != nil {
		t.Errorf("%s as /etc/linkctl/linkctl.yaml: %v", name, err)
		return nil
	}
	t.Setenv("HOME", "")
	cfg, err := config.Parse("/etc/linkctl/linkctl.yaml", data)
	if err != nil {
		t.Errorf("%s as /etc/linkctl/linkctl.yaml with no HOME: %v", name, err)
		return nil
	}
	a, _ := inShell.Redacted()
	b, _ := cfg.Redacted()
	if string(a) != string(b) {
		t.Errorf("%s: the daemon (no HOME) reads\n%s\nwhere check in a root shell reads\n%s", name, b, a)
	}
	var secrets []string
	paths := map[string]string{"state_dir": cfg.StateDir, "control_socket": cfg.ControlSocket,
		"metrics_file": cfg.MetricsFile, "log.file": cfg.Log.File,
		"fetch.deliver.maildir": cfg.Fetch.Deliver.Maildir}
	for _, s := range cfg.ETRN.Servers {
		paths["password_file of "+s.Server] = s.Password.File
		secrets = append(secrets, s.Password.File)
	}
	for _, a := range cfg.Fetch.Accounts {
		paths["password_file of "+a.Name] = a.Password.File
		paths["maildir of "+a.Name] = a.Deliver.Maildir
		secrets = append(secrets, a.Password.File)
	}
	for key, p := range paths {
		if p == "" {
			continue
		}
		for _, d := range hiddenFromUnit {
			if p == d || strings.HasPrefix(p, d+"/") {
				t.Errorf("%s: %s is %s, under %s, which the systemd unit hides", name, key, p, d)
			}
		}
	}
	return secrets
}

// The shipped examples use system paths only: copied to /etc/linkctl as
// the README says, they work under the unit.
func TestExamplesUseSystemPaths(t *testing.T) {
	files, _ := filepath.Glob("examples/*.yaml")
	files = append(files, "../config/minimal.yaml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		systemPaths(t, f, data)
	}
}

// README's install-by-hand steps fit the unit they install: the binary goes
// where ExecStart runs it, the config they copy holds only paths the daemon
// reaches whatever HOME is, every password file it names is created mode
// 0600 by the steps, and `linkctl check` runs before the unit is enabled.
func TestREADMEInstallStepsFitTheUnit(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)\n## Install\n.*?By hand[^\n]*\n\n```sh\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README: no ## Install section with a By hand sh block")
	}
	steps := string(m[1])
	unit, err := os.ReadFile("systemd/linkctl.service")
	if err != nil {
		t.Fatal(err)
	}
	exec := regexp.MustCompile(`(?m)^ExecStart=(\S+)`).FindSubmatch(unit)
	if exec == nil || !strings.Contains(steps, "go build -o "+string(exec[1])+" ./cmd/linkctl") {
		t.Errorf("the steps do not build the binary the unit runs (%s):\n%s", exec, steps)
	}
	cp := regexp.MustCompile(`(?m)(?:^|&& )(?:install -m 0600|cp) (\S+) /etc/linkctl/linkctl\.yaml$`).FindStringSubmatch(steps)
	if cp == nil {
		t.Fatalf("the steps do not install a config as /etc/linkctl/linkctl.yaml:\n%s", steps)
	}
	data, err := os.ReadFile(filepath.Join("..", cp[1]))
	if err != nil {
		t.Fatal(err)
	}
	for _, pass := range systemPaths(t, cp[1], data) {
		if pass != "" && !regexp.MustCompile(`(?m)^install -m 0600 /dev/null `+regexp.QuoteMeta(pass)+`$`).MatchString(steps) {
			t.Errorf("%s names password_file %s, which the steps do not create (install -m 0600 /dev/null %s):\n%s", cp[1], pass, pass, steps)
		}
	}
	check, enable := strings.Index(steps, "linkctl check"), strings.Index(steps, "systemctl enable")
	if check < 0 || enable < 0 || check > enable {
		t.Errorf("want linkctl check before systemctl enable:\n%s", steps)
	}
}
