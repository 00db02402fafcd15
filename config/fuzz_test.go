package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// FuzzParse: any input gives a Config or Errors, never a panic or a hang,
// and every problem names the file.
func FuzzParse(f *testing.F) {
	f.Add(Minimal)
	f.Add(Reference)
	f.Add([]byte(inlinePW))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("pipeline: [[flush, {exec: [x]}], {stage: fetch}]\nflush: {<<: [*x]}\n"))
	f.Add([]byte("fetch: {accounts: [{<<: {proto: imap}, server: \"[::1]:1\"}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if err == nil {
			if c == nil {
				t.Fatal("nil config without error")
			}
			if _, err := c.Redacted(); err != nil {
				t.Fatalf("Redacted: %v", err)
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("not Errors: %v", err)
		}
		for _, p := range errs {
			if !strings.HasPrefix(p.Error(), "f.yaml") {
				t.Fatalf("problem without file: %q", p.Error())
			}
		}
	})
}

// A few lines of aliases can stand for billions of values; the loader
// stops early with one problem instead of walking them all.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-0: &m0 {proto: pop3, user: u, server: s, password_file: /p, to: me}\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "x-%d: &m%d {<<: [", i, i)
		for j := 0; j < 10; j++ {
			fmt.Fprintf(&b, "*m%d, ", i-1)
		}
		b.WriteString("]}\n")
	}
	b.WriteString("fetch:\n  accounts: [{<<: *m9}]\n")
	_, err := Parse("bomb.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "too many values once YAML aliases are expanded") {
		t.Fatalf("got %.500v", err)
	}
}
