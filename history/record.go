package history

import (
	"log/slog"
	"sort"
	"time"

	"github.com/linkctl/linkctl/internal/linkstat"
	"github.com/linkctl/linkctl/pipeline"
)

// LinkBytes reads the interface's received and transmitted octets
// (IFLA_STATS64 through netlink). The counters are the kernel's since the
// interface was created: take the difference of two reads.
func LinkBytes(iface string) (rx, tx uint64, err error) { return linkstat.Read(iface) }

// Recorder writes a Record for every run it is told about: Begin before
// the run, End with its report. A nil Recorder records nothing.
type Recorder struct {
	Store *Store
	// LinkBytes reads the link's counters (default LinkBytes; tests).
	LinkBytes func(iface string) (rx, tx uint64, err error)
	Logger    *slog.Logger
}

// Run is a run in flight, as far as the history cares.
type Run struct {
	rec      *Recorder
	iface    string
	rx0, tx0 uint64
	counted  bool
}

// Begin reads the link's counters (when iface is named) at the start of
// a run.
func (r *Recorder) Begin(iface string) *Run {
	if r == nil {
		return nil
	}
	run := &Run{rec: r, iface: iface}
	if iface != "" {
		var err error
		run.rx0, run.tx0, err = r.linkBytes()(iface)
		run.counted = err == nil
	}
	return run
}

func (r *Recorder) linkBytes() func(string) (uint64, uint64, error) {
	if r.LinkBytes != nil {
		return r.LinkBytes
	}
	return LinkBytes
}

// End builds the run's Record from its report (and the link's counters
// now), appends it to the store and returns it. linkUpSince is when the
// link came up (zero: unknown). A failure to write is logged: a run's
// outcome never depends on its history.
func (run *Run) End(rep pipeline.RunReport, linkUpSince time.Time) Record {
	if run == nil {
		return FromReport(rep)
	}
	rec := FromReport(rep)
	if rec.Link == "" {
		rec.Link = run.iface
	}
	if !linkUpSince.IsZero() && !rec.End.IsZero() && rec.End.After(linkUpSince) {
		rec.LinkUpSeconds = rec.End.Sub(linkUpSince).Seconds()
	}
	if run.counted {
		if rx, tx, err := run.rec.linkBytes()(run.iface); err == nil && rx >= run.rx0 && tx >= run.tx0 {
			drx, dtx := rx-run.rx0, tx-run.tx0
			rec.LinkRX, rec.LinkTX = &drx, &dtx
		}
	}
	if run.rec.Store != nil {
		if err := run.rec.Store.Append(rec); err != nil && run.rec.Logger != nil {
			run.rec.Logger.Warn("cannot write the run history", "err", err)
		}
	}
	return rec
}

// FromReport is the Record of a run's report, without the link's
// counters.
func FromReport(rep pipeline.RunReport) Record {
	r := Record{Start: rep.Start, End: rep.End, Link: rep.Iface, Cause: rep.Cause,
		Result: string(rep.Result), Exit: rep.ExitCode()}
	if r.Start.IsZero() {
		r.Start = rep.End
	}
	if r.End.IsZero() {
		r.End = time.Now()
		if r.Start.IsZero() {
			r.Start = r.End
		}
	}
	r.Seconds = r.End.Sub(r.Start).Seconds()
	if rep.Err != nil {
		r.Error = rep.Err.Error()
	}
	for _, s := range rep.Stages {
		st := Stage{Name: s.Name, Result: string(s.Result), Seconds: s.End.Sub(s.Start).Seconds(),
			Messages: s.Counts["messages"], BytesDown: s.Counts["bytes_down"], BytesUp: s.Counts["bytes_up"], Error: s.Err}
		if st.Seconds < 0 {
			st.Seconds = 0
		}
		r.Stages = append(r.Stages, st)
		r.BytesDown += st.BytesDown
		r.BytesUp += st.BytesUp
		names := make([]string, 0, len(s.Accounts))
		for n := range s.Accounts {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			c := s.Accounts[n]
			r.Accounts = append(r.Accounts, Account{Name: n, Stage: s.Name, Messages: c["messages"], Bytes: c["bytes"],
				BytesDown: c["bytes_down"], BytesUp: c["bytes_up"]})
		}
	}
	return r
}
