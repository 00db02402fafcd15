// Package linksim simulates a slow or failing uplink in user space, for
// tests, benchmarks and `linkctl demo`: a TCP proxy on 127.0.0.1 whose
// connections all share one simulated line per direction, the way every
// connection over a modem shares its one pipe.
//
// The flow of one byte: a connection's pump for direction d (Down: from the
// target to the client; Up: from the client to the target) reads what the
// sender wrote, up to one chunk (about 10 ms of line time), and reserves
// the line for it: the transmission starts when the line is free (after
// every byte of every connection reserved before) and lasts bytes*8/rate.
// The chunk becomes visible to the receiver one Delay after its
// transmission ends, as on a real line where bits take time to cross. The
// pump then sleeps until shortly (250 ms) before the transmission it just
// reserved starts, and reads again: the sender feels the line's back
// pressure, at most 250 ms of line time per connection waits ahead of the
// line (a modem's buffer), and a late wake-up on a loaded machine does not leave the line
// idle. A writer goroutine delivers chunks at their due time. Pacing is by sleeping, so a
// 56 kbit/s transfer costs next to no CPU.
//
// Faults: a cut after N bytes in one direction, either for every
// connection (Link.ConnFault, decided per connection) or for the link as a
// whole (Link.Cut, counting from the call: the link "goes down" and stays
// down for new connections until Link.Restore). A cut by Reset delivers
// exactly N bytes and then resets both sides; a cut by BlackHole delivers
// exactly N bytes and then forwards nothing more, in either direction,
// while keeping the sockets open: the peers see a silent line and must rely
// on their own timeouts.
//
// Statistics (Link.Stats) are taken from the line schedule, not from the
// wall clock: bytes each way, the transmission time each way (bytes*8/rate:
// the floor any protocol needs), and Busy, the time the link was in use,
// defined as the length of the union of the intervals [transmission start,
// delivery] of every chunk in both directions. Busy is what a user on a
// metered or dial-up line pays for: a protocol that waits for a reply
// before sending the next command keeps the line busy through each round
// trip without moving bytes, so its Busy exceeds the floor.
//
// Not simulated: the TCP handshake (a connection is up at once, where a
// real line spends about one and a half round trips before the first
// byte; compare tools that open the same number of connections), loss and
// retransmission, and MTU framing (the line carries payload bytes only).
package linksim

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Dir is a direction on the link.
type Dir int

// Directions, seen from the host behind the link (the client side).
const (
	Down Dir = iota // from the target (the server) to the client
	Up              // from the client to the target
)

func (d Dir) String() string {
	if d == Up {
		return "up"
	}
	return "down"
}

// CutMode is how a cut looks to the peers.
type CutMode int

// Cut modes.
const (
	Reset     CutMode = iota // both sides get a TCP reset
	BlackHole                // nothing more passes; the sockets stay open
)

// Fault is a cut of the line after After bytes have passed in direction Dir.
// After 0 cuts before the first byte.
type Fault struct {
	Dir   Dir
	After int64
	Mode  CutMode
}

// Link is a simulated line. Set the fields before the first Proxy call;
// the zero value is an unlimited line without delay.
type Link struct {
	Down, Up int           // line rate in bits per second each way; 0 = unlimited
	Delay    time.Duration // one-way delay, added to every byte's delivery
	Chunk    int           // bytes per pacing step; 0 = about 10 ms of line time

	// ConnFault, when set, is asked once per connection (numbered from 1
	// in accept order) and may return a fault for that connection alone.
	ConnFault func(n int) *Fault

	mu        sync.Mutex
	next      [2]time.Time // when each line is free
	bytes     [2]int64     // delivered
	tx        [2]time.Duration
	intervals [][2]time.Time // busy intervals, merged lazily
	nconn     int
	global    *Fault
	gcount    int64 // bytes counted against the global fault since Cut
	down      bool  // the global fault fired; new connections fail too
	conns     map[*conn]struct{}
}

// Stats is a snapshot of the link's accounting.
type Stats struct {
	DownBytes, UpBytes int64         // bytes delivered each way
	DownTx, UpTx       time.Duration // line time each way: bytes*8/rate
	Busy               time.Duration // union of [transmission start, delivery] over both ways
	Conns              int           // connections accepted
}

// Floor is the least time the delivered bytes could have taken on this
// duplex line: the busier direction's transmission time.
func (s Stats) Floor() time.Duration { return max(s.DownTx, s.UpTx) }

func (s Stats) String() string {
	return fmt.Sprintf("down %d B (%.2fs), up %d B (%.2fs), link busy %.2fs, floor %.2fs, %d conns",
		s.DownBytes, s.DownTx.Seconds(), s.UpBytes, s.UpTx.Seconds(), s.Busy.Seconds(), s.Floor().Seconds(), s.Conns)
}

// Stats returns the accounting so far.
func (l *Link) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.merge()
	var busy time.Duration
	for _, iv := range l.intervals {
		busy += iv[1].Sub(iv[0])
	}
	return Stats{DownBytes: l.bytes[Down], UpBytes: l.bytes[Up], DownTx: l.tx[Down], UpTx: l.tx[Up],
		Busy: busy, Conns: l.nconn}
}

// ResetStats zeroes the accounting (between benchmark rounds).
func (l *Link) ResetStats() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bytes = [2]int64{}
	l.tx = [2]time.Duration{}
	l.intervals = nil
	l.nconn = 0
}

// merge sorts and unites the busy intervals. Called with l.mu held.
func (l *Link) merge() {
	if len(l.intervals) < 2 {
		return
	}
	slices.SortFunc(l.intervals, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
	out := l.intervals[:1]
	for _, iv := range l.intervals[1:] {
		last := &out[len(out)-1]
		if !iv[0].After(last[1]) {
			if iv[1].After(last[1]) {
				last[1] = iv[1]
			}
			continue
		}
		out = append(out, iv)
	}
	l.intervals = out
}

// Cut makes the whole link fail after f.After more bytes in f.Dir, counted
// over all connections from now: every connection is cut then, and new
// connections fail (reset at once, or accepted and never served) until
// Restore.
func (l *Link) Cut(f Fault) {
	l.mu.Lock()
	l.global = &f
	l.gcount = 0
	l.down = f.After <= 0
	var now []*conn
	if l.down {
		for c := range l.conns {
			now = append(now, c)
		}
	}
	l.mu.Unlock()
	for _, c := range now {
		c.cut(f.Mode)
	}
}

// Restore brings the link back up for new connections; connections cut
// before stay cut.
func (l *Link) Restore() {
	l.mu.Lock()
	l.global, l.down, l.gcount = nil, false, 0
	l.mu.Unlock()
}

func (l *Link) rate(d Dir) int {
	if d == Up {
		return l.Up
	}
	return l.Down
}

func (l *Link) chunk(d Dir) int {
	if l.Chunk > 0 {
		return l.Chunk
	}
	r := l.rate(d)
	if r <= 0 {
		return 32 << 10
	}
	return min(max(r/800, 64), 64<<10) // 10 ms of line time
}

// reserve books the line of direction d for n bytes and returns when their
// transmission starts and when they are delivered.
func (l *Link) reserve(d Dir, n int) (start, due time.Time) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	start = now
	if l.next[d].After(start) {
		start = l.next[d]
	}
	var tx time.Duration
	if r := l.rate(d); r > 0 {
		tx = time.Duration(float64(n) * 8 / float64(r) * float64(time.Second))
	}
	end := start.Add(tx)
	l.next[d] = end
	l.tx[d] += tx
	due = end.Add(l.Delay)
	if due.After(start) {
		l.intervals = append(l.intervals, [2]time.Time{start, due})
		if len(l.intervals) > 4096 {
			l.merge()
		}
	}
	return start, due
}

// Proxy listens on 127.0.0.1:0 and forwards every connection to target
// over the link. stop closes the listener and every connection and waits
// for their goroutines. It panics if it cannot listen on loopback.
func (l *Link) Proxy(target string) (addr string, stop func()) {
	p, err := l.Listen(target)
	if err != nil {
		panic(err)
	}
	return p.Addr(), p.Close
}

// Proxy is one listening end of a link.
type Proxy struct {
	l      *Link
	ln     net.Listener
	target string
	// inbound: the connecting side is the far end of the line (a relay
	// delivering to us) and the target is the host behind the link, so
	// what the client sends travels Down.
	inbound bool
	done    chan struct{}
	wg      sync.WaitGroup

	closing bool // under l.mu: no more connections are registered
	once    sync.Once
}

// Listen is Proxy with an error instead of a panic.
func (l *Link) Listen(target string) (*Proxy, error) { return l.listen(target, false) }

func (l *Link) listen(target string, inbound bool) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("linksim: listen on 127.0.0.1: %w", err)
	}
	p := &Proxy{l: l, ln: ln, target: target, inbound: inbound, done: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// ListenInbound is Listen for connections that come from the far side of
// the line to the host behind it (a relay delivering our mail after ETRN):
// the bytes the connecting client sends cross the line Down, the target's
// replies Up. Faults count directions the same way.
func (l *Link) ListenInbound(target string) (*Proxy, error) { return l.listen(target, true) }

// Open counts the connections of every proxy of the link that are still
// forwarding.
func (l *Link) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() {
	p.once.Do(func() {
		close(p.done)
		p.ln.Close()
		l := p.l
		l.mu.Lock()
		p.closing = true
		var cs []*conn
		for c := range l.conns {
			if c.p == p {
				cs = append(cs, c)
			}
		}
		l.mu.Unlock()
		for _, c := range cs {
			c.closeAll()
		}
	})
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(client)
		}()
	}
}

type conn struct {
	l              *Link
	p              *Proxy
	client, server net.Conn
	fault          *Fault
	count          [2]int64 // bytes passed each way, for the per-connection fault

	mu      sync.Mutex
	dead    bool // cut or closed: nothing more passes
	holeCut bool // cut by black hole: keep reading and discarding
	closed  chan struct{}
}

func (p *Proxy) serve(client net.Conn) {
	l := p.l
	l.mu.Lock()
	l.nconn++
	n := l.nconn
	down := l.down
	var mode CutMode
	if l.global != nil {
		mode = l.global.Mode
	}
	l.mu.Unlock()
	if down {
		// The line is dead: a reset, or a connection that never answers.
		if mode == Reset {
			resetClose(client)
			return
		}
		go io.Copy(io.Discard, client)
		<-p.done
		client.Close()
		return
	}
	server, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		resetClose(client)
		return
	}
	c := &conn{l: l, p: p, client: client, server: server, closed: make(chan struct{})}
	if l.ConnFault != nil {
		c.fault = l.ConnFault(n)
	}
	l.mu.Lock()
	if p.closing {
		// Close ran while the target was dialed: it could not see c.
		l.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	if l.conns == nil {
		l.conns = map[*conn]struct{}{}
	}
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
	}()
	if c.fault != nil && c.fault.After <= 0 {
		c.cut(c.fault.Mode)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	fromClient, toClient := Up, Down
	if p.inbound {
		fromClient, toClient = Down, Up
	}
	go func() { defer wg.Done(); c.pump(fromClient, client, server) }()
	go func() { defer wg.Done(); c.pump(toClient, server, client) }()
	wg.Wait()
	c.closeAll()
}

// allow decides how many of n bytes may pass in direction d before a cut,
// and whether the cut comes after them.
func (c *conn) allow(d Dir, n int) (int, *CutMode) {
	allowed := int64(n)
	var cut *CutMode
	if f := c.fault; f != nil && f.Dir == d {
		left := f.After - c.count[d]
		if left <= allowed {
			allowed, cut = max(left, 0), &f.Mode
		}
	}
	c.count[d] += allowed
	l := c.l
	l.mu.Lock()
	if g := l.global; g != nil && g.Dir == d && !l.down {
		left := g.After - l.gcount
		if left <= allowed {
			allowed = max(left, 0)
			m := g.Mode
			cut = &m
			l.down = true
		}
		l.gcount += allowed
	}
	l.mu.Unlock()
	return int(allowed), cut
}

// lookahead is how far ahead of the line a pump may reserve: the slack a
// sleeping pump has before its lateness would leave the line idle, and so
// the modem's buffer (1.75 KB at 56 kbit/s). 50 ms was not enough on a
// loaded 2-core machine, where the process may not run for 100-500 ms:
// a 280 KB transfer then showed 3 to 7% of idle line that a real modem
// would not have.
const lookahead = 250 * time.Millisecond

type chunk struct {
	data []byte
	due  time.Time
	cut  *CutMode // after data: cut the connection (and, if global, all)
	eof  bool     // after data: half-close towards the receiver
}

// pump moves bytes from src to dst in direction d over the shared line.
func (c *conn) pump(d Dir, src, dst net.Conn) {
	l := c.l
	q := make(chan chunk, 64)
	wdone := make(chan struct{})
	go c.writer(d, q, dst, wdone)
	defer func() { close(q); <-wdone }()
	buf := make([]byte, l.chunk(d))
	for {
		n, err := src.Read(buf)
		if c.isDead() {
			if c.isHole() && err == nil {
				continue // black hole: read and forget
			}
			return
		}
		if n > 0 {
			allowed, cut := c.allow(d, n)
			var ck chunk
			if allowed > 0 {
				start, due := l.reserve(d, allowed)
				ck = chunk{data: slices.Clone(buf[:allowed]), due: due}
				// Read ahead of the line by a little, so that a late
				// wake-up on a loaded machine does not leave it idle.
				if !c.sleepUntil(start.Add(-lookahead)) {
					return
				}
			} else {
				ck.due = time.Now()
			}
			ck.cut = cut
			select {
			case q <- ck:
			case <-c.closed:
				return
			}
			if cut != nil {
				if *cut == Reset {
					return
				}
				continue // black hole: keep draining the sender
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				select {
				case q <- chunk{eof: true, due: time.Now().Add(l.Delay)}:
				case <-c.closed:
				}
			} else {
				// The sender reset or failed: pass the failure on.
				c.closeAll()
			}
			return
		}
	}
}

func (c *conn) writer(d Dir, q <-chan chunk, dst net.Conn, done chan<- struct{}) {
	defer close(done)
	// After a cut or a failure the writer keeps draining q, so that its
	// pump never blocks on a full queue.
	stopped := false
	for ck := range q {
		if stopped || !c.sleepUntil(ck.due) || c.isDead() {
			stopped = true
			continue
		}
		if len(ck.data) > 0 {
			// Counted before the write, so that a receiver that has
			// read the bytes always finds them in the stats.
			c.l.addBytes(d, len(ck.data))
			if n, err := dst.Write(ck.data); err != nil {
				c.l.addBytes(d, n-len(ck.data))
				c.closeAll()
				stopped = true
				continue
			}
		}
		if ck.cut != nil {
			c.cutAll(*ck.cut)
			stopped = true
		}
		if ck.eof {
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			stopped = true
		}
	}
}

func (l *Link) addBytes(d Dir, n int) {
	l.mu.Lock()
	l.bytes[d] += int64(n)
	l.mu.Unlock()
}

// cutAll cuts this connection and, when the global fault fired, all the
// others too.
func (c *conn) cutAll(mode CutMode) {
	l := c.l
	l.mu.Lock()
	var others []*conn
	if l.down {
		for o := range l.conns {
			if o != c {
				others = append(others, o)
			}
		}
	}
	l.mu.Unlock()
	c.cut(mode)
	for _, o := range others {
		o.cut(mode)
	}
}

func (c *conn) cut(mode CutMode) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead = true
	c.holeCut = mode == BlackHole
	c.mu.Unlock()
	if mode == Reset {
		// A reset discards what still sits in our send buffer: wait
		// until the peers have taken every byte the line delivered.
		drained(c.client, c.closed)
		drained(c.server, c.closed)
		resetClose(c.client)
		resetClose(c.server)
		c.closeAll()
	}
}

// drained waits (up to 3 s, or until stop) until conn's send queue is
// empty, i.e. the peer's kernel acknowledged every byte written to it
// (SIOCOUTQ, tcp(7)).
func drained(conn net.Conn, stop <-chan struct{}) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		queued := 0
		if err := rc.Control(func(fd uintptr) {
			queued, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
		}); err != nil || queued == 0 {
			return
		}
		select {
		case <-stop:
			return
		case <-time.After(time.Millisecond):
		}
	}
}

func (c *conn) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

func (c *conn) isHole() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.holeCut
}

func (c *conn) closeAll() {
	c.mu.Lock()
	select {
	case <-c.closed:
	default:
		close(c.closed)
	}
	c.dead = true
	c.mu.Unlock()
	c.client.Close()
	c.server.Close()
}

// sleepUntil waits for t; false if the connection closed meanwhile.
func (c *conn) sleepUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-c.closed:
			return false
		default:
			return true
		}
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-c.closed:
		return false
	case <-c.p.done:
		return false
	}
}

// resetClose closes c with a TCP reset (SO_LINGER 0) instead of a FIN.
func resetClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
