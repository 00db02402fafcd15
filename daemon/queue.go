package daemon

// The daemon's one coalescer: every trigger (an up edge, `linkctl up`, the
// interval, SIGUSR1, an IDLE notification, a catch-up fetch after a
// reload) goes through queue.add, and every run the daemon starts comes
// from queue.next. The runner (package pipeline) runs one run when asked
// and does not queue; what to run next, and what a trigger during a run
// becomes, is decided here.

import (
	"fmt"
	"slices"

	"github.com/linkctl/linkctl/pipeline"
)

// batch is the triggers one run serves.
type batch struct {
	// account is "" for a run of the pipeline, else the IDLE account whose
	// fetch alone the run is (its steps are looked up when it starts: a
	// reload may have removed the account meanwhile).
	account string
	reqs    []pipeline.Request // in the order they came; at least one
	waiters []*waiter          // `linkctl up` clients that get this run's events and report
}

// request is the run's request: the first trigger's, whose cause says how
// many more joined it ("linkctl up (+2 coalesced)").
func (b *batch) request() pipeline.Request {
	req := b.reqs[0]
	if n := len(b.reqs); n > 1 {
		req.Cause = fmt.Sprintf("%s (+%d coalesced)", req.Cause, n-1)
	}
	return req
}

// queue is the runs waiting for the run in flight to end (or, with no run
// in flight, for the caller to start the first). At most one batch per
// account, and one for the pipeline: a trigger joins the batch already
// queued for its kind of run. A batch being run has left the queue, so a
// trigger during a run queues one follow-up run, which starts after the
// current one and sees the newest state of the world (the running fetch
// may have listed a folder before the new mail came).
//
// queue is not safe for concurrent use: the daemon guards it with its mu.
type queue struct {
	batches []*batch
}

// add queues req (and w, if not nil) for a run of account ("" for the
// pipeline). It reports whether req joined a batch already queued.
func (q *queue) add(account string, req pipeline.Request, w *waiter) (joined bool) {
	b := q.find(account)
	if b == nil {
		b = &batch{account: account}
		q.batches = append(q.batches, b)
	}
	joined = len(b.reqs) > 0
	b.reqs = append(b.reqs, req)
	if w != nil {
		b.waiters = append(b.waiters, w)
	}
	return joined
}

// next takes the batch to run next out of the queue (nil: none): the
// pipeline's first, for it sees everything (and fetches every account);
// then the IDLE fetches, one account at a time, in the order their first
// trigger came.
func (q *queue) next() *batch {
	if len(q.batches) == 0 {
		return nil
	}
	i := 0
	for j, b := range q.batches {
		if b.account == "" {
			i = j
			break
		}
	}
	b := q.batches[i]
	q.batches = slices.Delete(q.batches, i, i+1)
	return b
}

// drop takes every batch out of the queue, or (idleOnly) only the IDLE
// fetches, and returns them for their waiters to be told.
func (q *queue) drop(idleOnly bool) []*batch {
	var out, keep []*batch
	for _, b := range q.batches {
		if idleOnly && b.account == "" {
			keep = append(keep, b)
		} else {
			out = append(out, b)
		}
	}
	q.batches = keep
	return out
}

// find returns the queued batch of account ("" the pipeline), or nil.
func (q *queue) find(account string) *batch {
	for _, b := range q.batches {
		if b.account == account {
			return b
		}
	}
	return nil
}

// accounts lists the IDLE accounts whose fetch is queued, in order.
func (q *queue) accounts() []string {
	var out []string
	for _, b := range q.batches {
		if b.account != "" {
			out = append(out, b.account)
		}
	}
	return out
}

func (q *queue) empty() bool { return len(q.batches) == 0 }
