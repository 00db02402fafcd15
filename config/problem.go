package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a config file, printed as
//
//	FILE:LINE: path.to.key: what is wrong (what was expected)
//
// Line is 0 when the position is unknown; Path is empty for problems with
// the file as a whole (YAML syntax); Expected may be empty.
type Problem struct {
	File     string
	Line     int
	Path     string
	Msg      string
	Expected string
}

func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	if p.Expected != "" {
		b.WriteString(" (")
		b.WriteString(p.Expected)
		b.WriteByte(')')
	}
	return b.String()
}

// Errors is every problem found in one config file, in file order. Load
// and Parse return it wrapped as an errkind.Usage error (exit 5); get it
// back with errors.As.
type Errors []*Problem

func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, p := range e {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As reach each *Problem.
func (e Errors) Unwrap() []error {
	out := make([]error, len(e))
	for i, p := range e {
		out[i] = p
	}
	return out
}

// sorted orders problems by line, keeping the order of discovery within a
// line, so that the report reads top to bottom like the file.
func (e Errors) sorted() Errors {
	sort.SliceStable(e, func(i, j int) bool { return e[i].Line < e[j].Line })
	return e
}
