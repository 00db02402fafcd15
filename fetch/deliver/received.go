package deliver

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Received describes where a fetched message came from, for the trace
// header prepended before delivery (DESIGN.md, issue 5: "a Received: line
// naming linkctl, the server and the account").
type Received struct {
	Server  string    // the host the message was fetched from
	Account string    // the account's name in the config
	Proto   string    // "POP3", "IMAP" (with an "S" suffix for TLS, as RFC 3848 does for ESMTPS)
	ID      string    // the server's UID of the message, optional
	For     string    // the local recipient, optional
	By      string    // this host's name; "" = os.Hostname()
	Time    time.Time // zero = now
}

// Line returns the header field, folded, ending in LF (the message reader
// convention; SMTP targets turn it into CRLF). It follows the shape of RFC
// 5321 section 4.4's time stamp line: "from" the server, "by" this host,
// "with" the protocol, "id", "for", then "; " and the date (RFC 5322
// section 3.3). Values are cleaned of anything that could end the header
// or inject another one (control characters, spaces inside a token).
func (r Received) Line() string {
	by := r.By
	if by == "" {
		by, _ = os.Hostname()
	}
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s", token(r.Server, "unknown"))
	if r.Account != "" {
		fmt.Fprintf(&b, " (account %s)", comment(r.Account))
	}
	fmt.Fprintf(&b, "\n\tby %s (linkctl)", token(by, "localhost"))
	if r.Proto != "" {
		fmt.Fprintf(&b, " with %s", token(r.Proto, ""))
	}
	if r.ID != "" {
		fmt.Fprintf(&b, " id %s", token(r.ID, ""))
	}
	if r.For != "" {
		fmt.Fprintf(&b, "\n\tfor <%s>", strings.Trim(token(r.For, ""), "<>"))
	}
	fmt.Fprintf(&b, ";\n\t%s\n", t.Format(time.RFC1123Z))
	return b.String()
}

// token keeps the printable non-space ASCII of s (RFC 5322 atext and the
// specials an address or UID may hold), or def when nothing is left.
func token(s, def string) string {
	out := strings.Map(func(r rune) rune {
		if r > 0x20 && r < 0x7f && r != '(' && r != ')' && r != ';' {
			return r
		}
		return -1
	}, s)
	if out == "" {
		return def
	}
	return out
}

// comment keeps printable ASCII and spaces, without the parentheses and
// backslash that would end or escape the comment.
func comment(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 0x20 && r < 0x7f && r != '(' && r != ')' && r != '\\' {
			return r
		}
		return -1
	}, s)
}

// PrependReceived returns msg with r's header line in front, streaming.
func PrependReceived(r Received, msg io.Reader) io.Reader {
	return io.MultiReader(strings.NewReader(r.Line()), msg)
}
