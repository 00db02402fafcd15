package fetchmailrc

import (
	"fmt"
	"strconv"
	"strings"
)

// tokKind tells a bare word from a quoted string: only bare words can be
// keywords, so `user "keep"` names a user called keep.
type tokKind int

const (
	tWord   tokKind = iota // unquoted: a keyword, a number or a value
	tString                // "quoted" or 'quoted': always a value
	tMap                   // '=' in a multidrop mapping ("remote"="local")
	tEOF
)

type token struct {
	kind tokKind
	text string
	line int
	col  int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of file"
	case tString:
		return strconv.Quote(t.text)
	case tMap:
		return `"="`
	}
	return fmt.Sprintf("%q", t.text)
}

// noise words carry no meaning in fetchmailrc; fetchmail's lexer drops them
// so that entries read as English ("user x there has password y and is z
// here"). The punctuation ':', ';' and ',' is dropped the same way.
var noise = map[string]bool{"and": true, "with": true, "has": true, "wants": true, "options": true}

// SyntaxError is a problem in the file, with its position.
type SyntaxError struct {
	File string
	Line int
	Col  int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// lex splits data into tokens the way fetchmail's flex lexer (rcfile_l.l)
// does, checked against `fetchmail --configdump` by the corpus test:
//
//   - A token is the longest match among a quoted string ("..." or '...',
//     no escaped quotes inside: the first matching quote closes it, and it
//     may span lines) and a bare word (any run of bytes other than space,
//     tab, CR, LF, '=', ';', ':' and ','). On a tie the string wins, so
//     "abc" is abc but "a\"b" is the bare word "a\"b" with its quotes, and
//     'it”s' is one word.
//   - '#' starting a token comments out the rest of the line.
//   - The noise words and ':', ';', ',' are dropped, except that the word
//     right after user, password, is, to or '=' is always a value (fetchmail's
//     NAME state): `user keep` names a user called keep.
//   - Backslash escapes (fetchmail's escapes()) apply to strings and bare
//     words alike: \n \t \b \r, \xHH (up to two hex digits), \0NN octal
//     (up to three digits with the 0), \NNN decimal (up to three digits),
//     a backslash-newline joins lines, any other escaped byte stands for
//     itself, and a NUL ends the value as in C.
//
// It never fails on odd bytes; it fails only on a quote that starts a
// token and that nothing closes (fetchmail would keep it as part of a bare
// word; here it is reported as the typo it almost always is).
func lex(name string, data []byte) ([]token, error) {
	var toks []token
	s := string(data)
	line, col := 1, 1
	i := 0
	adv := func(n int) {
		for k := 0; k < n && i < len(s); k++ {
			if s[i] == '\n' {
				line++
				col = 1
			} else {
				col++
			}
			i++
		}
	}
	isSep := func(c byte) bool {
		return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '=' || c == ';' || c == ':' || c == ','
	}
	nameState := false // the next word is a value (fetchmail's NAME state)
	authState := false // after auth: "password" is an authentication type
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';' || c == ':' || c == ',':
			adv(1)
			continue
		case c == '\\' && i+1 < len(s) && s[i+1] == '\n':
			adv(2) // a lone backslash before a newline is dropped with it
			continue
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				adv(1)
			}
			continue
		case c == '=':
			toks = append(toks, token{kind: tMap, text: "=", line: line, col: col})
			adv(1)
			nameState = true
			continue
		}
		startLine, startCol := line, col
		word := i
		for word < len(s) && !isSep(s[word]) {
			word++
		}
		wordLen := word - i
		strLen := -1
		if c == '"' || c == '\'' {
			if k := strings.IndexByte(s[i+1:], c); k >= 0 {
				strLen = k + 2
			}
		}
		switch {
		case strLen >= wordLen:
			toks = append(toks, token{kind: tString, text: escapes(s[i+1 : i+strLen-1]), line: startLine, col: startCol})
			adv(strLen)
			nameState = false
		case strLen < 0 && (c == '"' || c == '\''):
			// fetchmail would take the rest of the word, quote and all, as a
			// value; a quote nothing closes is far more likely a typo.
			return nil, &SyntaxError{File: name, Line: startLine, Col: startCol,
				Msg: "unterminated string (add the closing " + string(c) + ")"}
		default:
			w := s[i:word]
			adv(wordLen)
			switch {
			case nameState:
				toks = append(toks, token{kind: tString, text: escapes(w), line: startLine, col: startCol})
				nameState = false
			case noise[w]:
			default:
				toks = append(toks, token{kind: tWord, text: escapes(w), line: startLine, col: startCol})
				lw := strings.ToLower(w)
				switch {
				case lw == "auth" || lw == "authenticate" || lw == "preauth" || lw == "preauthenticate":
					authState = true
					continue
				case authState:
				case lw == "user" || lw == "username" || lw == "pass" || lw == "password" || lw == "is" || lw == "to":
					nameState = true
				}
				authState = false
			}
		}
	}
	toks = append(toks, token{kind: tEOF, line: line, col: col})
	return toks, nil
}

// escapes decodes backslash escapes as fetchmail's escapes() does (see lex).
func escapes(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		i++
		if i >= len(s) {
			break // a backslash at the end is dropped
		}
		e := s[i]
		val, n := 0, 0
		switch {
		case e == 'x' || e == 'X':
			i++
			for n < 2 && i < len(s) && isHex(s[i]) {
				d, _ := strconv.ParseUint(s[i:i+1], 16, 8)
				val = val*16 + int(d)
				i++
				n++
			}
		case e == '0':
			for n < 3 && i < len(s) && s[i] >= '0' && s[i] <= '7' {
				val = val*8 + int(s[i]-'0')
				i++
				n++
			}
		case e >= '1' && e <= '9':
			for n < 3 && i < len(s) && s[i] >= '0' && s[i] <= '9' {
				val = val*10 + int(s[i]-'0')
				i++
				n++
			}
		case e == '\n':
			i++ // backslash-newline joins lines
			continue
		default:
			val = int(map[byte]byte{'n': '\n', 't': '\t', 'b': '\b', 'r': '\r'}[e])
			if val == 0 {
				val = int(e)
			}
			i++
		}
		if byte(val) == 0 {
			break // a NUL ends a C string
		}
		b.WriteByte(byte(val))
	}
	return b.String()
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
