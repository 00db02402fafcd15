// Command linkctl does a host's mail chores while its intermittent uplink is
// up: flush the outbound queue, ETRN the relays, fetch the mailboxes, drop
// the link. This file only wires: the subcommands live one per file, the
// work in the packages they call.
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
