package imap

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/linkctl/linkctl/internal/errkind"
)

// WatchOptions configures Watch.
type WatchOptions struct {
	Options        // how to connect and log in
	Folder  string // default INBOX
	// Interval is how often to poll with NOOP when the server offers no
	// IDLE (or ForcePoll is set); default 5 minutes.
	Interval time.Duration
	// Renew restarts IDLE this often. RFC 2177 section 3: servers may drop
	// a client idle for 30 minutes, so it is capped at 29 minutes; default
	// 25 minutes. Each restart is also when a silently dead connection is
	// noticed (the DONE is not answered within Timeout).
	Renew time.Duration
	// ForcePoll polls even when IDLE is offered (servers with a broken IDLE).
	ForcePoll bool
	// MaxBackoff bounds the wait between reconnections (default 5 minutes);
	// the wait starts at a second and doubles after each failure.
	MaxBackoff time.Duration
	// OnMode, if set, is told after each login whether this connection
	// waits in "idle" or is "polling": the server's capabilities decide,
	// and asking for them on a connection of its own would cost a login
	// on the metered link.
	OnMode func(mode string)
}

// Watch keeps one connection to one folder and calls notify whenever new
// mail arrives there (the message count grows: an EXISTS response, RFC 3501
// section 7.3.1), until ctx is cancelled. With IDLE (RFC 2177) the server
// says so within seconds; without, a NOOP every Interval asks.
//
// The connection is re-established after any failure, with backoff: IDLE
// ends silently when a connection drops, so every IDLE is watched through
// its Wait and the client's Closed channel. On a reconnection, notify is
// called when the folder's UIDNEXT or UIDVALIDITY moved while the
// connection was down; the first connection does not notify (the caller
// runs a fetch when it starts watching).
//
// Watch returns nil when ctx is cancelled (the link went down), without
// waiting for the server; it returns an error only for a failure that
// retrying cannot fix (refused login, certificate, configuration). notify
// is called from Watch's goroutine; a slow notify delays only this watch.
func Watch(ctx context.Context, o WatchOptions, notify func()) error {
	if o.Folder == "" {
		o.Folder = "INBOX"
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Minute
	}
	if o.Renew <= 0 {
		o.Renew = 25 * time.Minute
	}
	o.Renew = min(o.Renew, 29*time.Minute)
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &watcher{o: o, log: log, notify: notify}
	backoff := time.Second
	for {
		start := time.Now()
		err := w.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errkind.IsTemporary(err) {
			return err
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second // the last session was healthy for a while
		}
		log.Warn("IMAP watch: connection lost, reconnecting", "server", o.Addr, "folder", o.Folder, "in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, o.MaxBackoff)
	}
}

type watcher struct {
	o      WatchOptions
	log    *slog.Logger
	notify func()
	last   *Selected // from the previous connection
}

// session runs one connection until it fails or ctx ends.
func (w *watcher) session(ctx context.Context) error {
	cl, err := Dial(ctx, w.o.Options)
	if err != nil {
		return err
	}
	defer cl.Close()

	var mu sync.Mutex
	var count uint32
	newMail := make(chan struct{}, 1)
	cl.mu.Lock()
	cl.onMailbox = func(d *imapclient.UnilateralDataMailbox) {
		if d.NumMessages == nil {
			return
		}
		mu.Lock()
		grew := *d.NumMessages > count
		count = *d.NumMessages
		mu.Unlock()
		if grew {
			select {
			case newMail <- struct{}{}:
			default: // one pending notification covers them all
			}
		}
	}
	cl.onExpunge = func(uint32) {
		mu.Lock()
		if count > 0 {
			count--
		}
		mu.Unlock()
	}
	cl.mu.Unlock()

	sel, err := cl.Select(ctx, w.o.Folder)
	if err != nil {
		return err
	}
	mu.Lock()
	count = sel.Messages
	mu.Unlock()
	if w.last != nil && (w.last.UIDValidity != sel.UIDValidity || w.last.UIDNext != sel.UIDNext ||
		(sel.UIDNext == 0 && sel.Messages > w.last.Messages)) {
		w.notify()
	}
	w.last = &sel

	idle := cl.Has("IDLE") && !w.o.ForcePoll
	if w.o.OnMode != nil {
		w.o.OnMode(map[bool]string{true: "idle", false: "polling"}[idle])
	}
	if idle {
		return w.idle(ctx, cl, newMail)
	}
	return w.poll(ctx, cl, newMail)
}

func (w *watcher) idle(ctx context.Context, cl *Client, newMail chan struct{}) error {
	for {
		done := cl.begin(ctx, "IDLE", 0)
		cmd, err := cl.c.Idle() // returns once the server's "+ idling" is in
		done()
		if err != nil {
			return cl.err(ctx, "IDLE", err)
		}
		renew := time.NewTimer(w.o.Renew)
	waiting:
		for {
			select {
			case <-ctx.Done():
				renew.Stop()
				return nil // the deferred Close drops the connection
			case <-newMail:
				w.notify()
			case <-renew.C:
				break waiting
			case <-cl.c.Closed():
				renew.Stop()
				return cl.err(ctx, "IDLE", cmd.Wait())
			}
		}
		// RFC 2177 section 3: DONE ends IDLE; the tagged answer must come
		// within the timeout, which is how a dead link shows.
		done = cl.begin(ctx, "IDLE DONE", 0)
		err = cmd.Close()
		if err == nil {
			err = cmd.Wait()
		}
		done()
		if err != nil {
			return cl.err(ctx, "IDLE DONE", err)
		}
	}
}

func (w *watcher) poll(ctx context.Context, cl *Client, newMail chan struct{}) error {
	t := time.NewTicker(w.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-newMail:
			w.notify()
		case <-t.C:
			if err := cl.Noop(ctx); err != nil {
				return err
			}
		}
	}
}
