package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/linkctl/linkctl/assemble"
	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/fetch"
	"github.com/linkctl/linkctl/history"
	"github.com/linkctl/linkctl/internal/errkind"
)

func init() {
	register(&command{
		Name:    "plan",
		Args:    "[--json] [--link IFACE] [ACCOUNT...]",
		Summary: "what a run would move now: mail waiting, outbound queue, link time, budgets",
		Help: `Connects to every mail account (or the ACCOUNTs named) and lists it, as a run
would, but fetches nothing and changes nothing on the servers (no DELE, STORE or
EXPUNGE; nothing is marked read) nor in the seen-store. For each account it prints
what a run would download (messages, bytes, the largest) and what it would leave:
already fetched, too big for limit, beyond fetchlimit. Then the outbound queue of
the local MTA (the flush stage's listing), the link time the fetch would take at
the link's rate measured by past runs (linkctl history), and what the link's byte
budgets would leave on the servers.
--link names the link to estimate for (default: the link of the last run).
--json prints one JSON object (no "rate": no history yet; no "budget": none applies).

Exit status: 0, or the first account's failure (2 network, 3 authentication, ...).`,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			asJSON := fs.Bool("json", false, "print JSON")
			link := fs.String("link", "", "the `interface` to estimate the link time and budgets for")
			return func(a *App, args []string) error {
				cfg, err := a.Config()
				if err != nil {
					return err
				}
				if _, err := knownAccounts(cfg, args); err != nil {
					return err
				}
				rep := a.assembler().Plan(a.Ctx, cfg, assemble.PlanOptions{Only: args, Link: *link, Budget: planBudget(a, cfg)})
				if *asJSON {
					enc := json.NewEncoder(a.Stdout)
					enc.SetIndent("", "  ")
					if err := enc.Encode(rep); err != nil {
						return err
					}
				} else {
					printPlan(a.Stdout, rep)
				}
				for _, ac := range rep.Accounts {
					if ac.Err != nil {
						return exitStatus(errkind.ExitCode(ac.Err))
					}
				}
				return nil
			}
		},
	})
}

// planBudget is what the link budgets leave for a run (nil: none configured).
func planBudget(a *App, cfg *config.Config) assemble.Budget {
	if b := a.assembler().Budgets(cfg); b != nil {
		return b
	}
	return nil
}

func printPlan(w io.Writer, p assemble.PlanReport) {
	hb := history.HumanBytes
	tally := func(t fetch.Tally) string {
		return fmt.Sprintf("%d message%s, %s", t.Messages, map[bool]string{true: "", false: "s"}[t.Messages == 1], hb(t.Bytes))
	}
	fmt.Fprintln(w, "plan (listed only: nothing fetched, nothing changed on the servers)")
	for _, a := range p.Accounts {
		fmt.Fprintf(w, "  %s (%s %s): ", a.Account, a.Proto, a.Server)
		if a.Err != nil {
			fmt.Fprintf(w, "error: %v\n", a.Err)
			continue
		}
		if a.Fetch.Messages == 0 {
			fmt.Fprint(w, "nothing new")
		} else {
			fmt.Fprintf(w, "%s to fetch", tally(a.Fetch))
			fmt.Fprintf(w, " (largest %s)", hb(a.Largest))
		}
		var more []string
		if a.Seen.Messages > 0 {
			s := fmt.Sprintf("%d already fetched", a.Seen.Messages)
			if a.Delete > 0 {
				s += fmt.Sprintf(" (%d to delete without download)", a.Delete)
			}
			more = append(more, s)
		}
		if a.TooBig.Messages > 0 {
			more = append(more, tally(a.TooBig)+" over limit, left on the server")
		}
		if a.FetchLimit.Messages > 0 {
			more = append(more, tally(a.FetchLimit)+" beyond fetchlimit, left for a later run")
		}
		if a.Poison.Messages > 0 {
			more = append(more, fmt.Sprintf("%d skipped after %d failed deliveries", a.Poison.Messages, fetch.MaxFailures))
		}
		if a.Skipped.Messages > 0 {
			more = append(more, fmt.Sprintf("%d read (unseen: true), skipped", a.Skipped.Messages))
		}
		for _, m := range more {
			fmt.Fprint(w, "; "+m)
		}
		fmt.Fprintf(w, " [%d on the server]\n", a.Listed.Messages)
	}
	fmt.Fprintf(w, "  fetch in all: %s\n", tally(p.Fetch))
	if q := p.Queue; q != nil {
		if q.Error != "" {
			fmt.Fprintf(w, "outbound queue (%s): cannot list: %s\n", q.MTA, q.Error)
		} else {
			fmt.Fprintf(w, "outbound queue (%s): %s", q.MTA, tally(fetch.Tally{Messages: q.Messages, Bytes: q.Bytes}))
			if q.Held > 0 {
				fmt.Fprintf(w, " (%d held, not sent)", q.Held)
			}
			fmt.Fprintln(w)
		}
	}
	link := p.Link
	if link == "" {
		link = "(any)"
	}
	if r := p.Rate; r != nil && p.Fetch.Bytes == 0 {
		fmt.Fprintf(w, "link %s: %s/s measured over %d run%s; nothing to fetch\n", link, hb(int64(r.BytesPerSecond)), r.Runs,
			map[bool]string{true: "", false: "s"}[r.Runs == 1])
	} else if r != nil {
		fmt.Fprintf(w, "link %s: %s/s measured over %d run%s: about %s for the fetch\n", link, hb(int64(r.BytesPerSecond)), r.Runs,
			map[bool]string{true: "", false: "s"}[r.Runs == 1], roundDur(time.Duration(r.FetchSeconds*float64(time.Second))))
	} else {
		fmt.Fprintf(w, "link %s: no history yet (no past run fetched enough to measure its rate)\n", link)
	}
	if b := p.Budget; b != nil {
		fmt.Fprintf(w, "budget: %s left: %s fit", hb(b.Remaining), tally(b.Fits))
		if b.Left.Messages > 0 {
			fmt.Fprintf(w, "; %s would be left on the servers (largest %s)", tally(b.Left), hb(b.LeftLargest))
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "budget: none configured for link %s\n", link)
	}
}
