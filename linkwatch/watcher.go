package linkwatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/linkctl/linkctl/internal/errkind"
)

// Edge is a change of the uplink's usability.
type Edge struct {
	Up     bool
	Iface  string // the usable link, for an up edge
	Reason string // from Up: "ppp0 is up with 192.0.2.7/32"
	Cause  string // what noticed it: "start", "netlink", "clock jump"
	Time   time.Time
	State  State
}

// Subscriber delivers hints that the network state may have changed.
// Subscribe calls hint (which never blocks) for every message and returns a
// channel that receives an error when the subscription died (its socket is
// gone: messages are being lost); closing done ends it. Errors the
// subscription survives are not deaths: they give a hint or nothing.
type Subscriber interface {
	Subscribe(done <-chan struct{}, hint func()) (dead <-chan error, err error)
}

// Options configures a Watcher. The zero value watches the default route in
// the current network namespace with no settle time.
type Options struct {
	Watch  []string      // names, globs, or DefaultRoute (Up)
	Settle time.Duration // usable this long before the up edge

	// Namespace selects the network namespace to watch (tests); nil is the
	// current one. Reader and Subscriber default to netlink in it.
	Namespace  *netns.NsHandle
	Reader     Reader
	Subscriber Subscriber
	// ClockJumps receives a value when the wall clock jumped (resume from
	// suspend, clock set). nil: a timerfd with TFD_TIMER_CANCEL_ON_SET.
	ClockJumps <-chan struct{}

	Logger *slog.Logger
}

// Watcher turns netlink hints into up and down edges.
type Watcher struct {
	opts  Options
	log   *slog.Logger
	edges chan Edge

	mu     sync.Mutex
	up     bool // the last edge reported
	reason string
	since  time.Time
	state  State

	subs, deaths, reads, noted atomic.Uint64
}

// Counters counts what the watcher did since it started: an idle watcher's
// counters stand still, whatever other programs do with netlink.
type Counters struct {
	Subscriptions uint64 // successful subscriptions, the first one included
	Deaths        uint64 // subscriptions that died (update channel closed)
	Reads         uint64 // state re-reads (link, address and route dumps)
	Noted         uint64 // errors netlink reported that the subscription survived
}

// Counters returns the counters (for tests and metrics).
func (w *Watcher) Counters() Counters {
	return Counters{Subscriptions: w.subs.Load(), Deaths: w.deaths.Load(), Reads: w.reads.Load(), Noted: w.noted.Load()}
}

// NewWatcher returns a watcher; call Run to start it.
func NewWatcher(opts Options) (*Watcher, error) {
	w := &Watcher{opts: opts, log: opts.Logger, edges: make(chan Edge, 8)}
	if w.log == nil {
		w.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if w.opts.Reader == nil {
		r := NetlinkReader{}
		if opts.Namespace != nil {
			h, err := netlink.NewHandleAt(*opts.Namespace)
			if err != nil {
				return nil, errkind.WrapPermanent(errkind.Internal, "open netlink in the namespace", err)
			}
			r.Handle = h
		}
		w.opts.Reader = r
	}
	if w.opts.Subscriber == nil {
		w.opts.Subscriber = NetlinkSubscriber{Namespace: opts.Namespace, Noted: w.note}
	}
	return w, nil
}

// note counts an error the subscription survived and logs it, sparingly:
// another program's requests can bring hundreds a second.
func (w *Watcher) note(err error) {
	n := w.noted.Add(1)
	if n&(n-1) == 0 { // 1, 2, 4, 8, ...
		w.log.Debug("netlink reported an error; the subscription goes on", "err", err, "count", n)
	}
}

// Edges returns the channel edges are sent on. The watcher blocks until an
// edge is received, so the consumer must keep reading while Run runs.
func (w *Watcher) Edges() <-chan Edge { return w.edges }

// Current returns the last reported edge: whether the link is up, the
// reason, and since when (zero before the first edge).
func (w *Watcher) Current() (up bool, reason string, since time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.up, w.reason, w.since
}

// Snapshot returns the last State read.
func (w *Watcher) Snapshot() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}

// Run watches until ctx is done. It reads the state at once, so a link
// already up at start gives an up edge (after Settle).
func (w *Watcher) Run(ctx context.Context) error {
	hints := make(chan struct{}, 1) // coalesce: one pending hint is enough
	hint := func() {
		select {
		case hints <- struct{}{}:
		default:
		}
	}
	jumps := w.opts.ClockJumps
	if jumps == nil {
		j, err := clockJumps(ctx)
		if err != nil {
			w.log.Warn("cannot watch for wall-clock jumps; resume from suspend will not trigger a run", "err", err)
		}
		jumps = j
	}

	var (
		subDone   chan struct{}
		dead      <-chan error
		subAt     time.Time   // when the live subscription was made
		subTimer  *time.Timer // resubscribe after a death or a failed subscribe
		subC      <-chan time.Time
		subWait   = backoff{min: subBackoffMin, max: subBackoffMax}
		readTimer *time.Timer // re-read after a failed read
		readC     <-chan time.Time
		readWait  = backoff{min: 100 * time.Millisecond, max: 10 * time.Second}
		settle    *time.Timer
		settleC   <-chan time.Time
		pending   bool                  // usable, waiting for Settle
		settled   bool                  // this iteration: Settle just passed
		forced    bool                  // report an up edge even though up was reported (clock jump, new session)
		sessIface string                // the link of the last up edge
		sessAddrs map[netip.Prefix]bool // its session addresses since then
		subscribe = true
		cause     = "start"
	)
	defer func() {
		if subDone != nil {
			close(subDone)
		}
	}()
	arm := func(t **time.Timer, c *<-chan time.Time, d time.Duration) {
		if *t == nil {
			*t = time.NewTimer(d)
		} else {
			(*t).Reset(d)
		}
		*c = (*t).C
	}
	emit := func(e Edge) bool {
		w.mu.Lock()
		w.up, w.reason, w.since = e.Up, e.Reason, e.Time
		w.mu.Unlock()
		w.log.Info("link edge", "up", e.Up, "reason", e.Reason, "cause", e.Cause)
		select {
		case w.edges <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}

	for {
		if subscribe {
			subscribe = false
			subDone = make(chan struct{})
			d, err := w.opts.Subscriber.Subscribe(subDone, hint)
			if err != nil {
				close(subDone)
				subDone = nil
				in := subWait.next()
				w.log.Warn("cannot subscribe to netlink; retrying", "err", err, "in", in)
				arm(&subTimer, &subC, in)
				hint() // the state can still be read: know it meanwhile
			} else {
				w.subs.Add(1)
				dead, subAt = d, time.Now()
				hint() // re-read: anything may have changed while unsubscribed
			}
		}

		settled = false
		select {
		case <-ctx.Done():
			return nil
		case err := <-dead:
			// The socket is gone (vishvananda/netlink closes the update
			// channel only when a receive failed, ENOBUFS included).
			// Re-read now, since messages were lost, but resubscribe only
			// after a backoff: a socket that dies at once again must not
			// turn into a busy loop of new sockets.
			w.deaths.Add(1)
			close(subDone)
			subDone, dead = nil, nil
			lived := time.Since(subAt)
			if lived >= subHealthy {
				subWait.reset()
			}
			in := subWait.next()
			w.log.Warn("netlink subscription died; resubscribing", "err", err, "after", lived.Round(time.Millisecond), "in", in)
			arm(&subTimer, &subC, in)
			cause = "netlink"
		case <-subC:
			subC = nil
			subscribe = true
			continue
		case <-readC:
			readC = nil
		case <-jumps:
			w.log.Info("wall clock jumped (resume from suspend?): checking the link again")
			forced = true
			cause = "clock jump"
			// A resume is also when a netlink socket may have missed
			// messages: re-read now rather than trust the last state.
		case <-hints:
		case <-settleC:
			settleC, pending, settled = nil, false, true
		}

		w.reads.Add(1)
		st, err := w.opts.Reader.Read()
		if err != nil {
			in := readWait.next()
			w.log.Warn("cannot read the link state; retrying", "err", err, "in", in)
			arm(&readTimer, &readC, in)
			continue
		}
		readWait.reset()
		w.mu.Lock()
		changed := !st.equal(w.state)
		w.state = st
		reported := w.up
		w.mu.Unlock()
		up, reason, iface := upIface(st, w.opts.Watch)
		if changed {
			w.log.Debug("link state", "state", st.String(), "up", up, "reason", reason)
		}
		w.mu.Lock()
		w.reason = reason // status shows the current reason between edges too
		w.mu.Unlock()

		if up && reported && !forced && !pending {
			if c, why := renewed(st, iface, sessIface, sessAddrs); c != "" {
				w.log.Info("the uplink is a new session: treating it as an up edge", "why", why)
				forced, cause = true, c
			} else {
				for p := range sessionAddrs(st, iface) {
					sessAddrs[p] = true // appeared since: part of this session
				}
			}
		}

		switch {
		case !up:
			if pending {
				settle.Stop()
				settleC, pending = nil, false
				w.log.Debug("link flapped within settle", "reason", reason)
			}
			forced = false
			if reported {
				// Report down at once (no settle): a running pipeline
				// must stop now.
				if !emit(Edge{Up: false, Reason: reason, Cause: cause, Time: time.Now(), State: st}) {
					return nil
				}
			}
		case reported && !forced:
			// still up: nothing to report
		case pending:
			continue // still settling; keep the cause for the edge
		case !settled && w.opts.Settle > 0:
			pending = true
			if settle == nil {
				settle = time.NewTimer(w.opts.Settle)
			} else {
				settle.Reset(w.opts.Settle)
			}
			settleC = settle.C
			w.log.Debug("link usable; waiting for it to settle", "settle", w.opts.Settle, "reason", reason)
			continue // keep the cause for the edge
		default:
			forced = false
			sessIface, sessAddrs = iface, sessionAddrs(st, iface)
			if !emit(Edge{Up: true, Iface: iface, Reason: reason, Cause: cause, Time: time.Now(), State: st}) {
				return nil
			}
		}
		cause = "netlink"
	}
}

// NetlinkSubscriber subscribes to link, address and route changes.
type NetlinkSubscriber struct {
	Namespace *netns.NsHandle // nil: the current namespace
	// Noted, if set, is called with every error netlink reports that the
	// subscription survives (see Subscribe).
	Noted func(error)
}

var errClosed = errors.New("netlink update channel closed")

// Subscribe implements Subscriber.
//
// It does not ask the kernel to replay the current objects (ListExisting):
// the watcher re-reads the whole state after subscribing, through a socket
// of its own, so the replay would only repeat it. And the replay request is
// sent from the subscribed socket to its own group address, so the kernel
// also multicasts the request itself to every other listener of those
// groups in the namespace: each other daemon got a message from a user
// port. That is the "Wrong sender portid N, expected 0" error; treated as a
// dead socket, it made two daemons resubscribe, and so replay, in turn
// without end. A dump through a Handle (Read) is sent to the kernel alone
// and reaches no group.
//
// What vishvananda/netlink (v1.3.1) does with errors: it calls the
// ErrorCallback and carries on for a message from a port other than the
// kernel's ("Wrong sender portid"), for an NLMSG_ERROR in the stream, for a
// message it cannot decode and for an interrupted dump; only when a receive
// fails (ENOBUFS after an overflow, a closed socket) does it call the
// callback and then close the update channel. So the channel's close is the
// one sign of death. A message from another port says nothing about our
// links and is only noted; every other error the subscription survives may
// hide a change, so it is noted and gives a hint (a re-read, which costs
// three dumps and sends nothing to any group).
func (s NetlinkSubscriber) Subscribe(done <-chan struct{}, hint func()) (<-chan error, error) {
	dead := make(chan error, 1)
	var (
		mu   sync.Mutex
		last error // the error reported just before a channel closed
	)
	onError := func(err error) {
		select {
		case <-done:
			return // our own close of the sockets: receives fail, as they should
		default:
		}
		if s.Noted != nil {
			s.Noted(err)
		}
		if foreignSender(err) {
			return
		}
		mu.Lock()
		last = err
		mu.Unlock()
		hint()
	}
	die := func() {
		mu.Lock()
		err := last
		mu.Unlock()
		if err == nil {
			err = errClosed
		} else {
			err = fmt.Errorf("%w: %w", errClosed, err)
		}
		select {
		case dead <- err:
		default:
		}
	}
	const rcvbuf = 1 << 20 // a burst of route changes must not overflow (ENOBUFS)
	lch := make(chan netlink.LinkUpdate, 64)
	if err := netlink.LinkSubscribeWithOptions(lch, done, netlink.LinkSubscribeOptions{
		Namespace: s.Namespace, ErrorCallback: onError, ReceiveBufferSize: rcvbuf,
	}); err != nil {
		return nil, errkind.WrapTemporary(errkind.Internal, "subscribe to netlink link updates", err)
	}
	go forward(lch, hint, die)
	ach := make(chan netlink.AddrUpdate, 64)
	if err := netlink.AddrSubscribeWithOptions(ach, done, netlink.AddrSubscribeOptions{
		Namespace: s.Namespace, ErrorCallback: onError, ReceiveBufferSize: rcvbuf,
	}); err != nil {
		return nil, errkind.WrapTemporary(errkind.Internal, "subscribe to netlink address updates", err)
	}
	go forward(ach, hint, die)
	rch := make(chan netlink.RouteUpdate, 64)
	if err := netlink.RouteSubscribeWithOptions(rch, done, netlink.RouteSubscribeOptions{
		Namespace: s.Namespace, ErrorCallback: onError, ReceiveBufferSize: rcvbuf,
	}); err != nil {
		return nil, errkind.WrapTemporary(errkind.Internal, "subscribe to netlink route updates", err)
	}
	go forward(rch, hint, die)
	return dead, nil
}

// foreignSender reports whether err is vishvananda/netlink's report of a
// message that came from a user port rather than the kernel: another
// program's request to a group address (see Subscribe). The library gives
// no typed error for it, so this matches its text; were the text to change,
// such a message would cost a re-read, never a resubscription.
func foreignSender(err error) bool {
	return strings.HasPrefix(err.Error(), "Wrong sender portid")
}

// forward turns every update into a hint and reports the channel's close:
// the subscription's receive loop ended.
func forward[T any](ch <-chan T, hint func(), die func()) {
	for range ch {
		hint()
	}
	die()
}
