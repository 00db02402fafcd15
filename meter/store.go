package meter

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"

	"github.com/linkctl/linkctl/internal/durable"
	"github.com/linkctl/linkctl/internal/errkind"
)

// FileName is the spending store's file in state_dir.
const FileName = "meter.json"

// file is the spending store on disk: one Spending per policy, keyed by
// the policy's match (the glob as written in the config).
type file struct {
	Version  int                  `json:"version"`
	Policies map[string]*Spending `json:"policies"`
}

// Spending is what one link policy has spent: in the current day and
// month (calendar periods in local time) and in its last run, which is
// the current run while RunRecord.End is zero.
type Spending struct {
	Day        string     `json:"day"` // 2006-01-02, local time
	DayBytes   int64      `json:"day_bytes"`
	Month      string     `json:"month"` // 2006-01, local time
	MonthBytes int64      `json:"month_bytes"`
	Run        *RunRecord `json:"run,omitempty"`
}

// RunRecord is one run on a link of the policy, written while it runs
// (every checkpoint) and at its end.
type RunRecord struct {
	Iface   string    `json:"iface"`
	Cause   string    `json:"cause,omitempty"`
	Start   time.Time `json:"start"`
	Updated time.Time `json:"updated"`
	End     time.Time `json:"end,omitzero"` // zero: in progress, or the process died (Interrupted)
	// Interrupted is set when a later run found this one never ended
	// (a crash or kill): its bytes up to its last checkpoint were counted.
	Interrupted bool `json:"interrupted,omitempty"`
	Metered     bool `json:"metered"`
	// Why says where Metered came from: "config", or NetworkManager's
	// answer ("NetworkManager: metered (guessed)").
	Why string `json:"metered_why"`
	// Bytes is the run's spending as counted against the budgets: the
	// link's own counters (received + sent) when they could be read, else
	// linkctl's own counts, and never less than what was admitted.
	Bytes int64 `json:"bytes"`
	// LinkRx, LinkTx are the link counters' differences since the run
	// started; LinkOK says they were read at the start and at the last
	// checkpoint without a reset between.
	LinkRx uint64 `json:"link_rx"`
	LinkTx uint64 `json:"link_tx"`
	LinkOK bool   `json:"link_ok"`
	// Own are the bytes linkctl counted itself, per stage and per
	// account (fetch: the octets retrieved).
	Own      int64            `json:"own_bytes"`
	Stages   map[string]int64 `json:"stages,omitempty"`
	Accounts map[string]int64 `json:"accounts,omitempty"`
	// Admitted is the listed size of the messages the budget let through.
	Admitted int64 `json:"admitted"`
	// Held and HeldBytes are the messages the policy left on the server.
	Held      int   `json:"held,omitempty"`
	HeldBytes int64 `json:"held_bytes,omitempty"`
	// LinkStart are the counters read when the run began.
	LinkStart Counters `json:"link_start"`
}

func storePath(stateDir string) string { return filepath.Join(stateDir, FileName) }

// load reads the store; a missing file is an empty store.
func load(stateDir string) (*file, error) {
	f := &file{Version: 1, Policies: map[string]*Spending{}}
	b, err := os.ReadFile(storePath(stateDir))
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, errkind.WrapTemporary(errkind.Internal, "meter", fmt.Errorf("read the spending store: %w", err))
	}
	if err := json.Unmarshal(b, f); err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "meter", fmt.Errorf("%s is damaged (%v): move it away to start counting afresh", storePath(stateDir), err))
	}
	if f.Policies == nil {
		f.Policies = map[string]*Spending{}
	}
	return f, nil
}

// save writes the store atomically and durably: a temp file, fsync,
// rename, fsync of the directory (renameio); a crash leaves the old or
// the new figures, never a torn file.
func (f *file) save(stateDir string) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return errkind.WrapTemporary(errkind.Internal, "meter", err)
	}
	if err := renameio.WriteFile(storePath(stateDir), append(b, '\n'), 0o600); err != nil {
		return errkind.WrapTemporary(errkind.Internal, "meter", fmt.Errorf("write the spending store: %w", err))
	}
	return durable.SyncDir(stateDir)
}

// dayOf and monthOf name the calendar periods of t in local time (t's
// location: tests inject a clock in a zone of their own).
func dayOf(t time.Time) string   { return t.Format("2006-01-02") }
func monthOf(t time.Time) string { return t.Format("2006-01") }

// current is what s spent in the day and month of now (0 for a period
// that has passed), without starting new ones.
func (s *Spending) current(now time.Time) (day, month int64) {
	if s == nil {
		return 0, 0
	}
	if s.Day == dayOf(now) {
		day = s.DayBytes
	}
	if s.Month == monthOf(now) {
		month = s.MonthBytes
	}
	return day, month
}

// roll starts new periods for s if now is past the stored ones; it
// reports whether the day and the month rolled over.
func (s *Spending) roll(now time.Time) (day, month bool) {
	if d := dayOf(now); s.Day != d {
		s.Day, s.DayBytes, day = d, 0, true
	}
	if m := monthOf(now); s.Month != m {
		s.Month, s.MonthBytes, month = m, 0, true
	}
	return day, month
}
