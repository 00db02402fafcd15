package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/control"
	"github.com/linkctl/linkctl/daemon"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/linkwatch"
	"github.com/linkctl/linkctl/meter"
)

func init() {
	register(&command{
		Name:    "status",
		Args:    "[--json]",
		Summary: "link state, current run, last run per stage",
		Help: `Asks the daemon for the link state, the run in flight and its stages, whether a
follow-up run is queued, when the next interval run is due, and how each stage ended
last time. Without a daemon, shows the link state read from the kernel. With link policies in the config,
shows each one too (read from state_dir, daemon or not): metered or not and why (the config, or
NetworkManager for metered: auto), what it spent in its last run, today and this month, and its
budgets.
--json prints the same as one JSON object ("daemon": false when none runs).`,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			asJSON := fs.Bool("json", false, "print JSON")
			return func(a *App, args []string) error {
				if len(args) > 0 {
					return errkind.Permanent(errkind.Usage, "", "status takes no arguments")
				}
				return a.status(*asJSON)
			}
		},
	})
}

// statusOut is `linkctl status --json`.
type statusOut struct {
	Daemon bool `json:"daemon"`
	daemon.Status
	// Links are the link policies and their spending, read from
	// state_dir (with or without a daemon).
	Links []meter.PolicyStatus `json:"links,omitempty"`
}

func (a *App) status(asJSON bool) error {
	cfg, err := a.Config()
	if err != nil {
		// status needs the config only to find the socket and the
		// watched links: without one it asks the default socket and
		// judges the link by the default route, as the default config
		// would.
		if _, statErr := os.Stat(a.ConfigPath); !errors.Is(statErr, os.ErrNotExist) {
			return err
		}
		cfg = &config.Config{ControlSocket: config.DefaultControlSocket(), StateDir: config.DefaultStateDir(),
			Link: config.Link{Watch: []string{"default-route"}}}
	}
	var out statusOut
	resp, err := control.Do(a.Ctx, cfg.ControlSocket, control.Request{Op: control.OpStatus}, nil)
	switch {
	case errors.Is(err, control.ErrNoDaemon):
		st, rerr := linkwatch.NetlinkReader{}.Read()
		if rerr != nil {
			return rerr
		}
		up, reason := linkwatch.Up(st, cfg.Link.Watch)
		out.Link = daemon.LinkStatus{Up: up, Reason: reason}
	case err != nil:
		return err
	case resp.Exit != 0:
		return errkind.Permanent(errkind.Kind(resp.Exit), "daemon", "%s", resp.Error)
	default:
		if err := json.Unmarshal(resp.Status, &out.Status); err != nil {
			return errkind.WrapPermanent(errkind.Protocol, "read the daemon's status", err)
		}
		out.Daemon = true
	}
	if len(cfg.Link.Policies) > 0 {
		links, err := meter.New(a.assembler().MeterOptions(cfg)).Status(a.Ctx)
		if err != nil {
			return err
		}
		out.Links = links
	}
	if asJSON {
		enc := json.NewEncoder(a.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	printStatus(a.Stdout, out, cfg.ControlSocket)
	return nil
}

func printStatus(w io.Writer, s statusOut, socket string) {
	at := func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }
	if !s.Daemon {
		fmt.Fprintf(w, "daemon:  not running (no answer on %s)\n", socket)
	} else {
		state := "running"
		if s.Stopping {
			state = "stopping"
		}
		fmt.Fprintf(w, "daemon:  %s (pid %d)\n", state, s.PID)
	}
	link := "down"
	if s.Link.Up {
		link = "up"
	}
	fmt.Fprintf(w, "link:    %s", link)
	if s.Link.Reason != "" {
		fmt.Fprintf(w, " (%s)", s.Link.Reason)
	}
	if !s.Link.Since.IsZero() {
		fmt.Fprintf(w, " since %s", at(s.Link.Since))
	}
	fmt.Fprintln(w)
	printLinks(w, s.Links)
	if !s.Daemon {
		return
	}
	r := s.Runner
	switch {
	case r.Running:
		sort.Strings(r.Current)
		fmt.Fprintf(w, "run:     %d in progress (%s) since %s", r.Run, r.Cause, at(r.Since))
		if len(r.Current) > 0 {
			fmt.Fprintf(w, ", stage %v", r.Current)
		}
		fmt.Fprintln(w)
		if c := r.Cancelling; c != nil {
			fmt.Fprintf(w, "cancel:  %s, %s ago; waiting for stage %v\n", c.Cause, roundDur(time.Since(c.Since)), r.Current)
		}
	default:
		fmt.Fprintln(w, "run:     none in progress")
	}
	for _, st := range r.Stuck {
		fmt.Fprintf(w, "stuck:   stage %s of run %d has not returned since its cancel at %s (%s); it is not started again until it does: restart linkctl\n",
			st.Stage, st.Run, at(st.Cancelled), st.Cause)
	}
	if s.Pending {
		fmt.Fprintln(w, "next:    a follow-up run is queued")
	} else if !s.NextInterval.IsZero() {
		fmt.Fprintf(w, "next:    interval run at %s\n", at(s.NextInterval))
	}
	printDial(w, s.Dial)
	if lr := r.LastRun; lr != nil {
		fmt.Fprintf(w, "last:    run %d (%s): %s at %s, took %s\n", lr.ID, lr.Cause, lr.Result, at(lr.End), roundDur(lr.End.Sub(lr.Start)))
	}
	if len(r.Last) > 0 {
		names := make([]string, 0, len(r.Last))
		for n := range r.Last {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintln(w, "stages (last run of each):")
		for _, n := range names {
			st := r.Last[n]
			text := st.Summary
			if st.Err != "" {
				text = st.Err
			}
			fmt.Fprintf(w, "  %-10s %-9s %s  %s\n", n, st.Result, at(st.End), indent(text, 34))
		}
	}
	printWatchers(w, s.Watchers, s.IdlePending)
}

// printLinks shows each link policy: metered or not and why, what it
// spent this run, today and this month against its budgets.
func printLinks(w io.Writer, links []meter.PolicyStatus) {
	if len(links) == 0 {
		return
	}
	fmt.Fprintln(w, "links:")
	of := func(spent, budget int64) string {
		if budget <= 0 {
			return meter.FormatBytes(spent) + " (no budget)"
		}
		return fmt.Sprintf("%s of %s", meter.FormatBytes(spent), meter.FormatBytes(budget))
	}
	for _, l := range links {
		m := "unmetered"
		if l.IsMetered {
			m = "metered"
		}
		fmt.Fprintf(w, "  %-8s %s (metered: %s; %s)\n", l.Match, m, l.Metered, l.Why)
		run := "run"
		if l.InProgress {
			run = "run (in progress)"
		}
		fmt.Fprintf(w, "           %s %s · day %s · month %s", run, of(l.Spent.Run, l.Budget.Run), of(l.Spent.Day, l.Budget.Day), of(l.Spent.Month, l.Budget.Month))
		if l.MaxMessage > 0 {
			fmt.Fprintf(w, " · max_message %s", meter.FormatBytes(l.MaxMessage))
		}
		fmt.Fprintln(w)
		if r := l.Run; r != nil {
			fmt.Fprintf(w, "           last run %s: %s\n", r.Start.Local().Format("2006-01-02 15:04:05"), r.Summary())
		}
	}
}
