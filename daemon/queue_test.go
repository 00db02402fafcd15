package daemon

import (
	"slices"
	"testing"

	"github.com/linkctl/linkctl/pipeline"
)

// TestQueueOrderAndCoalescing: one batch per kind of run; the pipeline's
// goes first, then the IDLE fetches in the order their first trigger came;
// a dropped IDLE queue leaves the pipeline's run queued.
func TestQueueOrderAndCoalescing(t *testing.T) {
	var q queue
	add := func(account, cause string) bool { return q.add(account, pipeline.Request{Cause: cause}, nil) }
	for _, c := range []struct {
		account, cause string
		joined         bool
	}{
		{"work", "new mail (IDLE): work/INBOX", false},
		{"home", "new mail (IDLE): home/INBOX", false},
		{"", "SIGUSR1", false},
		{"work", "new mail (IDLE): work/Lists", true},
		{"", "interval", true},
		{"", "linkctl up", true},
	} {
		if got := add(c.account, c.cause); got != c.joined {
			t.Errorf("add(%q, %q) joined = %v", c.account, c.cause, got)
		}
	}
	if got := q.accounts(); !slices.Equal(got, []string{"work", "home"}) {
		t.Errorf("accounts %v", got)
	}
	var causes []string
	for b := q.next(); b != nil; b = q.next() {
		causes = append(causes, b.request().Cause)
	}
	want := []string{"SIGUSR1 (+2 coalesced)", "new mail (IDLE): work/INBOX (+1 coalesced)", "new mail (IDLE): home/INBOX"}
	if !slices.Equal(causes, want) {
		t.Errorf("runs %q, want %q", causes, want)
	}

	add("work", "a")
	add("", "b")
	if d := q.drop(true); len(d) != 1 || d[0].account != "work" || q.find("") == nil || q.find("work") != nil {
		t.Errorf("drop(idle) took %v, left %v", d, q.batches)
	}
	if d := q.drop(false); len(d) != 1 || !q.empty() {
		t.Errorf("drop(all) took %v, left %v", d, q.batches)
	}
}
