// Package exitcode is the one table of linkctl's exit statuses. The
// README's table, the man page's EXIT STATUS section and `linkctl --help`
// are all generated from [Table], and errkind's kinds take their numbers
// from the constants here, so the documentation cannot drift from what
// the binary returns.
//
// Statuses 0 to 11, and 13, keep fetchmail's meanings (fetchmail(1), EXIT
// CODES), so that connection scripts written for fetchmail keep working.
// fetchmail uses 0 to 14 and 23 (24 to 29 are its internal codes);
// linkctl's own outcomes take 20 and up where fetchmail has nothing, and
// linkctl's internal error is fetchmail's 23. Numbers fetchmail gives a
// meaning linkctl never reports (9 server lock busy, 12 BSMTP file, 14
// server busy) are left unused rather than given another meaning.
package exitcode

import (
	"fmt"
	"strings"
)

// The exit statuses.
const (
	OK         = 0  // success
	NoMail     = 1  // nothing to do: no mail was waiting
	Network    = 2  // network or socket error, time-out
	Auth       = 3  // authentication failed
	Protocol   = 4  // a server broke the protocol
	Usage      = 5  // usage or config error
	Permission = 6  // config file permissions
	Refused    = 7  // a server refused (ETRN 458/459, ...)
	Locked     = 8  // another run holds the lock
	Delivery   = 10 // local delivery (SMTP/LMTP/MDA) failed
	DNS        = 11 // DNS lookup failed
	FetchLimit = 13 // the fetch stopped at fetchlimit or a budget; mail is left on the server
	Partial    = 20 // some stages failed, others succeeded
	Deferred   = 21 // outbound mail still deferred after the flush; the later stages still ran
	Internal   = 23 // internal error
)

// Code is one row of the table.
type Code struct {
	Status int
	// Short is the few words of `linkctl --help`.
	Short string
	// Meaning is the sentence of the README and the man page (plain text;
	// `code` spans are for the README and lose their backquotes elsewhere).
	Meaning string
	// Fetchmail says the status means what fetchmail's does.
	Fetchmail bool
}

// Table lists every status linkctl returns, in order.
var Table = []Code{
	{OK, "ok", "all went well", true},
	{NoMail, "no mail", "nothing to do: no mail was waiting", true},
	{Network, "network", "network or socket error, time-out", true},
	{Auth, "authentication", "authentication failed", true},
	{Protocol, "protocol", "protocol error: a server answered nonsense", true},
	{Usage, "usage or config", "usage or config error (every problem is printed as `FILE:LINE: key: what`)", true},
	{Permission, "config permissions", "config file permissions (a file holding a password is readable by others)", true},
	{Refused, "refused by a server", "a server refused (ETRN 458/459, ...)", true},
	{Locked, "locked by another run", "another run holds the lock (`--wait` waits instead)", true},
	{Delivery, "local delivery", "local delivery failed", true},
	{DNS, "DNS", "DNS lookup failed", true},
	{FetchLimit, "stopped at fetchlimit or a budget", "the fetch stopped at `fetchlimit` or a link budget: mail is left on the server for the next run", true},
	{Partial, "some stages failed", "some stages failed, others succeeded", false},
	{Deferred, "mail still deferred", "outbound mail is still deferred after the flush (the later stages still ran)", false},
	{Internal, "internal error", "internal error, or an `exec` stage's command failed on its own", true},
}

// Intro is the paragraph above the table in the README and the man page.
const Intro = "Stable for scripts. Statuses 0 to 11 and 13 mean what they mean to fetchmail, " +
	"and 23 is its internal error, so connection scripts written for it keep working; " +
	"linkctl's own outcomes take 20 and up, which fetchmail does not use."

// Lookup returns the row of status, and false when linkctl has none.
func Lookup(status int) (Code, bool) {
	for _, c := range Table {
		if c.Status == status {
			return c, true
		}
	}
	return Code{}, false
}

// plain drops the backquotes of code spans (for --help).
func plain(s string) string { return strings.ReplaceAll(s, "`", "") }

// Markdown is the README's table, with the intro above it.
func Markdown() string {
	var b strings.Builder
	b.WriteString(wrap(strings.Fields(Intro), " ", 76) + "\n| status | meaning |\n|---|---|\n")
	for _, c := range Table {
		fmt.Fprintf(&b, "| %d | %s |\n", c.Status, c.Meaning)
	}
	return b.String()
}

// Roff is the man page's EXIT STATUS section, heading included.
func Roff() string {
	var b strings.Builder
	b.WriteString(".SH EXIT STATUS\n" + roffText(Intro) + "\n")
	for i, c := range Table {
		if i == 0 {
			b.WriteString(".TP 5\n")
		} else {
			b.WriteString(".TP\n")
		}
		fmt.Fprintf(&b, ".B %d\n%s\n", c.Status, roffText(c.Meaning))
	}
	return b.String()
}

// roffText escapes a line of text for roff (backslashes, a leading
// control character) and sets code spans in bold, their dashes as minus
// signs so that options such as --wait can be searched and pasted.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	parts := strings.Split(s, "`")
	for i := 1; i < len(parts); i += 2 {
		parts[i] = `\fB` + strings.ReplaceAll(parts[i], "-", `\-`) + `\fR`
	}
	s = strings.Join(parts, "")
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// Help is the exit-status paragraph of `linkctl --help`: every status
// with its short meaning, wrapped at width columns.
func Help(width int) string {
	entries := []string{"Exit status:"}
	for i, c := range Table {
		e := fmt.Sprintf("%d %s", c.Status, plain(c.Short))
		if i < len(Table)-1 {
			e += ","
		} else {
			e += "."
		}
		entries = append(entries, e)
	}
	// Break only between entries, so that a status stays next to its
	// meaning.
	return wrap(entries, " ", width)
}

// wrap joins items with sep into lines of at most width columns (an item
// longer than width gets a line of its own), each line ending in "\n".
func wrap(items []string, sep string, width int) string {
	var b strings.Builder
	line := ""
	for _, it := range items {
		if line != "" && len(line)+len(sep)+len(it) > width {
			b.WriteString(line + "\n")
			line = ""
		}
		if line != "" {
			line += sep
		}
		line += it
	}
	b.WriteString(line + "\n")
	return b.String()
}
