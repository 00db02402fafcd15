package linkwatch

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeNet is a Reader and Subscriber whose state the test sets.
type fakeNet struct {
	mu      sync.Mutex
	st      State
	readErr error
	hint    func()
	dead    chan error
	subs    int
	subbed  chan struct{}
}

func newFakeNet(st State) *fakeNet {
	return &fakeNet{st: st, subbed: make(chan struct{}, 16)}
}

func (f *fakeNet) Read() (State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st, f.readErr
}

func (f *fakeNet) Subscribe(done <-chan struct{}, hint func()) (<-chan error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hint = hint
	f.dead = make(chan error, 1)
	f.subs++
	f.subbed <- struct{}{}
	return f.dead, nil
}

// set changes the state and sends a hint, as a netlink message would.
func (f *fakeNet) set(st State, hint bool) {
	f.mu.Lock()
	f.st = st
	h := f.hint
	f.mu.Unlock()
	if hint && h != nil {
		h()
	}
}

func (f *fakeNet) kill() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dead <- errors.New("recvmsg: no buffer space available")
}

var (
	pppDown = State{Links: []Link{lo, with(ppp, func(l *Link) { l.AdminUp, l.Running, l.LowerUp, l.Oper = false, false, false, "down" })}}
	pppUp   = State{Links: []Link{lo, ppp}, Addrs: []Addr{loAddr, pppAddr}}
	pppNoIP = State{Links: []Link{lo, ppp}, Addrs: []Addr{loAddr}}
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func startWatcher(t *testing.T, f *fakeNet, settle time.Duration, jumps chan struct{}) *Watcher {
	t.Helper()
	if jumps == nil {
		jumps = make(chan struct{})
	}
	w, err := NewWatcher(Options{Watch: []string{"ppp*"}, Settle: settle, Reader: f, Subscriber: f,
		ClockJumps: jumps, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-f.subbed
	return w
}

func nextEdge(t *testing.T, w *Watcher) Edge {
	t.Helper()
	select {
	case e := <-w.Edges():
		return e
	case <-time.After(10 * time.Second): // a hang guard, not a speed assertion
		t.Fatal("no edge within 10s")
	}
	return Edge{}
}

func TestWatcherAlreadyUpAtStart(t *testing.T) {
	f := newFakeNet(pppUp)
	w := startWatcher(t, f, 20*time.Millisecond, nil)
	e := nextEdge(t, w)
	if !e.Up || e.Cause != "start" {
		t.Fatalf("edge = %+v, want up caused by start", e)
	}
	if up, reason, _ := w.Current(); !up || reason != "ppp0 is up with 192.0.2.7/32" {
		t.Errorf("Current = %v %q", up, reason)
	}
	f.set(pppDown, true)
	if e := nextEdge(t, w); e.Up {
		t.Fatalf("edge = %+v, want down", e)
	}
}

func TestWatcherFlapsWithinSettleGiveOneEdge(t *testing.T) {
	f := newFakeNet(pppDown)
	w := startWatcher(t, f, 300*time.Millisecond, nil)
	for range 5 {
		f.set(pppUp, true)
		f.set(pppNoIP, true)
		f.set(pppDown, true)
	}
	f.set(pppUp, true)
	if e := nextEdge(t, w); !e.Up {
		t.Fatalf("edge = %+v, want up", e)
	}
	// Edges come in order: were there a second up edge from the flaps, it
	// would arrive before this down edge.
	f.set(pppDown, true)
	if e := nextEdge(t, w); e.Up {
		t.Fatalf("edge = %+v, want down: the flaps gave more than one up edge", e)
	}
}

func TestWatcherNoAddressIsNotUp(t *testing.T) {
	f := newFakeNet(pppNoIP)
	w := startWatcher(t, f, 0, nil)
	f.set(pppNoIP, true)
	f.set(pppUp, true) // the address arrives
	e := nextEdge(t, w)
	if !e.Up || e.Cause != "netlink" {
		t.Fatalf("edge = %+v, want up from netlink", e)
	}
}

func TestWatcherResubscribesAndReReads(t *testing.T) {
	f := newFakeNet(pppUp)
	w := startWatcher(t, f, 0, nil)
	if e := nextEdge(t, w); !e.Up {
		t.Fatalf("edge = %+v, want up", e)
	}
	// The link goes down while the socket overflowed: no hint arrives, the
	// channel closes. The resubscription must re-read and see it.
	f.set(pppDown, false)
	f.kill()
	<-f.subbed
	if e := nextEdge(t, w); e.Up {
		t.Fatalf("edge = %+v, want down after resubscribing", e)
	}
	if f.subs != 2 {
		t.Errorf("subscribed %d times, want 2", f.subs)
	}
}

func TestWatcherClockJumpIsAnUpEdge(t *testing.T) {
	f := newFakeNet(pppUp)
	jumps := make(chan struct{})
	w := startWatcher(t, f, 10*time.Millisecond, jumps)
	if e := nextEdge(t, w); !e.Up {
		t.Fatalf("edge = %+v, want up", e)
	}
	jumps <- struct{}{}
	if e := nextEdge(t, w); !e.Up || e.Cause != "clock jump" {
		t.Fatalf("edge = %+v, want up caused by the clock jump", e)
	}
	// A jump while down is no edge: the next edge is the down.
	f.set(pppDown, true)
	if e := nextEdge(t, w); e.Up {
		t.Fatalf("edge = %+v, want down", e)
	}
	jumps <- struct{}{}
	f.set(pppNoIP, true)
	f.set(pppDown, true)
	f.set(pppUp, true)
	if e := nextEdge(t, w); !e.Up {
		t.Fatalf("edge = %+v, want up", e)
	}
	f.set(pppDown, true)
	if e := nextEdge(t, w); e.Up {
		t.Fatalf("edge = %+v, want down: the jump while down gave an extra edge", e)
	}
}

func TestWatcherRetriesAFailedRead(t *testing.T) {
	f := newFakeNet(pppUp)
	f.readErr = errors.New("netlink: resource temporarily unavailable")
	jumps := make(chan struct{})
	w, err := NewWatcher(Options{Watch: []string{"ppp0"}, Reader: f, Subscriber: f, ClockJumps: jumps, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	<-f.subbed
	f.mu.Lock()
	f.readErr = nil
	f.mu.Unlock()
	if e := nextEdge(t, w); !e.Up {
		t.Fatalf("edge = %+v, want up once reading works again", e)
	}
}

func TestClockJumpsTimerfd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := clockJumps(ctx)
	if err != nil {
		t.Fatalf("clockJumps: %v", err)
	}
	select {
	case <-ch:
		t.Fatal("a clock jump reported while nobody set the clock")
	default:
	}
	cancel()
}

// A link that stays up while the address it came up with is replaced (an
// LTE modem or a VPN reconnecting) is a new session: one more up edge.
// The first IPv6 address after IPv4 and IPv6 temporary addresses coming
// and going are not.
func TestWatcherNewAddressIsAnUpEdge(t *testing.T) {
	f := newFakeNet(pppUp)
	w := startWatcher(t, f, 20*time.Millisecond, nil)
	if e := nextEdge(t, w); !e.Up {
		t.Fatalf("edge = %+v, want up", e)
	}
	v6 := Addr{Link: 3, Prefix: pfx("2001:db8::7/64")}
	temp := Addr{Link: 3, Prefix: pfx("2001:db8::99/64"), Temporary: true}
	temp2 := Addr{Link: 3, Prefix: pfx("2001:db8::98/64"), Temporary: true}
	newAddr := Addr{Link: 3, Prefix: pfx("198.51.100.9/32")}
	for _, addrs := range [][]Addr{
		{loAddr, pppAddr, v6},        // IPv6 arrives later: same session
		{loAddr, pppAddr, v6, temp},  // a temporary address appears
		{loAddr, pppAddr, v6, temp2}, // and is rotated
	} {
		f.set(State{Links: []Link{lo, ppp}, Addrs: addrs}, true)
		// Ten settle periods for an edge to show up that should not. (Under
		// load this can only miss a wrong edge, never invent one.)
		time.Sleep(200 * time.Millisecond)
		select {
		case e := <-w.Edges():
			t.Fatalf("addresses %v gave an edge %+v: the session did not change", addrs, e)
		default:
		}
	}
	// The modem reconnects: the new address comes before the old one goes,
	// so the link is never without one.
	f.set(State{Links: []Link{lo, ppp}, Addrs: []Addr{loAddr, pppAddr, newAddr, v6}}, true)
	f.set(State{Links: []Link{lo, ppp}, Addrs: []Addr{loAddr, newAddr, v6}}, true)
	e := nextEdge(t, w)
	if !e.Up || e.Cause != "new address" {
		t.Fatalf("edge = %+v, want up caused by a new address", e)
	}
	f.set(pppDown, true)
	if e := nextEdge(t, w); e.Up {
		t.Fatalf("edge = %+v, want down (no further up edge)", e)
	}
}

// dyingNet is a Subscriber whose every subscription is dead at once (a
// socket that overflows or fails as soon as it exists).
type dyingNet struct {
	*fakeNet
	subs atomic.Int64
}

func (d *dyingNet) Subscribe(done <-chan struct{}, hint func()) (<-chan error, error) {
	d.subs.Add(1)
	ch := make(chan error, 1)
	ch <- errors.New("recvmsg: no buffer space available")
	return ch, nil
}

// A subscription that dies as soon as it is made is retried with a
// growing delay (100 ms doubling, with jitter), not in a busy loop; the
// state is still re-read at every death, and edges still come.
func TestWatcherResubscribeBackoff(t *testing.T) {
	f := &dyingNet{fakeNet: newFakeNet(pppUp)}
	w, err := NewWatcher(Options{Watch: []string{"ppp0"}, Reader: f, Subscriber: f,
		ClockJumps: make(chan struct{}), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	if e := nextEdge(t, w); !e.Up {
		t.Fatalf("edge = %+v, want up", e)
	}
	time.Sleep(1500 * time.Millisecond)
	cancel()
	<-done
	// Delays of at least 50, 100, 200, 400 and 800 ms: 5 subscriptions at
	// most in 1.5 s (the first one included).
	c := w.Counters()
	if n := f.subs.Load(); n > 5 || n < 2 || c.Subscriptions != uint64(n) || c.Deaths != uint64(n) {
		t.Errorf("%d subscriptions in 1.5 s (counters %+v); want 2 to 5, each one dead", n, c)
	}
	if c.Reads > 2*c.Subscriptions {
		t.Errorf("%d reads for %d subscriptions: want at most two each (on subscribing, on dying)", c.Reads, c.Subscriptions)
	}
}
