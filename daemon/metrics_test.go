package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/pipeline"
)

func TestMetricsRender(t *testing.T) {
	m := newMetrics()
	t0 := time.Unix(1_800_000_000, 0)
	m.linkUp(true, t0)
	m.linkUp(false, t0.Add(90*time.Second))
	m.linkUp(true, t0.Add(100*time.Second))
	m.addRun(pipeline.RunReport{Result: event.OK, Start: t0, End: t0.Add(4 * time.Second), Stages: []pipeline.StageReport{
		{Name: "fetch", Result: event.OK, End: t0.Add(3 * time.Second), Counts: map[string]int64{"messages": 3, "bytes": 4100}},
		{Name: `odd"name\`, Result: event.Temporary, End: t0.Add(4 * time.Second)},
	}})
	m.addRun(pipeline.RunReport{Result: event.Nothing, Start: t0, End: t0.Add(time.Second), Stages: []pipeline.StageReport{
		{Name: "fetch", Result: event.Nothing, Counts: map[string]int64{"messages": 0}},
	}})
	got := string(m.render(t0.Add(110 * time.Second)))
	for _, want := range []string{
		"# TYPE linkctl_runs_total counter\n",
		`linkctl_runs_total{result="nothing"} 1` + "\n" + `linkctl_runs_total{result="ok"} 1` + "\n",
		`linkctl_stage_runs_total{stage="fetch",result="nothing"} 1` + "\n",
		`linkctl_stage_runs_total{stage="odd\"name\\",result="temporary"} 1` + "\n",
		`linkctl_stage_count_total{stage="fetch",name="bytes"} 4100` + "\n",
		"linkctl_fetched_messages_total 3\n",
		"linkctl_fetched_bytes_total 4100\n",
		"linkctl_last_run_duration_seconds 1.000\n",
		"linkctl_link_up 1\n",
		"linkctl_link_up_seconds_total 100.000\n", // 90 s, then 10 s of the current up
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		if !strings.HasPrefix(line, "# ") && strings.Count(line, " ") != 1 {
			t.Errorf("malformed sample line %q", line)
		}
	}
}
