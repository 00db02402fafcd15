package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/history"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/linkwatch"
)

func init() {
	register(&command{
		Name:    "history",
		Args:    "[--json] [-n N]",
		Summary: "the last runs: when, which link, why, link time, bytes per stage and account, result",
		Help: `Prints the record of the last N runs (default 20), oldest first: when each
started, on which link and why (the cause), how long it took (and how long the link
had been up), the bytes down and up each stage and each mail account moved as linkctl
counted them, the link's own counters over the run when the link was known, the
result and the exit status. Every run writes one: the daemon's, linkctl run and up,
and the one-stage commands (fetch, flush). The file (state_dir/history.jsonl) keeps
the last runs and stays under 1 MiB.
--json prints a JSON array of the records.`,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			asJSON := fs.Bool("json", false, "print JSON")
			n := fs.Int("n", 20, "show the last `N` runs (0: all kept)")
			return func(a *App, args []string) error {
				if len(args) > 0 {
					return errkind.Permanent(errkind.Usage, "", "history takes no arguments")
				}
				cfg, err := a.Config()
				if err != nil {
					return err
				}
				recs, err := history.Open(cfg.StateDir).Read(*n)
				if err != nil {
					return err
				}
				if *asJSON {
					if recs == nil {
						recs = []history.Record{}
					}
					enc := json.NewEncoder(a.Stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(recs)
				}
				printHistory(a.Stdout, recs)
				return nil
			}
		},
	})
}

func printHistory(w io.Writer, recs []history.Record) {
	if len(recs) == 0 {
		fmt.Fprintln(w, "no runs recorded yet")
		return
	}
	hb := history.HumanBytes
	secs := func(s float64) string { return roundDur(time.Duration(s * float64(time.Second))).String() }
	for _, r := range recs {
		link := r.Link
		if link == "" {
			link = "-"
		}
		fmt.Fprintf(w, "%s  %s  %s  %s", r.Start.Local().Format("2006-01-02 15:04:05"), link, r.Cause, secs(r.Seconds))
		if r.LinkUpSeconds > 0 {
			fmt.Fprintf(w, " (link up %s)", secs(r.LinkUpSeconds))
		}
		fmt.Fprintf(w, "  %s, exit %d\n", r.Result, r.Exit)
		fmt.Fprintf(w, "    bytes down %s, up %s", hb(r.BytesDown), hb(r.BytesUp))
		if r.LinkRX != nil && r.LinkTX != nil {
			fmt.Fprintf(w, "; link counters rx %s, tx %s", hb(int64(*r.LinkRX)), hb(int64(*r.LinkTX)))
		}
		fmt.Fprintln(w)
		for _, s := range r.Stages {
			fmt.Fprintf(w, "    %-8s %-9s %6s", s.Name, s.Result, secs(s.Seconds))
			if s.BytesDown > 0 || s.BytesUp > 0 {
				fmt.Fprintf(w, "  %d msg, down %s, up %s", s.Messages, hb(s.BytesDown), hb(s.BytesUp))
			}
			if s.Error != "" {
				fmt.Fprintf(w, "  %s", indent(s.Error, 30))
			}
			fmt.Fprintln(w)
			for _, a := range r.Accounts {
				if a.Stage == s.Name {
					fmt.Fprintf(w, "      %s: %d msg, down %s, up %s\n", a.Name, a.Messages, hb(a.BytesDown), hb(a.BytesUp))
				}
			}
		}
	}
}

// upLink is the watched link usable now ("" when none, or the kernel
// cannot be asked): what an in-process run without an interface of its
// own records as its link.
func upLink(cfg *config.Config) string {
	st, err := linkwatch.NetlinkReader{}.Read()
	if err != nil {
		return ""
	}
	return linkwatch.UpIface(st, cfg.Link.Watch)
}
