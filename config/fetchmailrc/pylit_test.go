package fetchmailrc

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// pyLiteral parses the Python literal that `fetchmail --configdump` prints
// (dicts, lists, tuples, strings, integers, TRUE/FALSE/None and #
// comments) into map[string]any, []any, string, int and bool values; None
// is nil. Only what fetchmail prints is supported.
type pyLiteral struct {
	s string
	i int
}

// parseConfigdump finds "fetchmailrc = {...}" in the output and parses it.
func parseConfigdump(out string) (map[string]any, error) {
	k := strings.Index(out, "fetchmailrc = ")
	if k < 0 {
		return nil, fmt.Errorf("no fetchmailrc = in the output")
	}
	p := &pyLiteral{s: out, i: k + len("fetchmailrc = ")}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("fetchmailrc is a %T, not a dict", v)
	}
	return m, nil
}

func (p *pyLiteral) errf(format string, args ...any) error {
	line := strings.Count(p.s[:p.i], "\n") + 1
	return fmt.Errorf("configdump line %d: %s", line, fmt.Sprintf(format, args...))
}

// skip passes blanks and comments.
func (p *pyLiteral) skip() {
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			p.i++
		case c == '#':
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.i++
			}
		default:
			return
		}
	}
}

func (p *pyLiteral) value() (any, error) {
	p.skip()
	if p.i >= len(p.s) {
		return nil, p.errf("unexpected end")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		p.i++
		m := map[string]any{}
		for {
			p.skip()
			if p.i < len(p.s) && p.s[p.i] == '}' {
				p.i++
				return m, nil
			}
			k, err := p.value()
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, p.errf("dict key %v is not a string", k)
			}
			p.skip()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				return nil, p.errf("expected : after %q", ks)
			}
			p.i++
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			m[ks] = v
			if err := p.sep('}'); err != nil {
				return nil, err
			}
		}
	case c == '[' || c == '(':
		end := byte(']')
		if c == '(' {
			end = ')'
		}
		p.i++
		l := []any{}
		for {
			p.skip()
			if p.i < len(p.s) && p.s[p.i] == end {
				p.i++
				return l, nil
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			l = append(l, v)
			if err := p.sep(end); err != nil {
				return nil, err
			}
		}
	case c == '"' || c == '\'':
		return p.str(c)
	case c == '-' || (c >= '0' && c <= '9'):
		j := p.i + 1
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(p.s[p.i:j])
		if err != nil {
			return nil, p.errf("bad number %q", p.s[p.i:j])
		}
		p.i = j
		return n, nil
	}
	for _, w := range []struct {
		word string
		v    any
	}{{"TRUE", true}, {"FALSE", false}, {"None", nil}} {
		if strings.HasPrefix(p.s[p.i:], w.word) {
			p.i += len(w.word)
			return w.v, nil
		}
	}
	return nil, p.errf("unexpected %q", p.s[p.i:min(p.i+10, len(p.s))])
}

// sep reads the comma after an element, or sees the closing bracket.
func (p *pyLiteral) sep(end byte) error {
	p.skip()
	if p.i < len(p.s) && p.s[p.i] == ',' {
		p.i++
		return nil
	}
	if p.i < len(p.s) && p.s[p.i] == end {
		return nil
	}
	return p.errf("expected , or %c", end)
}

// str reads a quoted string with fetchmail's visbuf escapes: \\ \" \' \n
// \t \r \b \a \f \v, and \0xHH for other control bytes.
func (p *pyLiteral) str(q byte) (string, error) {
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == q:
			p.i++
			return b.String(), nil
		case c == '\\' && p.i+1 < len(p.s):
			e := p.s[p.i+1]
			p.i += 2
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'a':
				b.WriteByte('\a')
			case 'f':
				b.WriteByte('\f')
			case 'v':
				b.WriteByte('\v')
			case '0':
				if p.i < len(p.s) && p.s[p.i] == 'x' {
					j := p.i + 1
					for j < len(p.s) && j < p.i+3 && isHex(p.s[j]) {
						j++
					}
					v, _ := strconv.ParseUint(p.s[p.i+1:j], 16, 8)
					b.WriteByte(byte(v))
					p.i = j
				} else {
					b.WriteByte(0)
				}
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", p.errf("unterminated string")
}

func TestPyLiteral(t *testing.T) {
	m, err := parseConfigdump(`TRUE=1
fetchmailrc = {
    'poll_interval':300,
    "logfile":None, # a comment
    'servers': [
	{ "pollname":"a\"b\\c\0x04", 'users': [ { 'localnames':["x", ("r", "l"), '*'], 'keep':TRUE, }, ], }
    ]
}`)
	if err != nil {
		t.Fatal(err)
	}
	if m["poll_interval"] != 300 || m["logfile"] != nil {
		t.Errorf("%v", m)
	}
	s := m["servers"].([]any)[0].(map[string]any)
	if s["pollname"] != "a\"b\\c\x04" {
		t.Errorf("pollname %q", s["pollname"])
	}
	u := s["users"].([]any)[0].(map[string]any)
	if fmt.Sprint(u["localnames"]) != "[x [r l] *]" || u["keep"] != true {
		t.Errorf("%v", u)
	}
	for _, bad := range []string{"fetchmailrc = {", "fetchmailrc = {'a' 1}", "fetchmailrc = [1]", "nothing"} {
		if _, err := parseConfigdump(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
