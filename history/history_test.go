package history

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/pipeline"
)

func rec(i int) Record {
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
	return Record{Start: t, End: t.Add(3 * time.Second), Seconds: 3, Link: "ppp0", Cause: "up edge",
		Result: "ok", BytesDown: int64(i), Stages: []Stage{{Name: "fetch", Result: "ok", Seconds: 2, BytesDown: int64(i)}},
		Accounts: []Account{{Name: "isp", Stage: "fetch", Messages: 1, Bytes: int64(i), BytesDown: int64(i)}}}
}

// 2000 runs: the file never passes its bound and the last records are
// the newest ones, in order.
func TestBounded(t *testing.T) {
	s := Open(t.TempDir())
	maxSize := int64(0)
	for i := range 2000 {
		if err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		maxSize = max(maxSize, st.Size())
	}
	recs, err := s.Read(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < DefaultMaxRecords || len(recs) > 2*DefaultMaxRecords+1 {
		t.Fatalf("%d records kept, want %d..%d", len(recs), DefaultMaxRecords, 2*DefaultMaxRecords+1)
	}
	if recs[len(recs)-1].BytesDown != 1999 {
		t.Fatalf("last record is run %d, want 1999", recs[len(recs)-1].BytesDown)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].BytesDown != recs[i-1].BytesDown+1 {
			t.Fatalf("records out of order or missing at %d: %d after %d", i, recs[i].BytesDown, recs[i-1].BytesDown)
		}
	}
	last, _ := s.Read(DefaultMaxRecords)
	if len(last) != DefaultMaxRecords || last[0].BytesDown != 2000-DefaultMaxRecords {
		t.Fatalf("Read(%d): %d records from run %d", DefaultMaxRecords, len(last), last[0].BytesDown)
	}
	t.Logf("largest file: %d bytes for %d-byte records; %d records at the end", maxSize, len(mustJSON(t, rec(1999))), len(recs))
	if maxSize > DefaultMaxBytes {
		t.Fatalf("file reached %d bytes, bound %d", maxSize, DefaultMaxBytes)
	}
}

// The byte bound holds even for records that would fit the count many
// times over.
func TestBoundedBytes(t *testing.T) {
	s := &Store{Path: filepath.Join(t.TempDir(), FileName), MaxRecords: 1000, MaxBytes: 20 << 10}
	for i := range 2000 {
		r := rec(i)
		r.Error = strings.Repeat("x", 300)
		if err := s.Append(r); err != nil {
			t.Fatal(err)
		}
		if st, _ := os.Stat(s.Path); st.Size() > 20<<10 {
			t.Fatalf("after %d appends the file is %d bytes, bound %d", i+1, st.Size(), 20<<10)
		}
	}
	recs, _ := s.Read(0)
	if len(recs) == 0 || recs[len(recs)-1].BytesDown != 1999 {
		t.Fatalf("newest record lost: %d records", len(recs))
	}
}

// A crash mid-append leaves a torn last line: it is skipped on read, and
// the next record starts on a line of its own.
func TestTornLastLine(t *testing.T) {
	s := Open(t.TempDir())
	for i := range 3 {
		if err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	whole := mustJSON(t, rec(3))
	f, _ := os.OpenFile(s.Path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(whole[:len(whole)/2])
	f.Close()
	recs, err := s.Read(0)
	if err != nil || len(recs) != 3 {
		t.Fatalf("read after a torn line: %d records, %v; want the 3 whole ones", len(recs), err)
	}
	if err := s.Append(rec(4)); err != nil {
		t.Fatal(err)
	}
	recs, _ = s.Read(0)
	got := []int64{}
	for _, r := range recs {
		got = append(got, r.BytesDown)
	}
	if !slices.Equal(got, []int64{0, 1, 2, 4}) {
		t.Fatalf("records after the torn line and a new append: %v, want [0 1 2 4]", got)
	}
	// Garbage in the middle and an overlong line are skipped too.
	os.WriteFile(s.Path, append(append(mustJSON(t, rec(7)), []byte("\n{not json\n"+strings.Repeat("y", 100<<10)+"\n")...), append(mustJSON(t, rec(8)), '\n')...), 0o600)
	recs, _ = s.Read(0)
	if len(recs) != 2 || recs[1].BytesDown != 8 {
		t.Fatalf("damaged middle: got %d records", len(recs))
	}
}

func mustJSON(t *testing.T, r Record) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The record of a report: per stage and per account bytes, the link's
// counters over the run, the exit status; its JSON keys are the
// documented schema.
func TestRecorder(t *testing.T) {
	dir := t.TempDir()
	counters := map[string][2]uint64{"ppp0": {1000, 500}}
	r := &Recorder{Store: Open(dir), LinkBytes: func(iface string) (uint64, uint64, error) {
		c, ok := counters[iface]
		if !ok {
			return 0, 0, errors.New("no such link")
		}
		return c[0], c[1], nil
	}}
	run := r.Begin("ppp0")
	counters["ppp0"] = [2]uint64{1000 + 52000, 500 + 3100}
	t0 := time.Date(2026, 3, 1, 20, 0, 0, 0, time.UTC)
	rep := pipeline.RunReport{Cause: "up edge (netlink)", Iface: "ppp0", Start: t0, End: t0.Add(10 * time.Second), Result: event.OK,
		Stages: []pipeline.StageReport{
			{Name: "flush", Result: event.OK, Start: t0, End: t0.Add(2 * time.Second), Counts: map[string]int64{"queued": 2}},
			{Name: "fetch", Result: event.OK, Start: t0.Add(2 * time.Second), End: t0.Add(10 * time.Second),
				Counts:   map[string]int64{"messages": 3, "bytes": 48000, "bytes_down": 50000, "bytes_up": 900},
				Accounts: map[string]map[string]int64{"work": {"messages": 1, "bytes_down": 10000}, "isp": {"messages": 2, "bytes_down": 40000}}},
		}}
	got := run.End(rep, t0.Add(-time.Minute))
	if got.LinkRX == nil || *got.LinkRX != 52000 || *got.LinkTX != 3100 {
		t.Fatalf("link counters: %v %v", got.LinkRX, got.LinkTX)
	}
	if got.BytesDown != 50000 || got.BytesUp != 900 || got.Seconds != 10 || got.LinkUpSeconds != 70 || got.Exit != 0 {
		t.Fatalf("record: %+v", got)
	}
	if len(got.Accounts) != 2 || got.Accounts[0].Name != "isp" || got.Accounts[0].BytesDown != 40000 {
		t.Fatalf("accounts: %+v", got.Accounts)
	}
	recs, _ := r.Store.Read(0)
	if len(recs) != 1 {
		t.Fatalf("%d records written", len(recs))
	}
	var m map[string]any
	json.Unmarshal(mustJSON(t, recs[0]), &m)
	for _, k := range []string{"start", "end", "seconds", "link", "link_up_seconds", "cause", "result", "exit", "bytes_down", "bytes_up", "link_rx", "link_tx", "stages", "accounts"} {
		if _, ok := m[k]; !ok {
			t.Errorf("record has no %q: %s", k, mustJSON(t, recs[0]))
		}
	}
	// A failed run keeps its exit status and error.
	frep := pipeline.RunReport{Cause: "linkctl run", Start: t0, End: t0.Add(time.Second), Result: event.Permanent,
		Stages: []pipeline.StageReport{{Name: "fetch", Result: event.Permanent, Kind: errkind.Auth, Err: "fetch isp: login refused", Start: t0, End: t0.Add(time.Second)}}}
	f := r.Begin("").End(frep, time.Time{})
	if f.Exit != 3 || f.Stages[0].Error == "" || f.LinkRX != nil {
		t.Fatalf("failed run: %+v", f)
	}
}

func TestRate(t *testing.T) {
	recs := []Record{rec(0)}
	if _, _, ok := Rate(recs, "ppp0"); ok {
		t.Fatal("a run that moved 0 bytes gives no rate")
	}
	a, b := rec(1), rec(2)
	a.Stages[0].BytesDown, a.Stages[0].Seconds = 100000, 10
	b.Stages[0].BytesDown, b.Stages[0].Seconds = 300000, 10
	b.Link = "wwan0"
	recs = append(recs, a, b)
	if r, n, ok := Rate(recs, "ppp0"); !ok || n != 1 || r != 10000 {
		t.Fatalf("ppp0 rate %v over %d runs", r, n)
	}
	if r, n, ok := Rate(recs, ""); !ok || n != 2 || r != 20000 {
		t.Fatalf("any-link rate %v over %d runs", r, n)
	}
}
