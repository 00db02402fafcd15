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

// lex splits data into tokens. It never fails on odd bytes (they become part
// of a word); it fails only on an unterminated string.
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
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\n' || c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' ||
			c == ':' || c == ';' || c == ',':
			adv(1)
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				adv(1)
			}
		case c == '=':
			toks = append(toks, token{kind: tMap, text: "=", line: line, col: col})
			adv(1)
		case c == '"' || c == '\'':
			startLine, startCol := line, col
			quote := c
			adv(1)
			var b strings.Builder
			closed := false
			for i < len(s) {
				ch := s[i]
				if ch == quote {
					adv(1)
					closed = true
					break
				}
				if ch == '\\' && i+1 < len(s) {
					n, r := unescape(s[i+1:])
					b.WriteString(r)
					adv(1 + n)
					continue
				}
				b.WriteByte(ch)
				adv(1)
			}
			if !closed {
				return nil, &SyntaxError{File: name, Line: startLine, Col: startCol,
					Msg: "unterminated string (add the closing " + string(quote) + ")"}
			}
			toks = append(toks, token{kind: tString, text: b.String(), line: startLine, col: startCol})
		default:
			startLine, startCol := line, col
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n\f\v:;,=#\"'", rune(s[j])) {
				j++
			}
			w := s[i:j]
			adv(j - i)
			if noise[strings.ToLower(w)] {
				continue
			}
			toks = append(toks, token{kind: tWord, text: w, line: startLine, col: startCol})
		}
	}
	toks = append(toks, token{kind: tEOF, line: line, col: col})
	return toks, nil
}

// unescape decodes the escape after a backslash (s starts just after it), as
// fetchmail's escapes() does: \n \t \r \b \f \a, \xHH, octal \NNN, and any
// other character standing for itself. It returns the bytes consumed.
func unescape(s string) (int, string) {
	switch c := s[0]; c {
	case 'n':
		return 1, "\n"
	case 't':
		return 1, "\t"
	case 'r':
		return 1, "\r"
	case 'b':
		return 1, "\b"
	case 'f':
		return 1, "\f"
	case 'a':
		return 1, "\a"
	case 'x', 'X':
		n := 0
		for n < 2 && 1+n < len(s) && isHex(s[1+n]) {
			n++
		}
		if n == 0 {
			return 1, string([]byte{c})
		}
		v, _ := strconv.ParseUint(s[1:1+n], 16, 8)
		return 1 + n, string([]byte{byte(v)})
	case '0', '1', '2', '3', '4', '5', '6', '7':
		n := 0
		for n < 3 && n < len(s) && s[n] >= '0' && s[n] <= '7' {
			n++
		}
		v, _ := strconv.ParseUint(s[:n], 8, 16)
		return n, string([]byte{byte(v)})
	default:
		return 1, string([]byte{c})
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
