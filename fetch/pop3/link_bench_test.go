package pop3

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkctl/linkctl/fetch/pop3/pop3test"
)

// slowLink is one direction of a simulated modem link: octets are sent in
// segments, each taking len/rate on the wire (one segment at a time), and
// arrive delay later. Time is scaled by scale (10: ten times faster) so a
// benchmark does not take minutes; ratios are unchanged.
type slowLink struct {
	rate  float64 // octets per second
	delay time.Duration
	mu    sync.Mutex
	free  time.Time // when the wire is next idle
	segs  chan seg
	busy  time.Duration
}

type seg struct {
	b  []byte
	at time.Time
}

func newSlowLink(bitsPerSec float64, delay time.Duration, scale float64) *slowLink {
	return &slowLink{rate: bitsPerSec / 8 * scale, delay: time.Duration(float64(delay) / scale), segs: make(chan seg, 1<<16)}
}

func (l *slowLink) send(p []byte) {
	const mtu = 512
	for len(p) > 0 {
		n := min(len(p), mtu)
		l.mu.Lock()
		now := time.Now()
		start := l.free
		if start.Before(now) {
			start = now
		}
		d := time.Duration(float64(n) / l.rate * float64(time.Second))
		l.free = start.Add(d)
		l.busy += d
		l.segs <- seg{b: append([]byte(nil), p[:n]...), at: l.free.Add(l.delay)}
		l.mu.Unlock()
		p = p[n:]
	}
}

// linkConn is one end: it writes into out and reads from in.
type linkConn struct {
	net.Conn // for the methods not overridden; never used for I/O
	in, out  *slowLink
	rest     []byte
	closed   chan struct{}
	once     *sync.Once
}

func (c *linkConn) Read(p []byte) (int, error) {
	if len(c.rest) == 0 {
		select {
		case s := <-c.in.segs:
			time.Sleep(time.Until(s.at))
			c.rest = s.b
		case <-c.closed:
			return 0, io.EOF
		}
	}
	n := copy(p, c.rest)
	c.rest = c.rest[n:]
	return n, nil
}

func (c *linkConn) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.out.send(p)
	return len(p), nil
}

func (c *linkConn) Close() error                     { c.once.Do(func() { close(c.closed) }); return nil }
func (c *linkConn) SetDeadline(time.Time) error      { return nil }
func (c *linkConn) SetReadDeadline(time.Time) error  { return nil }
func (c *linkConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkModemLink fetches 20 messages (about 94 KB, a third of the
// issue's 280 KB over three mailboxes) over a simulated 56k modem (56 kbit/s
// down, 33.6 kbit/s up, 75 ms each way), time scaled 10x, pipelined and in
// lock step, and reports the session time over the payload floor (message
// octets / downlink rate): 1.00 would be a link never waiting on a round
// trip.
func BenchmarkModemLink(b *testing.B) {
	const scale = 10
	for _, pipelining := range []bool{true, false} {
		name := "lockstep"
		if pipelining {
			name = "pipelined"
		}
		b.Run(name, func(b *testing.B) {
			var ratio, secs float64
			for i := 0; i < b.N; i++ {
				srv := &pop3test.Server{User: "u", Pass: "p", Pipelining: pipelining}
				for j := 0; j < 20; j++ { // ordinary text: no dot-stuffing overhead
					srv.Add([]byte(fmt.Sprintf("Subject: %d\n\n%s", j, strings.Repeat("a line of an ordinary message, 50 octets or so.\n", 94))))
				}
				down := newSlowLink(56000, 75*time.Millisecond, scale)
				up := newSlowLink(33600, 75*time.Millisecond, scale)
				closed, once := make(chan struct{}), &sync.Once{}
				cli := &linkConn{in: down, out: up, closed: closed, once: once}
				srvEnd := &linkConn{in: up, out: down, closed: closed, once: once}
				go srv.Serve(srvEnd)
				start := time.Now()
				c, err := New(cli, Options{Timeout: time.Minute})
				if err != nil {
					b.Fatal(err)
				}
				// The session POP3Source runs: CAPA, AUTH, the CAPA after
				// login with STAT/UIDL/LIST, RETRs, then DELEs with QUIT.
				if _, err := c.Capa(); err != nil {
					b.Fatal(err)
				}
				if err := c.Auth(PlainAuth("u", "p"), true); err != nil {
					b.Fatal(err)
				}
				if err := c.RefreshCapa(); err != nil {
					b.Fatal(err)
				}
				msgs, err := c.Scan()
				if err != nil {
					b.Fatal(err)
				}
				nums := make([]uint32, len(msgs))
				var payload int64
				for j, m := range msgs {
					nums[j] = m.Num
					payload += m.Size
				}
				if err := c.RetrAll(nums, func(_ int, r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }); err != nil {
					b.Fatal(err)
				}
				if err := c.DeleQuit(nums); err != nil {
					b.Fatal(err)
				}
				elapsed := time.Since(start).Seconds() * scale
				floor := float64(payload) / (56000.0 / 8)
				ratio, secs = elapsed/floor, elapsed
				cli.Close()
			}
			b.ReportMetric(ratio, "x-floor")
			b.ReportMetric(secs, "link-s")
		})
	}
}
