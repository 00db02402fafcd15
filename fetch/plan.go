package fetch

import (
	"context"
	"path/filepath"
	"sync"
	"time"

	"github.com/linkctl/linkctl/fetch/seen"
	"github.com/linkctl/linkctl/internal/errkind"
)

// Tally is a number of messages and their size as the server listed it
// (POP3 LIST, IMAP RFC822.SIZE: octets with CRLF line ends, which is what
// the link carries for them, framing aside).
type Tally struct {
	Messages int   `json:"messages"`
	Bytes    int64 `json:"bytes"`
}

func (t *Tally) add(m Message) {
	t.Messages++
	t.Bytes += max(m.Size, 0)
}

// AccountPlan is what a run would do with one account, from a listing.
type AccountPlan struct {
	Account string `json:"account"`
	Proto   string `json:"proto"`
	Server  string `json:"server"`
	// Listed is everything the server lists.
	Listed Tally `json:"listed"`
	// Fetch is what a run would download: new messages, within limit,
	// within fetchlimit. Largest is the biggest of them.
	Fetch      Tally  `json:"fetch"`
	Largest    int64  `json:"largest,omitempty"`
	LargestUID string `json:"largest_uid,omitempty"`
	// Seen were delivered before: Delete of them a run deletes without
	// downloading them, the rest it keeps (keep).
	Seen   Tally `json:"seen"`
	Delete int   `json:"delete"`
	// TooBig are over the account's limit; FetchLimit are new ones
	// beyond its fetchlimit, left for a later run; Poison failed
	// MaxFailures deliveries; Skipped are \Seen with unseen: true.
	TooBig     Tally `json:"too_big"`
	FetchLimit Tally `json:"fetchlimit"`
	Poison     Tally `json:"poison"`
	Skipped    Tally `json:"skipped"`
	// Reused counts POP3 UIDLs recorded as delivered that now name a
	// message of another size: a run fetches them (counted in Fetch).
	Reused int `json:"reused,omitempty"`
	// Messages is what a run would fetch, in the order it would.
	Messages []Message `json:"-"`
	Err      error     `json:"-"`
	Error    string    `json:"error,omitempty"`
}

// Plan lists every account of opts the way Run does, classifies each
// message against the seen-store with the same rules (classify,
// selectBatch), and reports what a run would move. It retrieves
// nothing and changes nothing on the server or in the seen-store: no
// RETR, no DELE, no STORE, no EXPUNGE (the IMAP listing is FETCH of
// UID, RFC822.SIZE and FLAGS, which sets no \Seen, RFC 3501 section
// 6.4.5); each session ends with Close(commit) having marked nothing, so
// POP3 sends a bare QUIT (RFC 1939 section 6: the UPDATE state removes
// only what was marked) and IMAP a LOGOUT. The seen-store is read with
// seen.Peek: no lock is taken, so a plan works beside a run in progress.
//
// Every account is listed at once (listing takes no retrieval slot in a
// run either), each within Options.SessionFloor. Push accounts (ODMR) are
// reported with an error: the relay decides what it pushes.
func Plan(ctx context.Context, opts Options) []AccountPlan {
	lim := newLimits(opts)
	dir := filepath.Join(opts.StateDir, "seen")
	if opts.Store != nil {
		dir = opts.Store.Dir()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	out := make([]AccountPlan, len(opts.Accounts))
	var wg sync.WaitGroup
	for i, a := range opts.Accounts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeoutCause(ctx, lim.floor,
				errkind.Temporary(errkind.Network, "plan "+a.Name, "no listing within %v", lim.floor))
			defer cancel()
			p := planAccount(sctx, a, dir, now, opts.Order)
			if p.Err != nil {
				if sctx.Err() != nil && ctx.Err() == nil {
					p.Err = context.Cause(sctx)
				}
				p.Error = p.Err.Error()
			}
			out[i] = p
		}()
	}
	wg.Wait()
	return out
}

func planAccount(ctx context.Context, a Account, dir string, now func() time.Time, order Order) AccountPlan {
	p := AccountPlan{Account: a.Name, Proto: a.Proto, Server: a.Server}
	if a.Open == nil {
		p.Err = errkind.Permanent(errkind.Usage, "plan "+a.Name, "a push account (ODMR): the relay decides what it sends, nothing to list")
		return p
	}
	mb, err := a.Open(ctx)
	if err != nil {
		p.Err = err
		return p
	}
	list, err := mb.List(ctx)
	if err != nil {
		mb.Close(context.WithoutCancel(ctx), false)
		p.Err = err
		return p
	}
	// Nothing was marked: the commit is a bare QUIT or LOGOUT.
	if err := mb.Close(ctx, true); err != nil {
		p.Err = err
		return p
	}
	log, err := seen.Peek(dir, mb.Key())
	if err != nil {
		p.Err = err
		return p
	}
	_, _, isIMAP := ParseIMAPKey(mb.Key())
	var candidates []Message
	for _, m := range list {
		p.Listed.add(m)
		ent := log.Get(m.UID)
		v, reused := classify(a, m, ent, isIMAP, false, now())
		if reused {
			p.Reused++
		}
		switch v {
		case verdictFetch:
			candidates = append(candidates, m)
		case verdictDelete:
			p.Seen.add(m)
			p.Delete++
		case verdictKept:
			p.Seen.add(m)
		case verdictSkip:
			p.Skipped.add(m)
		case verdictPoison:
			p.Poison.add(m)
		case verdictTooBig:
			p.TooBig.add(m)
		}
	}
	budget := -1
	if a.FetchLimit > 0 {
		budget = a.FetchLimit
	}
	// The order of the run, without its budget (Admit spends it): what
	// budgets leave behind is assemble's part of the plan.
	batch, _, _, _ := selectBatch(candidates, order, budget, 0, nil)
	inBatch := make(map[string]bool, len(batch))
	for _, m := range batch {
		inBatch[m.UID] = true
	}
	for _, m := range candidates {
		if !inBatch[m.UID] {
			p.FetchLimit.add(m)
		}
	}
	for _, m := range batch {
		p.Fetch.add(m)
		if p.LargestUID == "" || m.Size > p.Largest {
			p.Largest, p.LargestUID = m.Size, m.UID
		}
	}
	p.Messages = batch
	return p
}
