package config

import (
	"fmt"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Paths in a config (state_dir, control_socket, metrics_file, log.file,
// password_file, an lmtp socket, a maildir) mean the same file whoever
// reads the config and whatever environment it runs in: `linkctl check` in
// a login shell and the daemon under systemd (no $HOME, ProtectHome=yes)
// must agree, or a config that checks fine fails at the first link-up.
// So $HOME is never read:
//
//   - an absolute path is taken as written (cleaned);
//   - a relative path is taken from the config file's directory, so a
//     config and its password file can move together;
//   - "~" and "~/..." are the home directory of the config file's owner,
//     from the passwd database, for a file owned by anyone but root. In a
//     file owned by root (a system config, /etc/linkctl/linkctl.yaml) "~"
//     is refused with a hint to write the absolute path: root's home is
//     hidden from the shipped systemd unit (ProtectHome=yes) anyway;
//   - "~NAME/..." is refused: write the absolute path.
//
// The owner is the file's (Load, Parse of an existing file), or the
// effective user for the command line's one-off flags and for a file not
// written yet (linkctl init).

// tildeHome returns what "~" means in a config owned by uid, or why it
// means nothing.
func (e sysEnv) tildeHome(uid int) (home, problem string) {
	if uid == 0 {
		return "", "~ is not expanded in a config owned by root (under systemd linkctl has no HOME, and ProtectHome=yes hides /root and /home)"
	}
	h, err := e.passwdHome(uid)
	if err != nil || !filepath.IsAbs(h) {
		return "", fmt.Sprintf("~ cannot be expanded: the config's owner (uid %d) has no home directory in the passwd database", uid)
	}
	return h, ""
}

// passwdHomeDir looks a home directory up in the passwd database (NSS with
// cgo, /etc/passwd without).
func passwdHomeDir(uid int) (string, error) {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return "", err
	}
	return u.HomeDir, nil
}

// path turns a path written in the config (n, at key) into an absolute
// one, following the rules above. After a problem it returns s as written,
// so that the key does not also read as missing.
func (c *checker) path(n *yaml.Node, key, s string) string {
	if !strings.HasPrefix(s, "~") {
		if !filepath.IsAbs(s) {
			return filepath.Join(c.dir, s)
		}
		return filepath.Clean(s)
	}
	exp := "expected an absolute path"
	if strings.HasSuffix(key, "password_file") {
		// A hint that can be copied: password files live beside the
		// system config, in the directory the unit keeps 0700.
		exp += ", e.g. /etc/linkctl/" + filepath.Base(s)
	}
	name, rest, _ := strings.Cut(s[1:], "/")
	if name != "" {
		c.add(n, key, fmt.Sprintf("%q: ~%s is not expanded", s, name), exp)
		return s
	}
	home, problem := c.env.tildeHome(c.owner)
	if problem != "" {
		c.add(n, key, fmt.Sprintf("%q: %s", s, problem), exp)
		return s
	}
	return filepath.Join(home, rest)
}
