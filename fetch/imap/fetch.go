package imap

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/spool"
)

// spoolMem is how much of a message that arrives before its UID is held in
// memory; the rest goes to a temporary file.
const spoolMem = 1 << 20

// Fetch retrieves the full text of uids with one UID FETCH (UID BODY.PEEK[])
// command, so that \Seen is not set (RFC 3501 section 6.4.5), and calls fn
// once per message as it streams in, with its UID and a reader of its
// bytes with CRLF turned into LF. Messages come in the server's order.
//
// Every response is checked against the UIDs asked for. go-imap routes a
// response to the command only when the UID comes before the literal; a
// server may send BODY[] first (RFC 3501 does not fix the order), and then
// go-imap hands the response to the unilateral handler, which passes it
// here: its body is spooled until the UID that follows says which message
// it is. A body for a UID not asked for is a protocol error (nothing is
// delivered under a wrong UID); a UID asked for that never comes (expunged
// meanwhile by another client) is logged and skipped.
//
// If fn returns an error, the rest of the command's data is read and
// thrown away, so that the session stays usable, and the error is
// returned. Fetch returns the missing UIDs' count in no way: compare with
// what fn saw.
func (cl *Client) Fetch(ctx context.Context, uids []uint32, fn func(uid uint32, r io.Reader) error) error {
	return cl.FetchLimited(ctx, uids, nil, fn)
}

// FetchLimited is Fetch with a ceiling on each message's size: limits[uid]
// (0 or absent: none). IMAP announces a literal's size before sending it,
// so a message over its ceiling is refused before a single octet of it is
// read: the server is broken or hostile, and the session is dropped with a
// protocol error.
func (cl *Client) FetchLimited(ctx context.Context, uids []uint32, limits map[uint32]int64, fn func(uid uint32, r io.Reader) error) error {
	if len(uids) == 0 {
		return nil
	}
	want := make(map[uint32]bool, len(uids))
	for _, u := range uids {
		want[u] = true
	}
	done := cl.begin(ctx, "UID FETCH", len(uids))
	defer done()

	// stop is closed as soon as this Fetch takes no more messages: after a
	// protocol error, a failed link, a cancelled ctx, or at its end. From
	// then on the pump and the unilateral handlers discard what they hold
	// instead of waiting to hand it over: go-imap's reader waits for every
	// message it handed out to be consumed, so a message waiting for a
	// taker that never comes would wedge the reader, and with it Close,
	// for good (issue 15, finding 1).
	uni := make(chan uniFetch)
	stop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	cl.mu.Lock()
	cl.uni, cl.uniDone = uni, stop
	cl.mu.Unlock()
	defer func() {
		cl.mu.Lock()
		cl.uni, cl.uniDone = nil, nil
		cl.mu.Unlock()
		halt()
	}()

	cmd := cl.c.Fetch(uidSet(uids), &imap.FetchOptions{
		UID:         true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	// The pump hands over one message at a time and waits until it is
	// consumed: FetchCommand.Next discards the previous message. Once
	// stop is closed it discards each message itself (cmd.Next does), so
	// go-imap's reader is never left waiting on us; it ends when the
	// command does, which the closed wire brings about at once.
	type handed struct {
		m   *imapclient.FetchMessageData
		ack chan struct{}
	}
	cmdCh := make(chan handed)
	go func() {
		defer close(cmdCh)
		for m := cmd.Next(); m != nil; m = cmd.Next() {
			ack := make(chan struct{})
			select {
			case cmdCh <- handed{m, ack}:
				<-ack // the loop below closes it as soon as m is consumed
			case <-stop:
			case <-cl.abort:
			}
		}
	}()

	f := &fetchRun{cl: cl, ctx: ctx, want: want, done: map[uint32]bool{}, fn: fn, limits: limits}
	for _, u := range uids {
		if limits[u] <= 0 {
			f.maxLimit = -1 // some message is unbounded
			break
		}
		f.maxLimit = max(f.maxLimit, limits[u])
	}
	ctxDone := ctx.Done()
	var guard <-chan time.Time // armed once the session is being torn down
	wedged := false
loop:
	for cmdCh != nil {
		select {
		case h, ok := <-cmdCh:
			if !ok {
				cmdCh = nil
				continue
			}
			f.handle(h.m, 0, nil)
			close(h.ack)
		case u := <-uni:
			f.handle(u.m, u.uid, u.body)
		case <-ctxDone:
			// begin's AfterFunc has killed the session; keep serving
			// until the pump ends, which takes what the reader had
			// already buffered, no more.
			ctxDone = nil
			halt()
		case <-guard:
			// Never seen: go-imap's reader did not end although the wire
			// is closed and everything it handed out was consumed. Return
			// rather than hang; the session is dead anyway.
			wedged = true
			break loop
		}
		if f.stopped() || ctx.Err() != nil {
			halt()
		}
		// Once the session is killed, what is left is what go-imap had
		// buffered: the guard bounds that. After an error of fn the
		// session lives on and the rest of the answer is read (and
		// dropped) at the link's pace, bounded by the inactivity timeout.
		if guard == nil && (f.readErr != nil || f.protoErr != nil || ctx.Err() != nil) {
			guard = time.After(abortGrace)
		}
	}
	var cmdErr error
	if !wedged {
		cmdErr = cmd.Close() // the pump has ended: only waits for the status
	}

	switch {
	case ctx.Err() != nil && f.protoErr == nil:
		return errkind.WrapTemporary(errkind.Network, "imap "+cl.opts.Addr+" UID FETCH", context.Cause(ctx))
	case f.protoErr != nil:
		return f.protoErr
	case f.readErr != nil:
		// A failed link, even if fn saw it first and returned its own error.
		return cl.err(ctx, "UID FETCH", f.readErr)
	case f.fnErr != nil:
		return f.fnErr
	case wedged:
		return errkind.Temporary(errkind.Network, "imap "+cl.opts.Addr+" UID FETCH", "session did not end within %v of being closed", abortGrace)
	case cmdErr != nil:
		return cl.err(ctx, "UID FETCH", cmdErr)
	}
	for _, u := range uids {
		if !f.done[u] {
			cl.log.Warn("IMAP server sent no message for a UID it had listed (expunged meanwhile?); skipped",
				"server", cl.opts.Addr, "uid", u)
		}
	}
	return nil
}

// abortGrace bounds every wait for go-imap's reader to end once the wire
// is closed. It ends at once in practice: this is a guard, so that no bug
// of ours or the library's can make a cancelled run hang.
const abortGrace = 2 * time.Second

// uniFetch is a FETCH response go-imap could not route to the command
// (its body came before its UID), handed from unilateralFetch to Fetch at
// its first literal: uid is the UID read before it (0: none yet).
type uniFetch struct {
	m    *imapclient.FetchMessageData
	uid  uint32
	body imapclient.FetchItemDataBodySection
}

// fetchRun is the state of one Fetch.
type fetchRun struct {
	cl       *Client
	ctx      context.Context
	want     map[uint32]bool
	done     map[uint32]bool
	fn       func(uint32, io.Reader) error
	limits   map[uint32]int64
	maxLimit int64 // the largest limit, -1 when one is unbounded
	fnErr    error // from fn: stop delivering, drain
	readErr  error // reading a literal failed: the link
	protoErr error // the server misbehaved: the session was dropped
}

func (f *fetchRun) stopped() bool { return f.fnErr != nil || f.readErr != nil || f.protoErr != nil }

// handle consumes one FETCH response completely, starting with first when
// unilateralFetch already read up to it (uid then is the UID it saw).
func (f *fetchRun) handle(m *imapclient.FetchMessageData, uid uint32, first imapclient.FetchItemData) {
	var sp *spool.Spool
	defer func() {
		if sp != nil {
			sp.Close()
		}
	}()
	item := first
	if item == nil {
		item = m.Next()
	}
	for ; item != nil; item = m.Next() { // m.Next also discards what is left of the previous literal
		switch it := item.(type) {
		case imapclient.FetchItemDataUID:
			uid = uint32(it.UID)
		case imapclient.FetchItemDataBodySection:
			if it.Literal == nil {
				continue
			}
			if f.stopped() {
				continue // m.Next drains it
			}
			size := it.Literal.Size()
			body := &exactReader{r: it.Literal, left: size}
			if lim := f.limits[uid]; uid != 0 && lim > 0 && size > lim || uid == 0 && f.maxLimit >= 0 && size > f.maxLimit {
				if f.protocol(fmt.Sprintf("server announced a message of %d octets for UID %d, listed far smaller", size, uid), body) {
					return
				}
				continue
			}
			if uid == 0 {
				// BODY[] before UID: keep it until the UID arrives.
				s, err := spool.New(body, "", spoolMem, nil)
				switch {
				case body.err != nil:
					f.linkFailed(body.err)
					return // the literal must not be read again (see linkFailed)
				case err != nil:
					f.fnErr = err // a local problem: drain and report
				default:
					sp = s
				}
				continue
			}
			f.deliver(uid, body)
			if body.err != nil {
				f.linkFailed(body.err)
				return
			}
		}
	}
	if sp != nil && !f.stopped() && f.ctx.Err() == nil { // a cancelled run says so, not that the UID was missing
		if uid == 0 {
			f.protocol("server sent BODY[] without a UID in answer to UID FETCH", nil)
			return
		}
		f.deliver(uid, sp.Reader())
	}
}

// deliver checks uid and passes the body to fn.
func (f *fetchRun) deliver(uid uint32, body io.Reader) {
	switch {
	case !f.want[uid]:
		f.protocol(fmt.Sprintf("server sent message UID %d, which was not asked for", uid), body)
		return
	case f.done[uid]:
		f.cl.log.Warn("IMAP server sent a message twice; the repeat is ignored", "server", f.cl.opts.Addr, "uid", uid)
		return
	}
	f.done[uid] = true
	// While fn runs, the server owes nothing but the octets fn reads: the
	// wire is disarmed, and each read of the body arms it for itself.
	// Otherwise go-imap's read-ahead, waiting for the next response after
	// the last message of a batch, would time out while a slow local
	// delivery keeps fn busy, and take the session down.
	f.cl.wire.disarm()
	err := f.fn(uid, &lfReader{src: &armedReader{r: body, w: f.cl.wire}})
	f.cl.wire.arm()
	if err != nil && f.fnErr == nil {
		f.fnErr = err // if the link failed under fn, linkFailed overrides
	}
}

// armedReader bounds each read of a message body by the inactivity
// timeout, and nothing else.
type armedReader struct {
	r io.Reader
	w *wireConn
}

func (a *armedReader) Read(p []byte) (int, error) {
	a.w.arm()
	defer a.w.disarm()
	return a.r.Read(p)
}

// linkFailed handles a literal that could not be read to its end. go-imap
// releases its reader goroutine as soon as a literal read fails, and
// reading that literal again (FetchMessageData.Next discards it) would
// read from the same buffer at the same time: so the session is killed,
// and the reader's exit awaited before the caller lets go of the message.
// With the wire closed and the literal's buffered octets gone, the reader
// fails on its next read, so the wait is short; it is bounded all the same.
func (f *fetchRun) linkFailed(err error) {
	if f.readErr == nil {
		f.readErr = err
	}
	f.cl.kill()
	f.awaitReader()
}

func (f *fetchRun) awaitReader() {
	t := time.NewTimer(abortGrace)
	defer t.Stop()
	select {
	case <-f.cl.c.Closed():
	case <-t.C:
	}
}

// protocol records a server error and kills the session: after it the
// client no longer trusts what belongs to what. body, if not nil, is a
// literal not yet (fully) read: what go-imap already buffered of it is
// read and dropped, which releases go-imap's reader. It reports whether
// that read failed, in which case the caller must not touch the message
// again (see linkFailed). protocol never waits for anything a goroutine
// of ours would have to serve: the pump and the unilateral handlers
// discard what they hold once Fetch stops.
func (f *fetchRun) protocol(msg string, body io.Reader) (readFailed bool) {
	if f.protoErr == nil {
		f.protoErr = errkind.Permanent(errkind.Protocol, "imap "+f.cl.opts.Addr+" UID FETCH", "%s", msg)
	}
	f.cl.kill()
	if body != nil {
		_, err := io.Copy(io.Discard, body)
		if lit, ok := body.(*exactReader); ok && lit.err != nil || err != nil {
			f.awaitReader()
			return true
		}
	}
	return false
}

// unilateralFetch receives the FETCH responses go-imap could not match to
// a command, each in a goroutine of go-imap's own. It reads each response
// up to its first literal: one without a literal (a flag update, a UID not
// asked for without a body) is dropped here and never waits for anyone.
// During Fetch one with a literal (a body before its UID) is handed to it;
// go-imap's reader waits for that literal, so at most one such handover
// is ever pending. If nobody takes it (no Fetch, Fetch stopped, session
// aborted) the literal is read and dropped here.
func (cl *Client) unilateralFetch(m *imapclient.FetchMessageData) {
	var uid uint32
	for item := m.Next(); item != nil; item = m.Next() {
		switch it := item.(type) {
		case imapclient.FetchItemDataUID:
			uid = uint32(it.UID)
		case imapclient.FetchItemDataBodySection:
			if it.Literal == nil {
				continue
			}
			cl.mu.Lock()
			ch, stop := cl.uni, cl.uniDone
			cl.mu.Unlock()
			if ch == nil {
				continue
			}
			select {
			case ch <- uniFetch{m: m, uid: uid, body: it}:
				return // Fetch consumes the rest
			case <-stop:
			case <-cl.abort:
			}
		}
	}
}

// exactReader fails with io.ErrUnexpectedEOF when the literal ends before
// its announced size. go-imap reads a literal through a LimitReader, so a
// connection cut in the middle of a message looks like its normal end:
// without this check a truncated message would be delivered, recorded and
// deleted from the server.
type exactReader struct {
	r    io.Reader
	left int64
	err  error // the first failure, io.ErrUnexpectedEOF for a short literal
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}
