package assemble

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/fetch"
	"github.com/linkctl/linkctl/history"
)

// The budget leaves the largest messages behind: the run takes the
// smallest first and stops before the next one would not fit.
func TestBudgetPlan(t *testing.T) {
	msgs := []fetch.Message{{UID: "a", Size: 5000}, {UID: "b", Size: 1000}, {UID: "c", Size: 30000}, {UID: "d", Size: 2000}, {UID: "e", Size: 9000}}
	b := budgetPlan(msgs, 10000)
	if b.Fits != (fetch.Tally{Messages: 3, Bytes: 8000}) || b.Left != (fetch.Tally{Messages: 2, Bytes: 39000}) || b.LeftLargest != 30000 {
		t.Fatalf("budget plan %+v", b)
	}
	if b := budgetPlan(msgs, 1<<30); b.Left.Messages != 0 || b.Fits.Messages != 5 {
		t.Fatalf("an ample budget leaves %+v", b.Left)
	}
}

type fixedBudget map[string]int64

func (f fixedBudget) Remaining(iface string) (int64, bool) { b, ok := f[iface]; return b, ok }

// Plan lists the outbound queue with the flush driver's listing (here the
// user's list_command printing a Postfix JSON listing), takes the rate
// from the history of the link, and asks the budget of that link.
func TestPlanQueueRateBudget(t *testing.T) {
	dir := t.TempDir()
	listing := `{"queue_name": "deferred", "queue_id": "A1", "arrival_time": 1795580406, "message_size": 308, "sender": "a@home.test", "recipients": [{"address": "b@etrn.test"}]}
{"queue_name": "hold", "queue_id": "A2", "arrival_time": 1795580406, "message_size": 999, "sender": "a@home.test", "recipients": [{"address": "c@etrn.test"}]}
{"queue_name": "active", "queue_id": "A3", "arrival_time": 1795580411, "message_size": 254, "sender": "z@home.test", "recipients": [{"address": "f@etrn.test"}]}
`
	lf := filepath.Join(dir, "queue.json")
	os.WriteFile(lf, []byte(listing), 0o600)
	cfg := &config.Config{StateDir: dir, Link: config.Link{Watch: []string{"wwan*", "ppp0"}},
		Pipeline: []config.Step{{Name: "flush", Stage: config.StageFlush}},
		Flush:    config.Flush{MTA: "command", FlushCommand: []string{"true"}, ListCommand: []string{"cat", lf}}}
	as := New(nil)
	rep := as.Plan(context.Background(), cfg, PlanOptions{})
	if rep.Queue == nil || rep.Queue.Error != "" || rep.Queue.Messages != 2 || rep.Queue.Bytes != 562 || rep.Queue.Held != 1 {
		t.Fatalf("queue %+v", rep.Queue)
	}
	if rep.Link != "ppp0" || rep.Rate != nil || rep.Budget != nil {
		t.Fatalf("without history or budget: link %q rate %+v budget %+v", rep.Link, rep.Rate, rep.Budget)
	}
	r := history.Record{Link: "ppp0", Cause: "up edge", Result: "ok", Stages: []history.Stage{{Name: "fetch", Seconds: 4, BytesDown: 40000}}}
	r.Start = r.Start.AddDate(2026, 0, 0)
	r.End = r.Start
	if err := history.Open(dir).Append(r); err != nil {
		t.Fatal(err)
	}
	rep = as.Plan(context.Background(), cfg, PlanOptions{Budget: fixedBudget{"ppp0": 5000}})
	if rep.Rate == nil || rep.Rate.BytesPerSecond != 10000 || rep.Budget == nil || rep.Budget.Remaining != 5000 {
		t.Fatalf("with history and budget: rate %+v budget %+v", rep.Rate, rep.Budget)
	}
}
