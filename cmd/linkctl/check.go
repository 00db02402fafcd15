package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
)

func init() {
	register(&command{
		Name:    "check",
		Args:    "[--offline] [--quiet]",
		Summary: "validate the config (every problem with FILE:LINE), its permissions, and server names",
		Help: `Loads and validates the config, reporting every problem at once as FILE:LINE: key: what.
Checks that a config holding a password is not readable by others, resolves every server
name (skip with --offline, e.g. while the link is down), and prints the effective config
with defaults filled in and secrets as ***.
Exit 0 when all is well, 5 on config errors, 6 on permissions, 11 when a name does not resolve.`,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			offline := fs.Bool("offline", false, "do not resolve server names")
			quiet := fs.Bool("quiet", false, "do not print the effective config")
			return func(a *App, args []string) error {
				if len(args) > 0 {
					return errkind.Permanent(errkind.Usage, "", "check takes no arguments (name the file with -c)")
				}
				return a.check(*offline, *quiet)
			}
		},
	})
}

func (a *App) check(offline, quiet bool) error {
	cfg, err := a.Config()
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(a.Stderr, "warning: "+w)
	}
	if err := cfg.CheckSecretFiles(); err != nil {
		return err
	}
	if !quiet {
		out, err := cfg.Redacted()
		if err != nil {
			return errkind.WrapPermanent(errkind.Internal, "cannot print the effective config", err)
		}
		fmt.Fprintf(a.Stdout, "# effective config of %s (defaults filled in, secrets as ***)\n%s", cfg.File, out)
	}
	var firstErr error
	if !offline {
		for _, host := range config.Hosts(cfg) {
			if netconn.IsLoopback(host) {
				continue
			}
			ctx, cancel := context.WithTimeout(a.Ctx, 10*time.Second)
			addrs, err := net.DefaultResolver.LookupHost(ctx, host)
			cancel()
			if err != nil {
				fmt.Fprintf(a.Stderr, "%s: cannot resolve %s: %v\n", cfg.File, host, err)
				if firstErr == nil {
					firstErr = errkind.WrapTemporary(errkind.DNS, "", fmt.Errorf("cannot resolve %s", host))
				}
				continue
			}
			a.Log.Debug("resolved", "host", host, "addrs", addrs)
		}
	}
	if firstErr != nil {
		return exitStatus(errkind.ExitCode(firstErr))
	}
	fmt.Fprintf(a.Stderr, "%s: ok\n", cfg.File)
	return nil
}
