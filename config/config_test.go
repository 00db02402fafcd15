package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/internal/errkind"
)

// testEnv pins the environment the defaults depend on.
func testEnv(t *testing.T, euid int, vars map[string]string) {
	t.Helper()
	old := getEnv
	getEnv = func() sysEnv {
		return sysEnv{euid: euid, home: "/home/u", getenv: func(k string) string { return vars[k] },
			passwdHome: func(int) (string, error) { return "/home/u", nil }}
	}
	t.Cleanup(func() { getEnv = old })
}

func writeFile(t *testing.T, dir, name, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask
		t.Fatal(err)
	}
	return p
}

// problems returns the lines of a Usage error, failing the test otherwise.
func problems(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		t.Fatal("no error, want config problems")
	}
	if k := errkind.KindOf(err); k != errkind.Usage {
		t.Fatalf("kind %v, want usage: %v", k, err)
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("not config.Errors: %T %v", err, err)
	}
	return strings.Split(err.Error(), "\n")
}

// The case: line 7 has an unknown key, line 9 a bad duration;
// both are reported, with their lines, in one go.
func TestLoadReportsAllProblemsWithLines(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "bad.yaml", `link:
  watch: [ppp0]
fetch:
  accounts:
    - name: isp
      proto: pop3
      pasword: secret
      server: pop.example.net
      timeout: 2 seconds
      user: me
      to: me
      password_file: /etc/linkctl/isp.pass
`, 0o600)
	t.Chdir(dir)
	_, err := Load("bad.yaml")
	lines := problems(t, err)
	want := []string{
		`bad.yaml:7: fetch.accounts[0].pasword: unknown key (expected one of: name, proto, server, `,
		`bad.yaml:9: fetch.accounts[0].timeout: invalid duration "2 seconds" (expected e.g. 2s, 500ms)`,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("problem %d:\n got %s\nwant %s...", i, lines[i], w)
		}
	}
	if !strings.Contains(lines[0], "did you mean password?") {
		t.Errorf("no suggestion: %s", lines[0])
	}
	if errkind.ExitCode(err) != 5 {
		t.Errorf("exit %d, want 5", errkind.ExitCode(err))
	}
}

func TestLinkSettleMessage(t *testing.T) {
	_, err := Parse("bad.yaml", []byte("fetch:\n  accounts: [{server: localhost, proto: pop3, user: u, password: p, to: u}]\nlink:\n  settle: 2 seconds\n"))
	lines := problems(t, err)
	if want := `bad.yaml:4: link.settle: invalid duration "2 seconds" (expected e.g. 2s, 500ms)`; len(lines) != 1 || lines[0] != want {
		t.Fatalf("got %q, want %q", lines, want)
	}
}

func TestMinimalParses(t *testing.T) {
	testEnv(t, 1000, nil)
	c, err := Parse("minimal.yaml", Minimal)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Fetch.Accounts) != 1 {
		t.Fatalf("accounts: %+v", c.Fetch.Accounts)
	}
	a := c.Fetch.Accounts[0]
	if a.Server != "pop.example.net:995" || a.TLS != "implicit" || a.Name != "pop.example.net" {
		t.Errorf("account defaults: %+v", a)
	}
	if a.Deliver.SMTP != DefaultSMTP || a.Password.File != "/etc/linkctl/pop.pass" {
		t.Errorf("deliver/password: %+v %+v", a.Deliver, a.Password)
	}
	if len(c.Pipeline) != 1 || c.Pipeline[0].Stage != StageFetch {
		t.Errorf("pipeline: %+v", c.Pipeline)
	}
}
