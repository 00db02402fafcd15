package deliver

import (
	"fmt"
	"net"
	"sync"

	"github.com/linkctl/linkctl/internal/errkind"
)

// maxReplyOctets bounds what an SMTP/LMTP server may send between two of
// our requests. go-smtp keeps every line of a multi-line reply until its
// last one, so without a bound a server that never ends a reply decides
// how much memory linkctl uses. A reply line is at most 512 octets (RFC
// 5321 section 4.5.3.1.5) and an honest multi-line EHLO/LHLO reply is a
// few KiB; 64 KiB leaves room for any of them and for a TLS handshake's
// certificate chain.
const maxReplyOctets = 64 << 10

// replyGuard sits between the socket and go-smtp and does two things
// go-smtp cannot:
//
//   - It counts the octets read since our last write and fails the read
//     beyond maxReplyOctets (closing the connection), so memory is bounded
//     by linkctl, never by the server.
//   - It remembers the first read error and whether the octets read
//     before it ended inside a line. go-smtp reads lines through bufio's ReadLine, which hands out a
//     partial line cut by the end of the connection as if it were complete:
//     a "250 2.0.0 Ok: qu" cut off by a close would count as a 250. A reply
//     line ends with CRLF (RFC 5321 section 4.2); a line cut before it is
//     no reply. Because go-smtp reads no further than the line it needs, a
//     read error seen while a reply was parsed means its last line had no
//     line end: [replyGuard.cut] says so and the caller discards the reply.
//
// Under STARTTLS go-smtp puts TLS above the guard: the bound then counts
// TLS records (still a bound), and since the octets it sees are
// ciphertext, a cut is told by the read error alone.
type replyGuard struct {
	net.Conn
	limit int64

	mu      sync.Mutex
	pending int64 // octets read since our last write
	partial bool  // the octets read so far end inside a line (no LF yet)
	readErr error // the first read error
	endless bool  // the bound was crossed
}

func newReplyGuard(c net.Conn) *replyGuard {
	return &replyGuard{Conn: c, limit: maxReplyOctets}
}

func (g *replyGuard) endlessErr() error {
	return errkind.Temporary(errkind.Delivery, "",
		"local MTA sent more than %d octets without a request: endless reply", g.limit)
}

func (g *replyGuard) Read(p []byte) (int, error) {
	g.mu.Lock()
	room := g.limit - g.pending
	if g.endless || room <= 0 {
		g.endless = true
		g.mu.Unlock()
		g.Conn.Close()
		return 0, g.endlessErr()
	}
	g.mu.Unlock()
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := g.Conn.Read(p)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pending += int64(n)
	if n > 0 {
		g.partial = p[n-1] != '\n'
	}
	if err != nil && g.readErr == nil {
		g.readErr = err
	}
	return n, err
}

func (g *replyGuard) Write(p []byte) (int, error) {
	n, err := g.Conn.Write(p)
	if n > 0 {
		g.mu.Lock()
		g.pending = 0
		g.mu.Unlock()
	}
	return n, err
}

// check returns what a go-smtp call that returned err really means: the
// guard's own finding (see fault) if it has one, else err itself.
func (g *replyGuard) check(err error) error {
	if f := g.fault(err); f != nil {
		return f
	}
	return err
}

// fault returns the endless-reply error once the bound was crossed
// (go-smtp may report a malformed partial line instead), a temporary error
// when the connection broke inside a reply line (whatever code go-smtp
// parsed from the fragment: a cut "550 ..." is no refusal, a cut "250 ..."
// no acceptance), else nil. detail, if not nil, is what go-smtp said.
func (g *replyGuard) fault(detail error) error {
	g.mu.Lock()
	endless, readErr, partial := g.endless, g.readErr, g.partial
	g.mu.Unlock()
	switch {
	case endless:
		return g.endlessErr()
	case readErr != nil && partial:
		if detail == nil {
			detail = readErr
		}
		return errkind.WrapTemporary(errkind.Delivery, "",
			fmt.Errorf("connection lost in the middle of a reply line, which is no reply (RFC 5321 section 4.2): %v", detail))
	}
	return nil
}
