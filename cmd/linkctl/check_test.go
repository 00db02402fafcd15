package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The case: line 7 has an unknown key, line 9 a bad duration; both
// are reported at once with file:line, and the exit status is 5.
func TestCheckReportsEveryProblemWithFileAndLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	body := `# a config with two mistakes
fetch:
  deliver: {smtp: "127.0.0.1:25"}
  accounts:
    - name: isp
      server: 127.0.0.1:1110
      pasword: secret
      to: chavez
link: {settle: 2 seconds}
`
	os.WriteFile(path, []byte(body), 0o600)
	_, errOut, code := linkctl(t, nil, "check", "--offline", "-c", path)
	if code != 5 {
		t.Fatalf("exit %d, want 5; stderr:\n%s", code, errOut)
	}
	for _, want := range []string{path + ":7: fetch.accounts[0].pasword: unknown key", path + ":9: link.settle: invalid duration"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestCheckRefusesAReadableInlinePassword(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "linkctl.yaml")
	body := "state_dir: " + dir + "\nfetch:\n  accounts:\n    - {server: 127.0.0.1:1110, proto: pop3, user: u, password: hunter2, to: chavez}\n"
	os.WriteFile(path, []byte(body), 0o644)
	os.Chmod(path, 0o644)
	_, errOut, code := linkctl(t, nil, "check", "--offline", "-c", path)
	if code != 6 || !strings.Contains(errOut, "chmod 600") {
		t.Fatalf("exit %d, stderr %q; want 6 with the chmod hint", code, errOut)
	}
	if strings.Contains(errOut, "hunter2") {
		t.Fatal("the password reached the error output")
	}

	// The same account with password_file: no secret in the config, no error.
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("hunter2\n"), 0o600)
	body = strings.Replace(body, "password: hunter2", "password_file: "+pw, 1)
	os.WriteFile(path, []byte(body), 0o644)
	out, errOut, code := linkctl(t, nil, "check", "--offline", "-c", path)
	if code != 0 {
		t.Fatalf("password_file config: exit %d, stderr %q", code, errOut)
	}
	if strings.Contains(out, "hunter2") {
		t.Fatal("the effective config shows the password")
	}
}
