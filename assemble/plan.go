package assemble

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/fetch"
	"github.com/linkctl/linkctl/flush"
	"github.com/linkctl/linkctl/history"
)

// Budget is what the link's byte budgets still allow: the bytes left
// before the tightest of them (per run, day, month) is spent; ok is false
// when no budget applies to iface. The budget policy implements it; plan
// only asks.
type Budget interface {
	Remaining(iface string) (bytes int64, ok bool)
}

// PlanReport is what `linkctl plan` prints: what a run would move now.
type PlanReport struct {
	Link     string              `json:"link,omitempty"`
	Accounts []fetch.AccountPlan `json:"accounts"`
	// Fetch is the total over the accounts that answered.
	Fetch fetch.Tally `json:"fetch"`
	// Queue is the local MTA's outbound queue (nil: no flush stage).
	Queue *QueuePlan `json:"queue,omitempty"`
	// Rate is the link's measured download rate (nil: no history yet).
	Rate *RatePlan `json:"rate,omitempty"`
	// Budget is what the budgets would let through (nil: none applies).
	Budget *BudgetPlan `json:"budget,omitempty"`
}

// QueuePlan is the outbound queue as the flush driver's listing shows it.
type QueuePlan struct {
	MTA      string `json:"mta"`
	Messages int    `json:"messages"` // not held: what a flush sends
	Bytes    int64  `json:"bytes"`
	Held     int    `json:"held,omitempty"`
	Error    string `json:"error,omitempty"`
}

// RatePlan is the estimate of the fetch's link time.
type RatePlan struct {
	BytesPerSecond float64 `json:"bytes_per_second"`
	Runs           int     `json:"runs"` // past runs measured
	// FetchSeconds is the fetch's bytes at that rate.
	FetchSeconds float64 `json:"fetch_seconds"`
}

// BudgetPlan is what the budgets would leave behind. The run is assumed
// to take the smallest messages first until the next one would not fit
// (a budget never cuts a message).
type BudgetPlan struct {
	Remaining int64       `json:"remaining"`
	Fits      fetch.Tally `json:"fits"`
	Left      fetch.Tally `json:"left"`
	// LeftLargest is the biggest message left behind (its size).
	LeftLargest int64 `json:"left_largest,omitempty"`
}

// PlanOptions say what to plan.
type PlanOptions struct {
	Only []string // accounts (all when empty)
	// Link is the link to estimate for; "" picks the link of the last run
	// in the history, else the first watched interface that is a name.
	Link   string
	Budget Budget // nil: no budget configured
}

// Plan lists every mailbox (fetch.Plan: nothing fetched, nothing changed)
// and the outbound queue, and estimates the link time and what budgets
// would leave behind.
func (as *Assembler) Plan(ctx context.Context, cfg *config.Config, o PlanOptions) PlanReport {
	rep := PlanReport{}
	opts, done := as.FetchOptions(cfg, o.Only)
	defer done()
	rep.Accounts = fetch.Plan(ctx, opts)
	var all []fetch.Message
	for _, a := range rep.Accounts {
		rep.Fetch.Messages += a.Fetch.Messages
		rep.Fetch.Bytes += a.Fetch.Bytes
		all = append(all, a.Messages...)
	}
	if slices.Contains(StageNames(cfg.Pipeline), config.StageFlush) {
		q := as.Queue(ctx, cfg)
		rep.Queue = &q
	}
	recs, _ := history.Open(cfg.StateDir).Read(0)
	rep.Link = o.Link
	if rep.Link == "" {
		rep.Link = defaultLink(cfg, recs)
	}
	if bps, runs, ok := history.Rate(recs, rep.Link); ok {
		rep.Rate = &RatePlan{BytesPerSecond: bps, Runs: runs, FetchSeconds: float64(rep.Fetch.Bytes) / bps}
	}
	if o.Budget != nil {
		if rem, ok := o.Budget.Remaining(rep.Link); ok {
			rep.Budget = budgetPlan(all, rem)
		}
	}
	return rep
}

func budgetPlan(msgs []fetch.Message, remaining int64) *BudgetPlan {
	b := &BudgetPlan{Remaining: remaining}
	sorted := slices.Clone(msgs)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Size < sorted[j].Size })
	var used int64
	full := false
	for _, m := range sorted {
		if !full && used+m.Size <= remaining {
			used += m.Size
			b.Fits.Messages++
			b.Fits.Bytes += m.Size
			continue
		}
		full = true
		b.Left.Messages++
		b.Left.Bytes += m.Size
		b.LeftLargest = max(b.LeftLargest, m.Size)
	}
	return b
}

// defaultLink is the link of the last run recorded, else the first
// watched interface given by name (not a glob, not default-route).
func defaultLink(cfg *config.Config, recs []history.Record) string {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Link != "" {
			return recs[i].Link
		}
	}
	for _, w := range cfg.Link.Watch {
		if w != "default-route" && !strings.ContainsAny(w, "*?[") {
			return w
		}
	}
	return ""
}

// Queue lists the local MTA's outbound queue with the flush stage's
// driver (the same listing the flush stage waits on). It changes nothing.
func (as *Assembler) Queue(ctx context.Context, cfg *config.Config) QueuePlan {
	fo := as.FlushOptions(cfg)
	d, err := flush.DriverOf(fo)
	if err != nil {
		return QueuePlan{MTA: fo.MTA, Error: err.Error()}
	}
	q := QueuePlan{MTA: d.Name}
	fo.Driver = &d
	msgs, err := flush.List(ctx, fo)
	if err != nil {
		q.Error = err.Error()
		return q
	}
	for _, m := range msgs {
		if m.Held {
			q.Held++
			continue
		}
		q.Messages++
		q.Bytes += m.Size
	}
	return q
}

// Recorder is the run history of cfg's state_dir, for the daemon and the
// in-process runs alike.
func (as *Assembler) Recorder(cfg *config.Config) *history.Recorder {
	return &history.Recorder{Store: history.Open(cfg.StateDir), Logger: as.Logger}
}
