package pop3

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/linkctl/linkctl/internal/errkind"
)

// MaxLine is the longest response line accepted, CRLF included: RFC 2449
// section 4 keeps the first line of a response (and the greeting) at 512
// octets. The lines of UIDL, LIST and CAPA listings are held to the same
// bound (a UIDL line is a number and at most 70 characters); message
// content is streamed and never cut into lines.
const MaxLine = 512

// maxUIDLen is the longest unique-id RFC 1939 section 7 allows.
const maxUIDLen = 70

// maxCapaLines bounds a CAPA listing: real servers send about a dozen.
const maxCapaLines = 200

// errProto marks a response that breaks the protocol. The session is out of
// step after one and is dropped.
var errProto = errors.New("protocol violation")

// ServerError is a -ERR response. Code is the RFC 2449 section 8 response
// code in brackets at the start of the text ("IN-USE", "LOGIN-DELAY",
// "SYS/TEMP", "SYS/PERM", "AUTH"), upper-cased, or "" when there is none.
// Command is the command it answered, with secrets replaced by ***.
type ServerError struct {
	Command string
	Code    string
	Text    string
}

func (e *ServerError) Error() string {
	s := "server answered " + e.Command + " with -ERR"
	if e.Code != "" {
		s += " [" + e.Code + "]"
	}
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// parseStatus splits a status line ("+OK text", "-ERR text") into its
// verdict and text. RFC 1939 section 3 writes the indicators in upper case;
// some servers do not, so the match ignores case.
func parseStatus(line string) (ok bool, text string, err error) {
	ind, text, _ := strings.Cut(line, " ")
	switch strings.ToUpper(ind) {
	case "+OK":
		return true, text, nil
	case "-ERR":
		return false, text, nil
	}
	return false, "", fmt.Errorf("%w: expected +OK or -ERR, got %q", errProto, clip(line))
}

// responseCode extracts the bracketed RFC 2449 section 8 response code at
// the start of a -ERR text.
func responseCode(text string) string {
	if !strings.HasPrefix(text, "[") {
		return ""
	}
	code, _, ok := strings.Cut(text[1:], "]")
	if !ok || strings.ContainsAny(code, " \t[") {
		return ""
	}
	return strings.ToUpper(code)
}

// classify decides what a -ERR means for the caller: whether to try again
// later and which exit status it maps to. The response codes come from
// RFC 2449 section 8 (IN-USE, LOGIN-DELAY) and RFC 3206 (SYS/TEMP,
// SYS/PERM, AUTH); a plain -ERR during authentication is taken as rejected
// credentials, anywhere else as a permanent refusal of that command.
func classify(se *ServerError, authPhase bool) (errkind.Kind, bool) {
	switch {
	case se.Code == "IN-USE", se.Code == "LOGIN-DELAY", se.Code == "SYS/TEMP",
		strings.HasPrefix(se.Code, "SYS/TEMP/"):
		// Another session holds the maildrop lock, the server wants a
		// pause between logins, or it has a transient fault: all clear
		// up on their own.
		return errkind.Refused, true
	case se.Code == "SYS/PERM", strings.HasPrefix(se.Code, "SYS/PERM/"):
		return errkind.Refused, false
	case se.Code == "AUTH", strings.HasPrefix(se.Code, "AUTH/"):
		// RFC 3206 section 4: the credentials are wrong; retrying with
		// the same ones will fail again.
		return errkind.Auth, false
	case authPhase:
		return errkind.Auth, false
	}
	return errkind.Refused, false
}

// UIDEntry is one line of a UIDL listing.
type UIDEntry struct {
	Num uint32
	UID string
}

// SizeEntry is one line of a LIST listing.
type SizeEntry struct {
	Num  uint32
	Size int64
}

// parseUIDLine parses "msg-number unique-id" (RFC 1939 section 7). The
// unique-id is 1 to 70 octets in 0x21-0x7E, so a line with a space in the
// id, a control character or an overlong id is rejected rather than
// truncated: a truncated id could match another message's and have it
// skipped or deleted.
func parseUIDLine(line string) (UIDEntry, error) {
	numStr, uid, ok := strings.Cut(line, " ")
	if !ok {
		return UIDEntry{}, fmt.Errorf("%w: UIDL line %q has no unique-id", errProto, clip(line))
	}
	n, err := parseNum(numStr)
	if err != nil {
		return UIDEntry{}, fmt.Errorf("UIDL line %q: %w", clip(line), err)
	}
	if err := checkUID(uid); err != nil {
		return UIDEntry{}, fmt.Errorf("UIDL line %q: %w", clip(line), err)
	}
	return UIDEntry{Num: n, UID: uid}, nil
}

func checkUID(uid string) error {
	if uid == "" || len(uid) > maxUIDLen {
		return fmt.Errorf("%w: unique-id is %d octets, RFC 1939 allows 1 to 70", errProto, len(uid))
	}
	for i := 0; i < len(uid); i++ {
		if uid[i] < 0x21 || uid[i] > 0x7e {
			return fmt.Errorf("%w: unique-id has octet 0x%02x outside 0x21-0x7E", errProto, uid[i])
		}
	}
	return nil
}

// parseListLine parses "msg-number size" (RFC 1939 section 5, LIST).
// Servers may append more after the size (the RFC reserves it); the size
// must be a non-negative decimal that fits in 63 bits.
func parseListLine(line string) (SizeEntry, error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return SizeEntry{}, fmt.Errorf("%w: LIST line %q is not \"number size\"", errProto, clip(line))
	}
	n, err := parseNum(f[0])
	if err != nil {
		return SizeEntry{}, fmt.Errorf("LIST line %q: %w", clip(line), err)
	}
	if !allDigits(f[1]) {
		return SizeEntry{}, fmt.Errorf("%w: LIST line %q: size is not a decimal number", errProto, clip(line))
	}
	size, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return SizeEntry{}, fmt.Errorf("%w: LIST line %q: size out of range", errProto, clip(line))
	}
	return SizeEntry{Num: n, Size: size}, nil
}

// parseStat parses the text of a STAT +OK: "count size".
func parseStat(text string) (count int, size int64, err error) {
	f := strings.Fields(text)
	if len(f) < 2 || !allDigits(f[0]) || !allDigits(f[1]) {
		return 0, 0, fmt.Errorf("%w: STAT answer %q is not \"count size\"", errProto, clip(text))
	}
	c, err1 := strconv.ParseUint(f[0], 10, 31)
	s, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%w: STAT answer %q out of range", errProto, clip(text))
	}
	return int(c), s, nil
}

// parseNum parses a message number: a positive decimal (RFC 1939 section 3).
func parseNum(s string) (uint32, error) {
	if !allDigits(s) {
		return 0, fmt.Errorf("%w: message number %q is not a decimal number", errProto, clip(s))
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%w: message number %q out of range", errProto, clip(s))
	}
	return uint32(n), nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Caps is a CAPA listing (RFC 2449 section 5): upper-cased capability name
// to its arguments.
type Caps map[string][]string

// Has reports whether the server announced capability name.
func (c Caps) Has(name string) bool {
	_, ok := c[strings.ToUpper(name)]
	return ok
}

// SASL returns the announced SASL mechanisms, upper-cased.
func (c Caps) SASL() []string {
	var out []string
	for _, m := range c["SASL"] {
		out = append(out, strings.ToUpper(m))
	}
	return out
}

// HasSASL reports whether mechanism mech was announced.
func (c Caps) HasSASL(mech string) bool {
	for _, m := range c.SASL() {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}

func (c Caps) add(line string) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return
	}
	c[strings.ToUpper(f[0])] = f[1:]
}

// clip shortens s for an error message and makes control characters
// visible through %q.
func clip(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
