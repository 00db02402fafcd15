package main

import (
	"flag"

	"github.com/linkctl/linkctl/internal/errkind"
)

// Placeholders for the commands of DESIGN.md whose work is not built yet:
// each says so in one plain line and exits 5, never pretending to succeed.
// A real command registered under the same name replaces its stub.
func init() {
	for _, c := range []struct{ name, args, summary string }{
		{"etrn", "[flags] HOST[:PORT] DOMAIN...", "send ETRN to a relay by hand, with a transcript (-v)"},
		{"fetch", "[ACCOUNT...]", "run the fetch stage alone"},
		{"flush", "[--no-wait]", "run the flush stage alone"},
		{"import-fetchmailrc", "[FILE]", "print the linkctl.yaml equivalent of a .fetchmailrc"},
		{"init", "[--non-interactive]", "write a config by answering a few questions"},
		{"demo", "[--fast]", "the whole pipeline against built-in loopback servers"},
	} {
		name := c.name
		register(&command{Name: name, Args: c.args, Summary: c.summary, stub: true,
			Setup: func(*flag.FlagSet) func(*App, []string) error {
				return func(*App, []string) error {
					return errkind.New(errkind.Usage, false, "", "%s is not built into this version of linkctl yet", name)
				}
			}})
	}
}
