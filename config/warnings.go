package config

import (
	"fmt"

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
	if c.ETRN.CountLoopback && len(c.ETRN.Servers) > 0 {
		warn(0, "etrn.count_loopback", "true counts local SMTP sessions as inbound mail (meant for tests): the quiet wait may never end on a busy host")
	}
	return out
}
