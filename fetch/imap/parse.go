package imap

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// errProto marks a response that breaks the protocol.
var errProto = errors.New("protocol violation")

// maxLine bounds one response line of the handshake (greeting, CAPABILITY,
// tagged replies): real servers send a few hundred octets; a hostile one
// must not make us buffer without end.
const maxLine = 16 << 10

// maxHandshakeLiteral bounds a literal inside a handshake response (some
// servers put one in an untagged ID reply); none is expected.
const maxHandshakeLiteral = 16 << 10

// response is one line of the handshake, split as RFC 3501 section 7
// (and RFC 9051 section 7) lays it out:
//
//	"*" SP kind [SP "[" code [SP arg] "]"] [SP text]   untagged
//	tag SP kind [SP "[" code [SP arg] "]"] [SP text]   tagged
//	"+" [SP text]                                       continuation
//
// For "* CAPABILITY a b" kind is CAPABILITY and text holds the list.
type response struct {
	tag  string // "*", "+" or the command tag
	kind string // OK, NO, BAD, PREAUTH, BYE, CAPABILITY, ... (upper case)
	code string // response code (upper case), "" when none
	arg  string // the response code's argument
	text string // human-readable text (or the continuation's data)
}

// parseResponse splits a handshake line (without CRLF).
func parseResponse(line string) (response, error) {
	var r response
	if line == "+" || strings.HasPrefix(line, "+ ") {
		r.tag = "+"
		r.text = strings.TrimPrefix(strings.TrimPrefix(line, "+"), " ")
		return r, nil
	}
	tag, rest, ok := strings.Cut(line, " ")
	if !ok || tag == "" || !validTag(tag) {
		return r, fmt.Errorf("%w: malformed response %q", errProto, clip(line))
	}
	r.tag = tag
	kind, rest, _ := strings.Cut(rest, " ")
	if kind == "" {
		return r, fmt.Errorf("%w: response without a status %q", errProto, clip(line))
	}
	r.kind = strings.ToUpper(kind)
	switch r.kind {
	case "OK", "NO", "BAD", "PREAUTH", "BYE":
	default:
		r.text = rest
		return r, nil
	}
	// Some servers omit the text; RFC 3501 requires it, go-imap tolerates
	// its absence and so do we.
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return r, fmt.Errorf("%w: unterminated response code in %q", errProto, clip(line))
		}
		code := rest[1:end]
		r.code, r.arg, _ = strings.Cut(code, " ")
		r.code = strings.ToUpper(r.code)
		if r.code == "" {
			return r, fmt.Errorf("%w: empty response code in %q", errProto, clip(line))
		}
		rest = strings.TrimPrefix(rest[end+1:], " ")
	}
	r.text = rest
	return r, nil
}

// validTag accepts "*" and the tags RFC 3501 section 9 allows: atom
// characters except "+".
func validTag(tag string) bool {
	if tag == "*" {
		return true
	}
	for i := 0; i < len(tag); i++ {
		if !isAtomChar(tag[i]) || tag[i] == '+' {
			return false
		}
	}
	return true
}

// isAtomChar is ATOM-CHAR of RFC 3501 section 9: any CHAR except
// atom-specials ( ) { SP CTL % * " \ ].
func isAtomChar(c byte) bool {
	if c <= 0x1f || c >= 0x7f {
		return false
	}
	switch c {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

// parseCaps parses a capability list ("IMAP4rev1 IDLE AUTH=PLAIN"): upper
// case, duplicates and empty fields dropped. A token that is not an atom
// is a protocol error: it could not be passed on to go-imap intact.
func parseCaps(list string) ([]string, error) {
	var caps []string
	seen := map[string]bool{}
	for _, f := range strings.Fields(list) {
		for i := 0; i < len(f); i++ {
			if !isAtomChar(f[i]) {
				return nil, fmt.Errorf("%w: bad capability %q", errProto, clip(f))
			}
		}
		f = strings.ToUpper(f)
		if !seen[f] {
			seen[f] = true
			caps = append(caps, f)
		}
	}
	return caps, nil
}

// literalSize reports whether line ends with a literal announcement
// "{n}" or "{n+}" (RFC 7888) and its size.
func literalSize(line string) (int64, bool, error) {
	if !strings.HasSuffix(line, "}") {
		return 0, false, nil
	}
	open := strings.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false, nil
	}
	num := strings.TrimSuffix(line[open+1:len(line)-1], "+")
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, false, fmt.Errorf("%w: bad literal size in %q", errProto, clip(line))
	}
	return n, true, nil
}

// quote encodes s as an IMAP string for LOGIN: a quoted string
// (RFC 3501 section 4.3) when it can be one, else ok is false and the
// caller sends a literal. Quoted strings cannot hold CR, LF or NUL, and
// 8-bit octets are only allowed in literals without UTF8=ACCEPT.
func quote(s string) (q string, ok bool) {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 0 || c == '\r' || c == '\n' || c >= 0x80:
			return "", false
		case c == '"' || c == '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String(), true
}

// clip shortens s for an error message (which quotes it with %q).
func clip(s string) string {
	const max = 120
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
