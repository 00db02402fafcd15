package fetch

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// budgetAdmit admits messages while their listed sizes fit in left.
func budgetAdmit(left int64) func(int64) (bool, string) {
	var mu sync.Mutex
	return func(size int64) (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		if size > left {
			return false, fmt.Sprintf("the run budget has %d bytes left", left)
		}
		left -= size
		return true, ""
	}
}

// A budget that fits the three smallest of five messages: those three are
// delivered and deleted, the two biggest stay on the server (never
// deleted), and the summary says what was left and why.
func TestFetchBudgetSmallestFirst(t *testing.T) {
	e := newRunEnv(t, 0)
	sizes := []int{5000, 300, 9000, 200, 400} // server order
	for i, n := range sizes {
		e.srv.add(msgText(i, strings.Repeat("x", n)))
	}
	var small int64
	for _, i := range []int{1, 3, 4} {
		small += int64(len(msgText(i, strings.Repeat("x", sizes[i]))))
	}
	e.opts.Order = SmallestFirst
	e.opts.Admit = budgetAdmit(small + 100)
	res, err := e.run()
	if err != nil {
		t.Fatal(err)
	}
	a := res.Accounts[0]
	if a.Fetched != 3 || a.Deleted != 3 || len(a.Held) != 2 || a.Left != 0 {
		t.Fatalf("result %+v", a)
	}
	if got := e.tgt.ids(); !sameIDs(got, []string{"<m1@test>", "<m3@test>", "<m4@test>"}) {
		t.Fatalf("delivered %v, want the three smallest", got)
	}
	if e.srv.count() != 2 {
		t.Fatalf("%d messages on the server, want the 2 held", e.srv.count())
	}
	if !res.AtBudget() {
		t.Error("AtBudget false")
	}
	want := fmt.Sprintf("left 2 messages (14 kB) for an unmetered link: the run budget has %d bytes left", 100)
	if !strings.Contains(res.Summary(), want) {
		t.Errorf("summary %q, want %q", res.Summary(), want)
	}
	if a.BytesDown != small || res.Counts()["bytes_down"] != small {
		t.Errorf("bytes_down %d (counts %d), want %d", a.BytesDown, res.Counts()["bytes_down"], small)
	}
	// The next run on an unmetered link (no Admit) takes the rest.
	e.opts.Admit = nil
	if res, err = e.run(); err != nil || res.Accounts[0].Fetched != 2 || e.srv.count() != 0 {
		t.Fatalf("unmetered run: %+v, %v; %d left", res.Accounts[0], err, e.srv.count())
	}
}

// In server order with commit_every, a refused message is not asked
// about again in the following sessions, and nothing refused is deleted.
func TestFetchBudgetCommitEvery(t *testing.T) {
	e := newRunEnv(t, 0)
	for i, n := range []int{100, 8000, 100, 100} {
		e.srv.add(msgText(i, strings.Repeat("y", n)))
	}
	e.acct.CommitEvery = 1
	asked := 0
	e.opts.Admit = func(size int64) (bool, string) {
		asked++
		return size < 1000, "bigger than the largest message for this link"
	}
	res, err := e.run()
	if err != nil {
		t.Fatal(err)
	}
	a := res.Accounts[0]
	if a.Fetched != 3 || len(a.Held) != 1 || e.srv.count() != 1 || a.Left != 0 {
		t.Fatalf("result %+v, %d on the server", a, e.srv.count())
	}
	if asked != 4 {
		t.Errorf("Admit asked %d times, want once per message (4)", asked)
	}
}
