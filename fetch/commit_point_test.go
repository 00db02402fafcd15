package fetch

import (
	"context"
	"errors"
	"io"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/linkctl/linkctl/fetch/deliver"
	"github.com/linkctl/linkctl/internal/errkind"
)

// commitPointTarget delivers the way the Maildir does: the commit gate,
// the commit point, then more work (after is called there).
type commitPointTarget struct {
	mu    sync.Mutex
	got   []string
	after func(id string) error
}

func (t *commitPointTarget) Deliver(ctx context.Context, _ deliver.Envelope, r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	id := parseHead(data).MessageID
	if err := deliver.EnterCommit(ctx); err != nil {
		return err
	}
	t.mu.Lock()
	t.got = append(t.got, id)
	t.mu.Unlock()
	deliver.Committed(ctx)
	return t.after(id)
}

func (t *commitPointTarget) Close() error { return nil }

func (t *commitPointTarget) ids() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.got...)
	sort.Strings(out)
	return out
}

// TestFetchGateReleasedAtCommitPoint: with the default AckWindow of 1, a
// delivery still busy after its commit point (a Maildir syncing new/)
// does not hold the next one at the gate: it was recorded when it passed
// the point. Before, every Maildir delivery synced new/ inside the gate,
// one at a time.
func TestFetchGateReleasedAtCommitPoint(t *testing.T) {
	e := newRunEnv(t, 2)
	e.acct.Workers = 2
	var arrived sync.WaitGroup
	arrived.Add(2)
	both := make(chan struct{})
	go func() { arrived.Wait(); close(both) }()
	tgt := &commitPointTarget{after: func(string) error {
		arrived.Done()
		select {
		case <-both:
			return nil
		case <-time.After(5 * time.Second):
			return errors.New("the other delivery never passed the commit gate")
		}
	}}
	e.acct.Target = tgt
	res, err := e.run()
	if err != nil {
		t.Fatal(err)
	}
	if a := res.Accounts[0]; a.Fetched != 2 || a.Failed != 0 {
		t.Fatalf("fetched %d, failed %d (%v)", a.Fetched, a.Failed, a.Err)
	}
}

// TestFetchFailedAfterCommitPointDeliveredAgain: a delivery recorded at
// its commit point that the target then reports failed (new/ could not be
// synced) stays on the server and is delivered again by the next run, not
// deleted as already delivered.
func TestFetchFailedAfterCommitPointDeliveredAgain(t *testing.T) {
	e := newRunEnv(t, 3)
	failed := false
	tgt := &commitPointTarget{after: func(id string) error {
		if id == "<m1@test>" && !failed {
			failed = true
			return errkind.WrapTemporary(errkind.Delivery, "deliver to Maildir: fsync new/", errors.New("input/output error"))
		}
		return nil
	}}
	e.acct.Target = tgt
	e.acct.Workers = 1
	res, err := e.run()
	if err == nil || res.Accounts[0].Failed != 1 || e.srv.count() != 1 {
		t.Fatalf("first run: err %v, failed %d, %d left on the server; want the failed one left", err, res.Accounts[0].Failed, e.srv.count())
	}
	if _, err := e.run(); err != nil {
		t.Fatal(err)
	}
	if e.srv.count() != 0 {
		t.Errorf("%d messages left on the server", e.srv.count())
	}
	want := []string{"<m0@test>", "<m1@test>", "<m1@test>", "<m2@test>"}
	if !sameIDs(tgt.ids(), want) {
		t.Errorf("delivered %v, want %v (m1 again in the second run)", tgt.ids(), want)
	}
}
