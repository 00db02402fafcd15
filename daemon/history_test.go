package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/control"
	"github.com/linkctl/linkctl/history"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/pipeline"
)

// Every daemon run leaves a history record, and its bytes (per stage,
// per account, the link's counters) are in the metrics file.
func TestRunWritesHistoryAndByteMetrics(t *testing.T) {
	fetch := pipeline.Func{StageName: "fetch", Fn: func(ctx context.Context, sink event.Sink) (pipeline.Report, error) {
		return pipeline.Report{Summary: "isp: 2 messages",
			Counts:   map[string]int64{"messages": 2, "bytes": 3000, "bytes_down": 3400, "bytes_up": 120},
			Accounts: map[string]map[string]int64{"isp": {"messages": 2, "bytes": 3000, "bytes_down": 3400, "bytes_up": 120}}}, nil
	}}
	var store *history.Store
	rx, tx := uint64(10_000), uint64(2_000)
	h := start(t, []pipeline.Step{{Stage: fetch}}, func(o *Options) {
		store = history.Open(o.StateDir)
		o.History = &history.Recorder{Store: store, LinkBytes: func(string) (uint64, uint64, error) {
			r, w := rx, tx
			rx, tx = rx+4000, tx+500 // the second read, at the end, sees the run's traffic
			return r, w, nil
		}}
	})
	r := h.ctl(control.Request{Op: control.OpUp, Iface: "ppp0", Wait: true}, nil)
	if r.Exit != 0 {
		t.Fatalf("run: %+v", r)
	}
	recs, err := store.Read(0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("history: %d records, %v", len(recs), err)
	}
	rec := recs[0]
	if rec.Link != "ppp0" || rec.Cause != "linkctl up" || rec.BytesDown != 3400 || rec.LinkRX == nil || *rec.LinkRX != 4000 || len(rec.Accounts) != 1 {
		t.Errorf("record %+v", rec)
	}
	b, err := os.ReadFile(filepath.Join(h.dir, "linkctl.prom"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`linkctl_run_bytes{direction="down",stage="fetch"} 3400`,
		`linkctl_run_bytes{direction="up",stage="fetch"} 120`,
		`linkctl_stage_bytes_total{direction="down",stage="fetch"} 3400`,
		`linkctl_account_bytes_total{direction="down",account="isp"} 3400`,
		`linkctl_link_run_bytes_total{direction="down"} 4000`,
		`linkctl_link_run_bytes_total{direction="up"} 500`,
		`linkctl_last_run_exit_status 0`,
		`linkctl_runs_total{result="ok"} 1`,
	} {
		if !strings.Contains(string(b), line+"\n") {
			t.Errorf("metrics file lacks %q:\n%s", line, b)
		}
	}
}

// Every metric the daemon writes is documented in docs/metrics.md.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics()
	m.lastRunEnd = time.Unix(1, 0)
	m.addRecord(history.Record{Exit: 0})
	for _, line := range strings.Split(string(m.render(time.Now())), "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, _, _ = strings.Cut(name, " ")
			if !strings.Contains(string(doc), "`"+name+"`") {
				t.Errorf("metric %s is not in docs/metrics.md", name)
			}
		}
	}
}
