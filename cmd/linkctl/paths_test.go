package main

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// A "~" in a config means the same to `linkctl check` and to a run,
// whatever HOME is: in a root-owned config both refuse it with the same
// hint (the daemon under systemd has no HOME); in a user's config both
// take the owner's home from the passwd database.
func TestTildeSameInCheckAndRunWhateverHOME(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to own the config as root and as another user")
	}
	path := writeConfig(t, "fetch:\n  accounts:\n    - {proto: pop3, server: \"127.0.0.1:1\", user: u, password_file: ~/.config/linkctl/pop.pass, to: me}\n")
	const refused = `password_file: "~/.config/linkctl/pop.pass": ~ is not expanded in a config owned by root`
	for _, home := range []string{"HOME=", "HOME=/root", "HOME=" + t.TempDir()} {
		for _, args := range [][]string{{"check", "--offline"}, {"run"}} {
			_, errOut, code := linkctl(t, []string{home}, append([]string{"-c", path}, args...)...)
			if code != 5 || !strings.Contains(errOut, refused) || !strings.Contains(errOut, "expected an absolute path, e.g. /etc/linkctl/pop.pass") {
				t.Errorf("%s linkctl %v: exit %d, %s", home, args, code, errOut)
			}
		}
	}

	nobody, err := user.LookupId("65534")
	if err != nil || !filepath.IsAbs(nobody.HomeDir) {
		t.Skipf("no uid 65534 with a home: %v", err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	want := "password_file " + filepath.Join(nobody.HomeDir, ".config/linkctl/pop.pass") + " does not exist"
	for _, home := range []string{"HOME=", "HOME=/root"} {
		_, errOut, code := linkctl(t, []string{home}, "-c", path, "check", "--offline")
		if code != 5 || !strings.Contains(errOut, want) {
			t.Errorf("%s, config owned by uid 65534: exit %d, %s (want %q)", home, code, errOut, want)
		}
	}
}
