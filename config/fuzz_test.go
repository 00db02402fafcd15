package config

import (
	"errors"
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
