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
			if s.Day == dayOf(now) {
				ps.Spent.Day = s.DayBytes
			}
			if s.Month == monthOf(now) {
				ps.Spent.Month = s.MonthBytes
			}
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
