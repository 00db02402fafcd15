// Command linkctl does a host's mail chores while its intermittent uplink is
// up: flush the outbound queue, ETRN the relays, fetch the mailboxes, drop
// the link; around that it watches the link (daemon), dials it on demand
// (dial), says what a run would move (plan) and what past runs moved
// (history), pins servers (pin) and imports a .fetchmailrc. This file only
// wires: the subcommands live one per file (how to add one: doc.go), the
// work in the packages they call (built from the config by package
// assemble).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
