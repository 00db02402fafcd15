package config

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/linkctl/linkctl/internal/netconn"
)

// Warnings lists what is valid but probably not meant, each as
// "FILE:LINE: path: what (why it matters)", for `linkctl check` to print.
// They never change the exit status.
func (c *Config) Warnings() []string {
	var out []string
	warn := func(line int, path, format string, args ...any) {
		out = append(out, (&Problem{File: c.File, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)}).Error())
	}
	for i, s := range c.ETRN.Servers {
		if s.TLS == TLSNone && !netconn.IsLoopback(s.Server) && s.User != "" {
			warn(s.Line, fmt.Sprintf("etrn.servers[%d].tls", i), "none: the password for %s goes over the network in clear (use starttls or implicit)", s.Server)
		}
	}
	for i, a := range c.Fetch.Accounts {
		p := fmt.Sprintf("fetch.accounts[%d]", i)
		if a.TLS == TLSNone && len(a.Plugin) == 0 && !netconn.IsLoopback(a.Server) && a.Auth != AuthAPOP {
			warn(a.Line, p+".tls", "none: the password for %s goes over the network in clear (use implicit or starttls)", a.Server)
		}
		if a.Keep && a.KeepDays == 0 && !a.FetchAll && a.MoveTo == "" {
			// Not a mistake, just a mailbox that grows: say so once.
			warn(a.Line, p+".keep", "true without keep_days: mail stays on %s for good (set keep_days to have it deleted later)", a.Server)
		}
	}
	out = append(out, c.hiddenPathWarnings()...)
	if c.ETRN.CountLoopback && len(c.ETRN.Servers) > 0 {
		warn(0, "etrn.count_loopback", "true counts local SMTP sessions as inbound mail (meant for tests): the quiet wait may never end on a busy host")
	}
	return out
}

// protectedHome are the directories the shipped systemd unit hides
// (ProtectHome=yes).
var protectedHome = []string{"/root", "/home", "/run/user"}

func underProtectedHome(p string) string {
	for _, d := range protectedHome {
		if p == d || strings.HasPrefix(p, d+"/") {
			return d
		}
	}
	return ""
}

// hiddenPathWarnings: a system config (one that is not itself in a home
// directory) naming a file under /root or /home checks fine in a root
// shell and fails under the systemd unit, which hides those directories.
func (c *Config) hiddenPathWarnings() []string {
	// Only root runs the system unit; a user's own configs are theirs.
	if f, err := filepath.Abs(c.File); err != nil || underProtectedHome(f) != "" || getEnv().euid != 0 {
		return nil
	}
	var out []string
	check := func(line int, key, p string) {
		if d := underProtectedHome(p); d != "" {
			out = append(out, (&Problem{File: c.File, Line: line, Path: key, Msg: fmt.Sprintf(
				"%s is under %s, which the linkctl systemd unit hides (ProtectHome=yes): the daemon will not find it (move it to /etc/linkctl or /var/lib/linkctl, or allow it in a drop-in)", p, d)}).Error())
		}
	}
	check(0, "state_dir", c.StateDir)
	check(0, "control_socket", c.ControlSocket)
	check(0, "metrics_file", c.MetricsFile)
	check(0, "log.file", c.Log.File)
	for i, s := range c.ETRN.Servers {
		check(s.Line, fmt.Sprintf("etrn.servers[%d].password_file", i), s.Password.File)
	}
	check(0, "fetch.deliver.lmtp", c.Fetch.Deliver.LMTP)
	check(0, "fetch.deliver.maildir", c.Fetch.Deliver.Maildir)
	for i, a := range c.Fetch.Accounts {
		p := fmt.Sprintf("fetch.accounts[%d]", i)
		check(a.Line, p+".password_file", a.Password.File)
		if a.Deliver.Maildir != c.Fetch.Deliver.Maildir {
			check(a.Line, p+".deliver.maildir", a.Deliver.Maildir)
		}
		if a.Deliver.LMTP != c.Fetch.Deliver.LMTP {
			check(a.Line, p+".deliver.lmtp", a.Deliver.LMTP)
		}
	}
	return out
}
