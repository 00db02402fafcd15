package imap

import (
	"bufio"
	"compress/flate"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// wireConn sits directly on the TCP connection (below TLS and COMPRESS, so
// that it counts the bytes that really cross the link) and gives reads and
// writes an inactivity deadline.
//
// Unlike netconn.IdleConn it bounds reads only while a command is
// outstanding ("armed"): go-imap's client keeps a goroutine reading ahead
// for the next response at all times, and an unconditional per-read
// deadline would kill every session that sits quietly between two
// commands (while a large message is delivered locally) or in IDLE for
// 29 minutes. Arming sets the deadline on the read already in progress,
// so a command sent while that goroutine waits is still bounded. Writes
// are always bounded. The deadlines the library sets itself (30 s per
// response, 5 min per literal, fatal for a 2 MB message at modem speed)
// never reach the socket: the layers above ignore them.
type wireConn struct {
	net.Conn
	timeout time.Duration

	mu    sync.Mutex
	armed int

	read, written atomic.Int64
	readErr       atomic.Pointer[error] // first failed read: the link, not the peer's syntax
}

func newWireConn(c net.Conn, timeout time.Duration) *wireConn {
	return &wireConn{Conn: c, timeout: timeout}
}

func (c *wireConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.armed > 0 {
		c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	}
	c.mu.Unlock()
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	if err != nil {
		c.readErr.CompareAndSwap(nil, &err)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			// The server was silent for the whole timeout while it owed an
			// answer: the session is over. Closing makes every later read
			// fail at once; go-imap's decoder would otherwise retry a
			// timed-out read several times, multiplying the wait.
			c.Conn.Close()
		}
	}
	return n, err
}

// linkErr returns the first read error seen on the wire, if any: when
// go-imap reports a failure as a plain string, this tells a cut or silent
// link (temporary) from a server that sent nonsense (permanent).
func (c *wireConn) linkErr() error {
	if p := c.readErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *wireConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// arm starts bounding reads: the caller expects the server to answer.
func (c *wireConn) arm() {
	c.mu.Lock()
	c.armed++
	c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	c.mu.Unlock()
}

// disarm undoes one arm; with none left, reads wait without a deadline.
func (c *wireConn) disarm() {
	c.mu.Lock()
	if c.armed > 0 {
		c.armed--
	}
	if c.armed == 0 {
		c.Conn.SetReadDeadline(time.Time{})
	}
	c.mu.Unlock()
}

// SetDeadline is ignored: arm, disarm and the timeout govern.
func (c *wireConn) SetDeadline(time.Time) error { return nil }

// SetReadDeadline is ignored: arm, disarm and the timeout govern.
func (c *wireConn) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline is ignored: the timeout governs.
func (c *wireConn) SetWriteDeadline(time.Time) error { return nil }

// streamConn is what imapclient gets: reads come from r (the handshake's
// buffered reader, so that no byte it read ahead is lost, behind a
// synthetic greeting; through inflate when COMPRESS is on), writes go to w
// (through deflate, flushed after every write, when COMPRESS is on). Its
// deadline methods do nothing, which is how the library's fixed deadlines
// are switched off; Close closes the wire.
type streamConn struct {
	net.Conn // the connection below: Close, addresses
	r        io.Reader
	w        io.Writer
	flush    func() error // nil without COMPRESS
	wmu      sync.Mutex
}

func (c *streamConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *streamConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n, err := c.w.Write(p)
	if err == nil && c.flush != nil {
		// RFC 4978 section 4: the client flushes the compressor after each
		// command so that the server can act on it at once (Z_SYNC_FLUSH).
		err = c.flush()
	}
	return n, err
}

func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }

// newStreamConn builds the conn handed to imapclient. below is the
// (TLS-wrapped) connection, br the handshake's reader on it (bytes it
// buffered are the start of what follows), greeting the synthetic PREAUTH
// line, and deflate whether COMPRESS=DEFLATE is active from now on. t
// watches the server's stream (not the synthetic greeting) and what the
// client writes, before compression.
func newStreamConn(below net.Conn, br *bufio.Reader, greeting string, deflate bool, t *tap) *streamConn {
	sc := &streamConn{Conn: below, w: below}
	var r io.Reader = br
	if deflate {
		// RFC 4978 section 3: raw deflate (RFC 1951, no zlib header) in
		// both directions, starting with the octet after the CRLF of the
		// tagged OK. flate.NewReader reads from br, which holds any
		// compressed octets the handshake had already buffered.
		r = flate.NewReader(br)
		fw, _ := flate.NewWriter(below, flate.DefaultCompression) // level is valid: no error
		sc.w = fw
		sc.flush = fw.Flush
	}
	sc.r = io.MultiReader(strings.NewReader(greeting), t.reader(r))
	sc.w = t.writer(sc.w)
	return sc
}
