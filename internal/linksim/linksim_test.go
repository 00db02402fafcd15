package linksim

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// serve runs handler for every connection to a loopback listener.
func serve(t testing.TB, handler func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); handler(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-accepting; wg.Wait() })
	return ln.Addr().String()
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// sender waits for the client's "go", then writes n bytes and
// closes. Waiting orders the test: without it a cut could reset the
// connection before the client's dial has even returned.
func sender(n int) func(net.Conn) {
	return func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
			return
		}
		c.Write(payload(n))
	}
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	c.Write([]byte("go"))
	return c
}

func txTime(n int64, rate int) time.Duration {
	return time.Duration(float64(n) * 8 / float64(rate) * float64(time.Second))
}

func near(a, b time.Duration) bool {
	d := a - b
	return d < time.Millisecond && d > -time.Millisecond
}

// The accounting: exact bytes, line time bytes*8/rate, and a busy time
// that lies between the floor plus one delay and the wall-clock span (the
// data cannot arrive before it is due; both bounds are safe under load).
func TestPacingAccounting(t *testing.T) {
	const n, rate, delay = 200_000, 8_000_000, 20 * time.Millisecond
	link := &Link{Down: rate, Up: rate, Delay: delay}
	addr, stop := link.Proxy(serve(t, sender(n)))
	defer stop()
	t0 := time.Now()
	c := dial(t, addr)
	got, err := io.ReadAll(c)
	elapsed := time.Since(t0)
	if err != nil || !bytes.Equal(got, payload(n)) {
		t.Fatalf("read %d bytes, err %v: want the %d bytes sent, unchanged", len(got), err, n)
	}
	s := link.Stats()
	t.Logf("%v in %v wall clock", s, elapsed)
	if s.DownBytes != n || s.UpBytes != 2 || s.Conns != 1 {
		t.Errorf("stats %+v: want %d bytes down, 2 up, 1 conn", s, n)
	}
	floor := txTime(n, rate)
	if !near(s.DownTx, floor) || s.Floor() != s.DownTx {
		t.Errorf("line time %v, want %v", s.DownTx, floor)
	}
	if s.Busy < floor+delay || s.Busy > elapsed {
		t.Errorf("busy %v, want between %v and the wall clock %v", s.Busy, floor+delay, elapsed)
	}
	if elapsed < floor+delay {
		t.Errorf("transfer took %v, faster than the line allows (%v)", elapsed, floor+delay)
	}
}

// Two connections share one line: together they need the line time of the
// sum of their bytes.
func TestSharedLine(t *testing.T) {
	const n, rate = 100_000, 8_000_000
	link := &Link{Down: rate, Up: rate}
	addr, stop := link.Proxy(serve(t, sender(n)))
	defer stop()
	t0 := time.Now()
	var wg sync.WaitGroup
	for range 2 {
		c := dial(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := io.ReadAll(c)
			if err != nil || len(got) != n {
				t.Errorf("read %d, err %v", len(got), err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	s := link.Stats()
	floor := txTime(2*n, rate)
	if s.DownBytes != 2*n || !near(s.DownTx, floor) {
		t.Errorf("stats %v, want %d bytes and %v line time", s, 2*n, floor)
	}
	if elapsed < floor || s.Busy < floor {
		t.Errorf("two connections done in %v (busy %v): faster than one shared line allows (%v)", elapsed, s.Busy, floor)
	}
}

// A round trip through the link costs two one-way delays.
func TestDelayRoundTrip(t *testing.T) {
	const delay = 30 * time.Millisecond
	link := &Link{Delay: delay}
	echo := serve(t, func(c net.Conn) { io.Copy(c, c) })
	addr, stop := link.Proxy(echo)
	defer stop()
	c := dial(t, addr) // sends "go"
	t0 := time.Now()
	c.Write([]byte("ping"))
	buf := make([]byte, 6)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "goping" {
		t.Fatalf("echo %q, err %v", buf, err)
	}
	if rtt := time.Since(t0); rtt < 2*delay {
		t.Errorf("round trip %v, want at least %v", rtt, 2*delay)
	}
	if s := link.Stats(); s.Busy < 2*delay || s.UpBytes != 6 || s.DownBytes != 6 {
		t.Errorf("stats %v, want 6 bytes each way and at least %v busy", s, 2*delay)
	}
}

func TestCutResetExact(t *testing.T) {
	for _, after := range []int64{0, 1, 4095, 12345, 99_999} {
		link := &Link{Down: 50_000_000, Chunk: 1000, ConnFault: func(n int) *Fault {
			if n == 1 {
				return &Fault{Dir: Down, After: after, Mode: Reset}
			}
			return nil
		}}
		addr, stop := link.Proxy(serve(t, sender(100_000)))
		// A cut before the first byte may reset the connection before
		// the dial even returns.
		var got []byte
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(20 * time.Second))
			// The kernel reports a reset once: to the write, when it
			// comes that early, and the read then sees EOF.
			_, err = c.Write([]byte("go"))
			var rerr error
			got, rerr = io.ReadAll(c)
			if rerr != nil {
				err = rerr
			}
			c.Close()
		}
		if int64(len(got)) != after || !bytes.Equal(got, payload(100_000)[:after]) {
			t.Errorf("cut after %d: read %d bytes (err %v)", after, len(got), err)
		}
		if err == nil {
			t.Errorf("cut after %d: clean EOF, want a reset", after)
		}
		// The fault was for the first connection only.
		c2 := dial(t, addr)
		if got, err := io.ReadAll(c2); len(got) != 100_000 || err != nil {
			t.Errorf("second connection: %d bytes, err %v", len(got), err)
		}
		stop()
	}
}

func TestCutBlackHoleExact(t *testing.T) {
	const after = 7777
	link := &Link{Chunk: 1000, ConnFault: func(int) *Fault { return &Fault{Dir: Down, After: after, Mode: BlackHole} }}
	addr, stop := link.Proxy(serve(t, sender(50_000)))
	defer stop()
	c := dial(t, addr)
	got := make([]byte, 0, 50_000)
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var err error
	for {
		var n int
		n, err = c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	if len(got) != after {
		t.Errorf("read %d bytes, want exactly %d", len(got), after)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("err %v, want a silent line (read deadline), not a close", err)
	}
	// Nothing passes upwards either.
	if _, err := c.Write([]byte("hello?\r\n")); err != nil {
		t.Errorf("write into the black hole: %v (the socket must stay open)", err)
	}
	if s := link.Stats(); s.UpBytes != 2 {
		t.Errorf("%d bytes passed up, want only the 2 sent before the black hole", s.UpBytes)
	}
}

func TestCutUp(t *testing.T) {
	const after = 5000
	received := make(chan int, 1)
	target := serve(t, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		received <- int(n)
	})
	link := &Link{Up: 10_000_000, ConnFault: func(int) *Fault { return &Fault{Dir: Up, After: after, Mode: Reset} }}
	addr, stop := link.Proxy(target)
	defer stop()
	c := dial(t, addr) // 2 bytes
	c.Write(payload(20_000))
	if n := <-received; n != after {
		t.Errorf("target received %d bytes, want %d", n, after)
	}
}

// The whole link goes down: the live connection is cut after exactly N
// bytes, new ones fail until Restore.
func TestGlobalCut(t *testing.T) {
	link := &Link{Chunk: 512}
	addr, stop := link.Proxy(serve(t, sender(30_000)))
	defer stop()
	link.Cut(Fault{Dir: Down, After: 10_000, Mode: Reset})
	c := dial(t, addr)
	if got, _ := io.ReadAll(c); len(got) != 10_000 {
		t.Errorf("read %d bytes, want 10000 before the link went down", len(got))
	}
	// While down: a reset, at the dial or at the first read.
	if c2, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		c2.SetDeadline(time.Now().Add(10 * time.Second))
		if got, err := io.ReadAll(c2); len(got) != 0 || err == nil {
			t.Errorf("while down: read %d bytes, err %v; want a reset", len(got), err)
		}
		c2.Close()
	}
	link.Restore()
	c3 := dial(t, addr)
	if got, err := io.ReadAll(c3); len(got) != 30_000 || err != nil {
		t.Errorf("after Restore: %d bytes, err %v", len(got), err)
	}
}

func TestStopClosesConnections(t *testing.T) {
	target := serve(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	link := &Link{}
	addr, stop := link.Proxy(target)
	c := dial(t, addr)
	c.Write([]byte("x"))
	stop()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("after stop: err %v, want the connection closed", err)
	}
}

// BenchmarkModem moves 280 KB down a 56 kbit/s line and reports the link
// accounting; the CPU it takes (user+sys in the -benchtime=1x output of
// `time`) shows that pacing sleeps instead of spinning. It takes ~40 s.
func BenchmarkModem(b *testing.B) {
	const n = 280_000
	for b.Loop() {
		link := &Link{Down: 56_000, Up: 33_600, Delay: 75 * time.Millisecond}
		addr, stop := link.Proxy(serve(b, sender(n)))
		c := dial(b, addr)
		c.SetDeadline(time.Now().Add(2 * time.Minute))
		got, err := io.ReadAll(c)
		if err != nil || len(got) != n {
			b.Fatalf("read %d, err %v", len(got), err)
		}
		stop()
		s := link.Stats()
		b.ReportMetric(s.Busy.Seconds(), "link-busy-s")
		b.ReportMetric(s.Floor().Seconds(), "floor-s")
	}
}

// Busy is the metric the fetch benchmark reports: a lock-step exchange of
// K commands keeps the line busy for K round trips, a pipelined one for
// about one, although both move the same bytes.
func TestBusyShowsRoundTrips(t *testing.T) {
	const k, delay = 20, 10 * time.Millisecond
	echo := serve(t, func(c net.Conn) { io.Copy(c, c) })
	cmd := []byte("RETR 1\r\n")
	run := func(pipelined bool) Stats {
		link := &Link{Down: 1_000_000, Up: 1_000_000, Delay: delay}
		addr, stop := link.Proxy(echo)
		defer stop()
		c := dial(t, addr) // sends "go"
		buf := make([]byte, 2+k*len(cmd))
		if pipelined {
			c.Write(bytes.Repeat(cmd, k))
			if _, err := io.ReadFull(c, buf); err != nil {
				t.Fatal(err)
			}
		} else {
			if _, err := io.ReadFull(c, buf[:2]); err != nil {
				t.Fatal(err)
			}
			for range k {
				c.Write(cmd)
				if _, err := io.ReadFull(c, buf[:len(cmd)]); err != nil {
					t.Fatal(err)
				}
			}
		}
		return link.Stats()
	}
	lock, pipe := run(false), run(true)
	t.Logf("lock step: %v\npipelined: %v", lock, pipe)
	if lock.DownBytes != pipe.DownBytes || lock.UpBytes != pipe.UpBytes {
		t.Fatalf("different bytes: %v vs %v", lock, pipe)
	}
	if lock.Busy < 2*k*delay {
		t.Errorf("lock step busy %v, want at least %d round trips (%v)", lock.Busy, k, 2*k*delay)
	}
	if pipe.Busy >= lock.Busy/2 {
		t.Errorf("pipelined busy %v, want far below lock step %v", pipe.Busy, lock.Busy)
	}
}

// An inbound proxy (a relay connecting to us) counts what its client sends
// as Down, the way the bytes cross a real line, and Open sees its
// connection until it closes.
func TestInboundDirection(t *testing.T) {
	got := make(chan int, 1)
	target := serve(t, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _ := io.Copy(io.Discard, c)
		got <- int(n)
	})
	l := &Link{Down: 1 << 20, Up: 1 << 20}
	p, err := l.ListenInbound(target)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dial(t, p.Addr())
	if _, err := c.Write(payload(3000)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.Open() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := l.Open(); n != 1 {
		t.Fatalf("Open() = %d while a connection forwards, want 1", n)
	}
	c.Close()
	if n := <-got; n != 3002 { // dial's "go" and the payload
		t.Fatalf("target got %d bytes, want 3002", n)
	}
	for l.Open() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	st := l.Stats()
	if st.DownBytes != 3002 || st.UpBytes != 0 {
		t.Fatalf("stats %+v: want 3002 bytes down (relay to us), 0 up", st)
	}
	if n := l.Open(); n != 0 {
		t.Fatalf("Open() = %d after close, want 0", n)
	}
}
