package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/linkctl/linkctl/internal/demo"
	"github.com/linkctl/linkctl/internal/errkind"
)

func init() {
	register(&command{
		Name:    "demo",
		Args:    "[--fast] [--clean]",
		Summary: "the whole pipeline against built-in loopback servers: no setup needed",
		Help: `Starts, inside this process and on 127.0.0.1 only, an ISP's mail relay holding mail for
demo.example (it answers ETRN), a POP3 and an IMAP server with a few messages, and a
local SMTP server standing in for your MTA, which writes into a Maildir. A simulated
modem (56k down, 33.6k up) sits between linkctl and the remote servers. Then it runs
the pipeline a real config would: flush the local queue to the relay while asking it
with ETRN for held mail, fetch both mailboxes, and hang up; with the same progress and
summary as linkctl run, and says where the delivered messages are.
--fast skips the modem simulation. Nothing leaves this machine; no config is read.`,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			fast := fs.Bool("fast", false, "no modem simulation: full loopback speed")
			clean := fs.Bool("clean", false, "remove the demo directory (and the delivered mail) at the end")
			return func(a *App, args []string) error {
				if len(args) > 0 {
					return errkind.Permanent(errkind.Usage, "", "demo takes no arguments")
				}
				return a.demo(*fast, *clean)
			}
		},
	})
	// The helper the demo's own config runs as its flush command (the
	// demo's queue runner) and drop command (the modem's hangup).
	register(&command{
		Name:    "demo-helper",
		Summary: "internal: the queue runner and hangup of linkctl demo",
		Hidden:  true,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			sendQueue := fs.String("send-queue", "", "send the demo queue in `dir`")
			relay := fs.String("relay", "", "to the demo relay at `addr`")
			listQueue := fs.String("list-queue", "", "list the demo queue in `dir` as postqueue -j does")
			hangup := fs.Bool("hangup", false, "hang up the demo modem")
			return func(a *App, args []string) error {
				switch {
				case *sendQueue != "":
					n, err := demo.SendQueue(a.Ctx, *sendQueue, *relay)
					fmt.Fprintf(a.Stdout, "queue run: %d message(s) sent to the relay\n", n)
					return err
				case *listQueue != "":
					return demo.ListQueue(*listQueue, a.Stdout)
				case *hangup:
					fmt.Fprintln(a.Stdout, "ATH0: NO CARRIER (the demo's modem hung up)")
					return nil
				}
				return errkind.Permanent(errkind.Usage, "", "demo-helper is run by linkctl demo's own config")
			}
		},
	})
}

func (a *App) demo(fast, clean bool) error {
	self, err := os.Executable()
	if err != nil {
		return errkind.WrapPermanent(errkind.Internal, "cannot find the linkctl binary for the demo's helpers", err)
	}
	env, err := demo.Start(a.Ctx, demo.Options{Fast: fast, Keep: !clean, Self: []string{self, "demo-helper"}, Log: a.Log})
	if err != nil {
		return err
	}
	defer env.Close()

	relay, pop, imapN, queue := env.Left()
	fmt.Fprintf(a.Stderr, "linkctl demo: every server runs on 127.0.0.1 inside this process.\n")
	fmt.Fprintf(a.Stderr, "  relay (ETRN, smarthost) %s  holds %d messages for %s\n", env.RelayAddr, relay, demo.Domain)
	fmt.Fprintf(a.Stderr, "  POP3 %s  %d messages   IMAP %s  %d messages   (user %s, password %s)\n",
		env.POP3Addr, pop, env.IMAPAddr, imapN, demo.User, demo.Password)
	fmt.Fprintf(a.Stderr, "  local MTA %s -> %s\n", env.SinkAddr, env.Maildir)
	fmt.Fprintf(a.Stderr, "  local outbound queue: %d messages\n", queue)
	if env.Modem != "" {
		fmt.Fprintf(a.Stderr, "  modem: %s (--fast to skip)\n", env.Modem)
	}
	fmt.Fprintf(a.Stderr, "  config: %s\n\n", env.ConfigFile)

	// The same path as `linkctl run`: load the file, build the stages, run.
	a.ConfigPath = env.ConfigFile
	a.cfg = nil
	start := time.Now()
	runErr := a.RunPipeline(RunOptions{Cause: "linkctl demo", Iface: "lo"})
	took := time.Since(start)
	var st exitStatus
	if runErr != nil && !errors.As(runErr, &st) {
		return runErr // the pipeline could not be set up: nothing ran
	}

	delivered := env.Delivered()
	relay, pop, imapN, queue = env.Left()
	fmt.Fprintf(a.Stdout, "\n%d messages delivered into the Maildir %s\n", len(delivered), env.Maildir)
	for _, p := range delivered {
		if s := subject(p); s != "" {
			fmt.Fprintf(a.Stdout, "  %s  %s\n", filepath.Base(p), s)
		}
	}
	fmt.Fprintf(a.Stdout, "%d messages sent from the local queue; left behind: relay %d, POP3 %d, IMAP %d, queue %d\n",
		env.Sent(), relay, pop, imapN, queue)
	if line := env.Line(); line.Down > 0 {
		// What pipelining buys: how long the line was busy against the time
		// the bytes alone need. A lock-step client adds a round trip per
		// command to the busy time without moving a byte.
		fmt.Fprintf(a.Stdout, "modem: %.1f kB down, %.1f kB up; the bytes alone need %.1fs of line time, the line was busy %.1fs, the run took %.1fs\n",
			float64(line.Down)/1000, float64(line.Up)/1000, line.Floor.Seconds(), line.Busy.Seconds(), took.Seconds())
	}
	if clean {
		fmt.Fprintln(a.Stdout, "the demo directory is removed (--clean)")
	} else {
		fmt.Fprintf(a.Stdout, "read them with: mutt -f %s   (remove with: rm -r %s)\n", env.Maildir, env.Dir)
	}
	return runErr
}

// subject reads a delivered message's Subject line for the listing.
func subject(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	head, _, _ := strings.Cut(string(b), "\n\n")
	for _, l := range strings.Split(head, "\n") {
		if v, ok := strings.CutPrefix(l, "Subject: "); ok {
			return v
		}
	}
	return ""
}
