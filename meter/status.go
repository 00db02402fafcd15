package meter

import (
	"context"
	"net"
	"path"
	"strings"
)

// PolicyStatus is one link policy for `linkctl status`: whether its link
// is metered and why, its budgets, and what it spent in its last (or
// current) run, today and this month.
type PolicyStatus struct {
	Match      string `json:"match"`
	Metered    string `json:"metered"` // as configured: true, false, auto
	IsMetered  bool   `json:"is_metered"`
	Why        string `json:"metered_why"`
	MaxMessage int64  `json:"max_message,omitempty"`
	Budget     Bytes  `json:"budget"` // 0: none
	Spent      Bytes  `json:"spent"`
	// Run is the last run on the link (InProgress: still running, or the
	// process running it died).
	Run        *RunRecord `json:"last_run,omitempty"`
	InProgress bool       `json:"in_progress,omitempty"`
}

// Bytes are figures per period.
type Bytes struct {
	Run   int64 `json:"run"`
	Day   int64 `json:"day"`
	Month int64 `json:"month"`
}

// Status reads the spending store (no daemon needed) and says, per
// policy, what was spent in the current periods (a period that has
// passed shows 0). For metered: auto it asks NetworkManager now, about
// the interface of the last run or, failing that, the first interface
// of the host the policy matches.
func (m *Meter) Status(ctx context.Context) ([]PolicyStatus, error) {
	f, err := load(m.opts.StateDir)
	if err != nil {
		return nil, err
	}
	now := m.opts.Now()
	var out []PolicyStatus
	for _, p := range m.opts.Policies {
		ps := PolicyStatus{Match: p.Match, Metered: p.Metered.String(), MaxMessage: p.MaxMessage,
			Budget: Bytes{Run: p.Run, Day: p.Day, Month: p.Month}}
		s := f.Policies[p.Match]
		if s != nil {
			ps.Spent.Day, ps.Spent.Month = s.current(now)
			if s.Run != nil {
				r := *s.Run
				ps.Run, ps.Spent.Run, ps.InProgress = &r, r.Bytes, r.End.IsZero()
			}
		}
		iface := ""
		if ps.Run != nil {
			iface = ps.Run.Iface
		} else {
			iface = firstMatch(p.Match)
		}
		switch {
		case p.Metered != MeteredAuto:
			ps.IsMetered, ps.Why = m.metered(ctx, p, iface)
		case iface == "":
			ps.Why = "auto: no interface matches yet"
		default:
			ps.IsMetered, ps.Why = m.metered(ctx, p, iface)
			ps.Why = iface + ": " + ps.Why
		}
		out = append(out, ps)
	}
	return out, nil
}

// firstMatch is the first interface of the host that glob matches, or the
// glob itself when it is a plain name.
func firstMatch(glob string) string {
	if !strings.ContainsAny(glob, "*?[") {
		return glob
	}
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if ok, _ := path.Match(glob, i.Name); ok {
			return i.Name
		}
	}
	return ""
}

// Left is what the budgets of iface's link leave for the next run: the
// least of its run budget and what the day's and the month's have left
// (never below 0), and which of them that is. ok is false when iface
// matches no policy, its link is not metered now, or it has no budget:
// then nothing limits a run. dial asks it before it dials; plan, to say
// what a run would leave behind.
func (m *Meter) Left(ctx context.Context, iface string) (left int64, which string, ok bool) {
	p, found := PolicyFor(m.opts.Policies, iface)
	if !found {
		return 0, "", false
	}
	if metered, _ := m.metered(ctx, p, iface); !metered {
		return 0, "", false
	}
	f, err := load(m.opts.StateDir)
	if err != nil {
		// An unreadable store: assume nothing is left rather than spend
		// past a budget nobody can check.
		return 0, "spending record (" + err.Error() + ")", p.Run > 0 || p.Day > 0 || p.Month > 0
	}
	day, month := f.Policies[p.Match].current(m.opts.Now())
	which, left, ok = p.tightest(0, day, month)
	return max(left, 0), which, ok
}
