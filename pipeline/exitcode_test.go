package pipeline

import (
	"testing"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
)

// TestExitCodeTable: a run's exit status keeps fetchmail's numbers (1 no
// mail, 13 stopped at the fetch limit) and uses linkctl's own (20) for a
// run where some stages failed and others succeeded.
func TestExitCodeTable(t *testing.T) {
	st := func(res event.Result, kind errkind.Kind) StageReport {
		return StageReport{Name: string(res), Result: res, Kind: kind}
	}
	ok, nothing, limited := st(event.OK, 0), st(event.Nothing, 0), st(event.Limited, 0)
	refused, auth := st(event.Permanent, errkind.Refused), st(event.Temporary, errkind.Auth)
	for _, tc := range []struct {
		name   string
		stages []StageReport
		want   int
	}{
		{"all ok", []StageReport{ok, ok}, 0},
		{"nothing to do", []StageReport{nothing, nothing}, 1},
		{"fetch stopped at fetchlimit", []StageReport{ok, limited, ok}, 13},
		{"fetchlimit alone", []StageReport{nothing, limited}, 13},
		{"fetchlimit and a failure", []StageReport{limited, refused}, 20},
		{"some failed", []StageReport{ok, refused}, 20},
		{"all failed alike", []StageReport{refused}, 7},
		{"all failed differently", []StageReport{refused, auth}, 20},
	} {
		if got := (RunReport{Stages: tc.stages}).ExitCode(); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.want)
		}
	}
	if res, err := overall(t.Context(), []StageReport{ok, limited}); res != event.Limited || err != nil {
		t.Errorf("run result %q, %v; want limited, no error", res, err)
	}
}
