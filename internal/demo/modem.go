package demo

import (
	"net"
	"sync"
	"time"
)

// modem simulates a slow uplink between linkctl and the "remote" servers:
// one shared line per direction (connections queue behind each other, as
// they do on a real modem), paced at a bit rate, with a one-way delay that
// does not reduce throughput (bytes in flight are timestamped, not
// slept on). It is a set of TCP proxies on loopback, one per server.
type modem struct {
	down, up *line // down: server -> us, up: us -> server
	delay    time.Duration

	mu       sync.Mutex
	reversed []*modem // proxies sharing these lines the other way round
	lns      []net.Listener
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
}

// line paces bytes at a rate shared by every connection using it.
type line struct {
	mu    sync.Mutex
	bps   int64 // bits per second; 0: unlimited
	next  time.Time
	bytes int64 // carried so far
}

// carried returns the bytes carried and the time they occupy the line: the
// floor no protocol can beat.
func (l *line) carried() (int64, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bps <= 0 {
		return l.bytes, 0
	}
	return l.bytes, time.Duration(l.bytes * 8 * int64(time.Second) / l.bps)
}

// send reserves the time n bytes take on the line and returns when the last
// of them has left.
func (l *line) send(n int) {
	l.mu.Lock()
	l.bytes += int64(n)
	if l.bps <= 0 {
		l.mu.Unlock()
		return
	}
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	l.next = l.next.Add(time.Duration(int64(n) * 8 * int64(time.Second) / l.bps))
	until := l.next
	l.mu.Unlock()
	time.Sleep(time.Until(until))
}

func newModem(downBPS, upBPS int64, delay time.Duration) *modem {
	return &modem{down: &line{bps: downBPS}, up: &line{bps: upBPS}, delay: delay, conns: map[net.Conn]bool{}}
}

// front starts a proxy to target and returns its address.
func (m *modem) front(target string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	m.lns = append(m.lns, ln)
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.relay(c, target)
			}()
		}
	}()
	return ln.Addr().String(), nil
}

func (m *modem) track(c net.Conn, on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if on {
		m.conns[c] = true
	} else {
		delete(m.conns, c)
	}
}

func (m *modem) relay(client net.Conn, target string) {
	server, err := net.DialTimeout("tcp", target, 10*time.Second)
	if err != nil {
		client.Close()
		return
	}
	m.track(client, true)
	m.track(server, true)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); m.pipe(server, client, m.up) }()
	go func() { defer wg.Done(); m.pipe(client, server, m.down) }()
	wg.Wait()
	client.Close()
	server.Close()
	m.track(client, false)
	m.track(server, false)
}

type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst over l: a reader paces each chunk onto the line
// and stamps it with its arrival time; a writer hands it over then.
func (m *modem) pipe(dst, src net.Conn, l *line) {
	q := make(chan chunk, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			time.Sleep(time.Until(c.due))
			if _, err := dst.Write(c.data); err != nil {
				src.Close()
				for range q {
				}
				return
			}
		}
		// Half-close so the other side sees EOF after the last byte.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		} else {
			dst.Close()
		}
	}()
	buf := make([]byte, 256) // small chunks: a modem's bytes trickle
	for {
		n, err := src.Read(buf)
		if n > 0 {
			l.send(n)
			q <- chunk{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(m.delay)}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
}

func (m *modem) close() {
	m.mu.Lock()
	rev := m.reversed
	m.mu.Unlock()
	for _, r := range rev {
		r.close()
	}
	m.mu.Lock()
	for _, ln := range m.lns {
		ln.Close()
	}
	for c := range m.conns {
		c.Close()
	}
	m.mu.Unlock()
	m.wg.Wait()
}
