// Package meter counts what the uplink costs: bytes per run, per day and
// per month (calendar periods in local time) for each link policy, and
// decides what a run on a metered link may still move.
//
// The flow of one run: [Meter.Begin] picks the policy whose match (an
// interface name or glob) fits the run's interface, finds out whether the
// link is metered (the config says so, or, with metered: auto,
// NetworkManager's Metered property of the device, read over D-Bus),
// reads the link's own counters (netlink statistics, received + sent,
// through internal/linkstat), and writes the run into the spending store
// (state_dir/meter.json) as in progress. While the run goes on, the fetch asks [Run.Admit] before each
// message, with its listed size, smallest first: a message is admitted
// only if it fits what every budget has left (remaining = the least over
// run, day and month of budget - spent), and only if it is not bigger than
// the policy's max_message; an admitted message counts as spent at once,
// so that a budget never cuts a message in the middle, and a refusal says
// which budget and how much it has left. Checkpoints (at most one a
// second on Admit, and every Options.Checkpoint from a ticker) read the
// counters again and write the figures, so that a crash loses at most a
// checkpoint's worth and a run in progress already counts what it spent.
// [Run.End] reads the counters a last time and closes the run.
//
// What counts: the link counters are what the provider bills, so a run's
// bytes are the counters' difference when they could be read at the start
// and at the end without a reset between (a PPP link redialled mid-run
// starts again from zero); otherwise linkctl's own counts (per stage and
// per account) stand in. Both are kept in the run record for status.
//
// Outside a run: [Meter.Left] is what the budgets of a link leave for the
// next run (the least of the run budget and what the day and the month
// have left); dial on demand asks it before it dials and `linkctl plan`
// to say what a run would leave on the servers. An unreadable store
// counts as nothing left, rather than spend past a budget nobody can
// check. [Meter.Status] is what `linkctl status` shows per policy.
//
// A store written by a process that died mid-run still has the run open:
// the next Begin marks it interrupted; its bytes were already in the day
// and month figures at its last checkpoint. One run at a time writes the
// store (the pipeline's run lock keeps runs apart, also across
// processes); `linkctl status` only reads it.
package meter

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"time"
)

// Metered says whether a policy's link is billed by volume.
type Metered int

// Metered values.
const (
	MeteredYes  Metered = iota // budgets and max_message apply
	MeteredNo                  // counted, nothing held back
	MeteredAuto                // as NetworkManager says; unmetered where it does not run
)

func (m Metered) String() string {
	switch m {
	case MeteredYes:
		return "true"
	case MeteredNo:
		return "false"
	}
	return "auto"
}

// Policy is the config of one link (or group of links).
type Policy struct {
	Match   string // interface name or glob (path.Match): wwan0, ppp*
	Metered Metered
	// Budgets in bytes (0: none): per run, per local calendar day and
	// month.
	Run, Day, Month int64
	// MaxMessage (bytes, 0 none): a bigger message is left on the server
	// on this link.
	MaxMessage int64
}

// Counters are an interface's byte counters.
type Counters struct {
	Rx uint64 `json:"rx"`
	Tx uint64 `json:"tx"`
}

// DefaultCheckpoint is how often a run's figures are written while it
// runs (besides after an admitted message, at most once a second).
const DefaultCheckpoint = 5 * time.Second

// Options configure a Meter.
type Options struct {
	StateDir string
	Policies []Policy // the first whose Match fits the interface applies
	Logger   *slog.Logger
	Now      func() time.Time // default time.Now (local time: the periods follow its location)
	// LinkCounters reads an interface's counters (default: netlink link
	// statistics of the process's namespace).
	LinkCounters func(iface string) (Counters, error)
	// NetworkManager answers metered: auto (default: NetworkManager on
	// the system D-Bus, see NM).
	NetworkManager func(ctx context.Context, iface string) (NMMetered, error)
	Checkpoint     time.Duration // default DefaultCheckpoint; <0 no ticker
}

// Meter keeps the spending of every policy in Options.StateDir.
type Meter struct {
	opts Options
	log  *slog.Logger
}

// New returns a Meter.
func New(opts Options) *Meter {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LinkCounters == nil {
		opts.LinkCounters = LinkCounters
	}
	if opts.NetworkManager == nil {
		opts.NetworkManager = NM{}.Metered
	}
	if opts.Checkpoint == 0 {
		opts.Checkpoint = DefaultCheckpoint
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Meter{opts: opts, log: log}
}

// PolicyFor is the first policy whose Match fits iface.
func PolicyFor(policies []Policy, iface string) (Policy, bool) {
	if iface == "" {
		return Policy{}, false
	}
	for _, p := range policies {
		if ok, _ := path.Match(p.Match, iface); ok {
			return p, true
		}
	}
	return Policy{}, false
}

// metered decides whether the link is metered and says why.
func (m *Meter) metered(ctx context.Context, p Policy, iface string) (bool, string) {
	switch p.Metered {
	case MeteredYes:
		return true, "config"
	case MeteredNo:
		return false, "config"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := m.opts.NetworkManager(ctx, iface)
	if err != nil {
		m.log.Debug("metered: auto, and NetworkManager cannot say: unmetered", "iface", iface, "err", err)
		return false, fmt.Sprintf("auto: no answer from NetworkManager (%v): unmetered", err)
	}
	return st.Metered(), "NetworkManager: " + st.String()
}

// fmtBytes is a byte count for people in the units budgets are written
// in (k, M, G are powers of 1024 in the config): 1.2 MiB, 512.0 KiB.
func fmtBytes(n int64) string {
	switch {
	case n < 0:
		return "-" + fmtBytes(-n)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// FormatBytes is fmtBytes for the CLI's status.
func FormatBytes(n int64) string { return fmtBytes(n) }
