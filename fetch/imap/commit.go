package imap

import (
	"context"

	"github.com/emersion/go-imap/v2"
)

// Commit is what ends a pull: flags to set, messages to remove or move.
type Commit struct {
	Seen   []uint32 // set \Seen (kept mail, mark_seen)
	Delete []uint32 // remove from the folder
	// MoveTo moves Delete there instead: UID MOVE (RFC 6851) when offered,
	// else UID COPY, and only once the copy is confirmed, delete.
	MoveTo string
	// ExpungeAll allows a plain EXPUNGE when the server lacks UIDPLUS; it
	// removes every \Deleted message of the folder, other clients' too.
	ExpungeAll bool
}

// CommitResult says what Commit could not do without failing.
type CommitResult struct {
	// LeftFlagged counts messages flagged \Deleted but not expunged: the
	// server lacks UIDPLUS and ExpungeAll was not set.
	LeftFlagged int
}

// Commit applies c and logs out, pipelining the commands (RFC 3501
// section 5.5) so that the whole commit costs one round trip on a slow
// link: UID STORE +FLAGS.SILENT (\Seen), UID STORE +FLAGS.SILENT
// (\Deleted), UID EXPUNGE of exactly those UIDs (RFC 4315; only with
// UIDPLUS, which go-imap does not check), LOGOUT. Pipelining the expunge
// behind the STORE is safe: it removes only what is flagged. A COPY is
// the exception: nothing is flagged before the server confirmed it, or a
// failed copy would lose mail. The session is closed afterwards, whatever
// happened; a failed LOGOUT alone is not an error.
func (cl *Client) Commit(ctx context.Context, c Commit) (CommitResult, error) {
	var res CommitResult
	done := cl.begin(ctx, "commit", len(c.Seen)+2*len(c.Delete))
	defer func() {
		done()
		cl.Close()
	}()
	type waiter struct {
		what string
		wait func() error
	}
	var pending []waiter
	add := func(what string, f func() error) { pending = append(pending, waiter{what, f}) }
	// The pending commands are drained at the same time, not one after
	// the other: go-imap's reader hands each EXPUNGE response to the UID
	// EXPUNGE command through a channel of 128, and a server may send them
	// before its answer to the STORE (RFC 3501 section 7.4.1 allows EXPUNGE
	// responses during a UID command). Waiting for the STORE alone would
	// leave the reader blocked on the 129th: a deadlock Dovecot showed on a
	// commit of 5000 messages.
	flush := func() error {
		errs := make([]chan error, len(pending))
		for i, w := range pending {
			errs[i] = make(chan error, 1)
			go func() { errs[i] <- w.wait() }()
		}
		var first error
		for i, w := range pending {
			if err := <-errs[i]; err != nil && first == nil {
				first = cl.err(ctx, w.what, err)
			}
		}
		pending = nil
		return first
	}
	logout := func() {
		cmd := cl.c.Logout()
		add("LOGOUT", cmd.Wait)
	}

	if len(c.Seen) > 0 {
		cmd := cl.c.Store(uidSet(c.Seen), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil)
		add(`UID STORE +FLAGS (\Seen)`, cmd.Close)
	}
	if len(c.Delete) > 0 {
		del := uidSet(c.Delete)
		switch {
		case c.MoveTo != "" && cl.Has(string(imap.CapMove)):
			cmd := cl.c.Move(del, c.MoveTo)
			add("UID MOVE "+c.MoveTo, func() error { _, err := cmd.Wait(); return err })
		default:
			if c.MoveTo != "" {
				cmd := cl.c.Copy(del, c.MoveTo)
				add("UID COPY "+c.MoveTo, func() error { _, err := cmd.Wait(); return err })
				if err := flush(); err != nil {
					logout()
					flush()
					return res, err
				}
			}
			store := cl.c.Store(del, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil)
			add(`UID STORE +FLAGS (\Deleted)`, store.Close)
			switch {
			case cl.Has(string(imap.CapUIDPlus)):
				cmd := cl.c.UIDExpunge(del)
				add("UID EXPUNGE", cmd.Close)
			case c.ExpungeAll:
				cmd := cl.c.Expunge()
				add("EXPUNGE", cmd.Close)
			default:
				res.LeftFlagged = len(c.Delete)
			}
		}
	}
	logout()
	// Wait in order; the LOGOUT's own result does not matter once the
	// commands before it were answered.
	last := pending[len(pending)-1]
	pending = pending[:len(pending)-1]
	err := flush()
	last.wait()
	return res, err
}
