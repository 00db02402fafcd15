package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/config"
)

func TestImportFetchmailrcDefaultFileToStdout(t *testing.T) {
	home := t.TempDir()
	rc, err := os.ReadFile("../../config/fetchmailrc/testdata/book-sample.rc")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".fetchmailrc"), rc, 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := filepath.Join(home, "secrets")
	out, errOut, code := linkctl(t, []string{"HOME=" + home}, "import-fetchmailrc", "--secret-dir", secrets)
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, errOut)
	}
	if strings.Contains(out, "another-password") {
		t.Errorf("a password was printed:\n%s", out)
	}
	pw := filepath.Join(secrets, "mailer.notaol.org.pass")
	if !strings.Contains(out, "password_file: "+pw) {
		t.Errorf("output does not name %s:\n%s", pw, out)
	}
	b, err := os.ReadFile(pw)
	if err != nil || strings.TrimSpace(string(b)) != "another-password" {
		t.Errorf("password file: %q, %v", b, err)
	}
	if fi, _ := os.Stat(pw); fi.Mode().Perm() != 0o600 {
		t.Errorf("password file mode %v", fi.Mode().Perm())
	}
	if !strings.Contains(errOut, "wrote password file") {
		t.Errorf("stderr does not say where the passwords went:\n%s", errOut)
	}
	if _, err := config.Parse(filepath.Join(secrets, "linkctl.yaml"), []byte(out)); err != nil {
		t.Errorf("printed config does not parse: %v", err)
	}
	// Running it again with the same passwords is fine.
	if _, errOut, code := linkctl(t, []string{"HOME=" + home}, "import-fetchmailrc", "--secret-dir", secrets); code != 0 {
		t.Errorf("second import exited %d: %s", code, errOut)
	}
}

func TestImportFetchmailrcToFileWarns(t *testing.T) {
	dir := t.TempDir()
	rc := filepath.Join(dir, "rc")
	if err := os.WriteFile(rc, []byte(`poll mail.example.net proto pop3 user "u" pass "p w" no sslcertck`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "linkctl.yaml")
	stdout, errOut, code := linkctl(t, nil, "import-fetchmailrc", "-o", out, rc)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if stdout != "" {
		t.Errorf("stdout with -o: %q", stdout)
	}
	if !strings.Contains(errOut, "warning: "+rc+":1: no sslcertck") {
		t.Errorf("stderr lacks the sslcertck warning:\n%s", errOut)
	}
	fi, err := os.Stat(out)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("output %v, %v: want mode 0600", fi, err)
	}
	cfg, err := config.Load(out) // Load also checks the permissions
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Fetch.Accounts[0].Password.Inline != "p w" {
		t.Errorf("inline password not kept in the 0600 output")
	}
	// An existing output is not overwritten without --force.
	if _, errOut, code := linkctl(t, nil, "import-fetchmailrc", "-o", out, rc); code != 5 || !strings.Contains(errOut, "--force") {
		t.Errorf("second import: exit %d, %s", code, errOut)
	}
}

func TestImportFetchmailrcSyntaxError(t *testing.T) {
	rc := filepath.Join(t.TempDir(), "rc")
	os.WriteFile(rc, []byte("poll a\n  user b pass \"open\n"), 0o600)
	_, errOut, code := linkctl(t, nil, "import-fetchmailrc", rc)
	if code != 5 || !strings.Contains(errOut, rc+":2:15: unterminated string") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// The shipped samples convert into configs `linkctl check` accepts (offline:
// the sample servers are not ours to resolve).
func TestImportedSamplesPassCheck(t *testing.T) {
	// The shared samples (the kitchen-sink has an account without a password,
	// whose password_file the user must fill first).
	files, _ := filepath.Glob("../../config/fetchmailrc/testdata/book-*.rc")
	if len(files) < 2 {
		t.Fatalf("samples: %v", files)
	}
	for _, rc := range files {
		out := filepath.Join(t.TempDir(), "linkctl.yaml")
		if _, errOut, code := linkctl(t, nil, "import-fetchmailrc", "-o", out, rc); code != 0 {
			t.Errorf("%s: import exited %d: %s", rc, code, errOut)
			continue
		}
		if stdout, errOut, code := linkctl(t, nil, "-c", out, "check", "--offline"); code != 0 {
			t.Errorf("%s: check exited %d:\n%s\n%s", rc, code, stdout, errOut)
		}
	}
}

func TestImportFetchmailrcFromStdin(t *testing.T) {
	cmd := exec.Command(linkctlBin, "import-fetchmailrc", "--secret-dir", t.TempDir(), "-")
	cmd.Stdin = strings.NewReader("poll imap.example.net proto imap user u password p ssl\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v", err)
	}
	if !strings.Contains(string(out), "proto: imap") || !strings.Contains(string(out), "converted from (stdin)") {
		t.Errorf("output:\n%s", out)
	}
}

// Issue 18: without -o and --secret-dir nothing is written anywhere (it
// used to write password files into /etc/linkctl); stderr names the files
// the config refers to and how to have them written.
func TestImportFetchmailrcWritesNothingByDefault(t *testing.T) {
	dir := t.TempDir()
	rc := filepath.Join(dir, "rc")
	if err := os.WriteFile(rc, []byte("poll pop.import-test.example proto pop3 user u password s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cwd := t.TempDir()
	want := filepath.Join(filepath.Dir(config.DefaultPath()), "pop.import-test.example.pass")
	if _, err := os.Stat(want); err == nil {
		t.Skipf("%s exists already: cannot tell whether the import wrote it", want)
	}
	cmd := exec.Command(linkctlBin, "import-fetchmailrc", rc)
	cmd.Dir = cwd
	cmd.Env = append(os.Environ(), "HOME="+home)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if _, err := os.Stat(want); err == nil {
		os.Remove(want)
		t.Errorf("a password file was written to %s", want)
	}
	for _, d := range []string{cwd, home, dir} {
		ents, _ := os.ReadDir(d)
		if d == dir && len(ents) == 1 {
			continue // the rc itself
		}
		if len(ents) != 0 {
			t.Errorf("files written into %s: %v", d, ents)
		}
	}
	if strings.Contains(string(out), "s3cret") {
		t.Errorf("the password was printed:\n%s", out)
	}
	if !strings.Contains(string(out), "password_file: "+want) {
		t.Errorf("the YAML does not name %s:\n%s", want, out)
	}
	if e := stderr.String(); !strings.Contains(e, "nothing written") || !strings.Contains(e, want) ||
		!strings.Contains(e, "-o FILE") || !strings.Contains(e, "--secret-dir DIR") {
		t.Errorf("stderr does not say what was not written and how to write it:\n%s", e)
	}
}

// Every file of the fetchmail corpus converts into a config that
// `linkctl check --offline` accepts (once the password files the import
// could not fill, for entries with no password, exist).
func TestImportedCorpusPassesCheck(t *testing.T) {
	files, _ := filepath.Glob("../../config/fetchmailrc/testdata/corpus/*.rc")
	if len(files) < 25 {
		t.Fatalf("corpus: %d files", len(files))
	}
	for _, rc := range files {
		dir := t.TempDir()
		out := filepath.Join(dir, "linkctl.yaml")
		_, errOut, code := linkctl(t, nil, "import-fetchmailrc", "-o", out, "--secret-dir", filepath.Join(dir, "secrets"), rc)
		if code != 0 && code != 5 {
			t.Errorf("%s: import exited %d: %s", rc, code, errOut)
			continue
		}
		y, err := os.ReadFile(out)
		if err != nil {
			t.Errorf("%s: %v (%s)", rc, err, errOut)
			continue
		}
		for _, l := range strings.Split(string(y), "\n") {
			if _, p, ok := strings.Cut(l, "password_file: "); ok {
				if _, err := os.Stat(p); err != nil {
					os.MkdirAll(filepath.Dir(p), 0o700)
					os.WriteFile(p, []byte("filled-in\n"), 0o600)
				}
			}
		}
		if stdout, errOut, code := linkctl(t, nil, "-c", out, "check", "--offline"); code != 0 {
			t.Errorf("%s: check exited %d:\n%s\n%s\n%s", rc, code, stdout, errOut, y)
		}
	}
}
