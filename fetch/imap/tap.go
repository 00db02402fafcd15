package imap

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/linkctl/linkctl/internal/logx"
)

// DefaultMaxUnsolicited is how many untagged responses a server may send
// during one operation beyond those the operation asked for (a listing's
// entries, a fetch's messages) before the session is dropped as a flood.
// Real servers send a handful (EXISTS, RECENT, flag updates from other
// clients); a server that never stops talking would otherwise hold the
// session, and a metered link, for ever, since the inactivity timeout never
// fires on a talkative peer.
const DefaultMaxUnsolicited = 10000

// maxResponseLine bounds one response line outside literals after login.
// The commands linkctl sends are answered with short lines (UID, size,
// flags); go-imap would buffer a line of any length in memory.
const maxResponseLine = 256 << 10

// tap watches the decoded stream go-imap reads and writes after login, one
// response at a time, without holding more than a bounded head of each
// line. It
//
//   - writes the transcript at logx.LevelTrace ("imap S: ...", "imap C: ..."),
//     literals shown as "{n octets}", never their contents;
//   - logs an [ALERT] response code at Warn: RFC 3501 section 7.1 says its
//     text MUST be presented to the user;
//   - counts the untagged responses of the current operation and fails the
//     read once they pass the operation's allowance (a flood), and bounds
//     the length of a line.
//
// A failed read makes go-imap's reader end the session; err then says why.
type tap struct {
	log  *slog.Logger
	addr string

	// read side, only touched by go-imap's reader goroutine
	head    []byte // first bytes of the current response (up to tapHead)
	lineLen int    // octets of the current line outside literals
	tail    [24]byte
	tailN   int
	lit     int64 // octets of a literal still to pass
	lits    int   // literals in the current response

	// count and allowance of the current operation
	untagged atomic.Int64
	allow    atomic.Int64
	what     atomic.Pointer[string]

	errMu sync.Mutex
	err   error // why the tap failed the stream

	// write side
	wmu  sync.Mutex
	wbuf []byte
}

// tapHead is how much of a response the transcript shows.
const tapHead = 512

// maxLiterals bounds the literals in one response: linkctl asks for one
// (BODY[]) per message.
const maxLiterals = 1000

func newTap(log *slog.Logger, addr string) *tap {
	t := &tap{log: log, addr: addr}
	t.allow.Store(DefaultMaxUnsolicited)
	w := "session"
	t.what.Store(&w)
	return t
}

// expect starts a new operation: what names it in errors, and the server
// may send expected untagged responses plus DefaultMaxUnsolicited.
func (t *tap) expect(what string, expected int) {
	t.untagged.Store(0)
	t.allow.Store(int64(expected) + DefaultMaxUnsolicited)
	t.what.Store(&what)
}

func (t *tap) fail(err error) error {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	if t.err == nil {
		t.err = err
	}
	return t.err
}

// failure returns why the tap cut the stream, or nil.
func (t *tap) failure() error {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	return t.err
}

// errFlood is the tap's error for a server that sends too much.
type errFlood struct{ msg string }

func (e *errFlood) Error() string { return e.msg }

// tracing reports whether the transcript is wanted now (the level may
// change while a session runs).
func (t *tap) tracing() bool { return t.log.Enabled(context.Background(), logx.LevelTrace) }

// reader returns r watched by the tap.
func (t *tap) reader(r io.Reader) io.Reader { return &tapReader{t: t, r: r} }

type tapReader struct {
	t *tap
	r io.Reader
}

func (tr *tapReader) Read(p []byte) (int, error) {
	if err := tr.t.failure(); err != nil {
		return 0, err
	}
	n, err := tr.r.Read(p)
	if n > 0 {
		if ferr := tr.t.scan(p[:n]); ferr != nil {
			// The octets of this read are not passed on: go-imap sees
			// the error at once and ends the session.
			return 0, ferr
		}
	}
	return n, err
}

// scan follows the response structure of RFC 3501 section 7 through p:
// lines ending in CRLF, where a line ending in "{n}" (or "{n+}", RFC 7888)
// is followed by n octets of literal and then the rest of the response.
func (t *tap) scan(p []byte) error {
	for len(p) > 0 {
		if t.lit > 0 {
			k := int64(len(p))
			if k > t.lit {
				k = t.lit
			}
			t.lit -= k
			p = p[k:]
			continue
		}
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i+1]
		}
		p = p[len(chunk):]
		t.lineLen += len(chunk)
		if t.lineLen > maxResponseLine {
			return t.fail(&errFlood{fmt.Sprintf("server sent a response line longer than %d octets", maxResponseLine)})
		}
		if room := tapHead - len(t.head); room > 0 {
			t.head = append(t.head, chunk[:min(room, len(chunk))]...)
		}
		t.addTail(chunk)
		if i < 0 {
			continue
		}
		// A line is complete: a literal follows, or the response ends.
		if n, ok := t.literalAtEnd(); ok {
			t.lit = n
			t.lineLen = 0
			if t.lits++; t.lits > maxLiterals {
				return t.fail(&errFlood{fmt.Sprintf("server sent a response with more than %d literals", maxLiterals)})
			}
			if len(t.head) < tapHead {
				// The transcript shows a literal's size, never its
				// contents (a message, or anything else).
				h := trimCRLF(t.head)
				if open := bytes.LastIndexByte(h, '{'); open >= 0 && bytes.HasSuffix(h, []byte("}")) {
					h = h[:open]
				}
				t.head = append(h, fmt.Sprintf("{%d octets}", n)...)
			}
			continue
		}
		if err := t.response(); err != nil {
			return err
		}
	}
	return nil
}

func (t *tap) addTail(b []byte) {
	if len(b) >= len(t.tail) {
		copy(t.tail[:], b[len(b)-len(t.tail):])
		t.tailN = len(t.tail)
		return
	}
	keep := min(t.tailN, len(t.tail)-len(b))
	copy(t.tail[:keep], t.tail[t.tailN-keep:t.tailN])
	copy(t.tail[keep:], b)
	t.tailN = keep + len(b)
}

// literalAtEnd reports whether the line just ended announces a literal.
func (t *tap) literalAtEnd() (int64, bool) {
	s := string(trimCRLF(t.tail[:t.tailN]))
	if n, ok, err := literalSize(s); err == nil && ok {
		return n, true
	}
	return 0, false
}

func trimCRLF(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// response handles one complete response.
func (t *tap) response() error {
	line := string(trimCRLF(t.head))
	if t.lineLen > tapHead {
		line += "..."
	}
	t.head, t.tailN, t.lineLen, t.lits = t.head[:0], 0, 0, 0
	if t.tracing() {
		t.log.Log(context.Background(), logx.LevelTrace, "imap S: "+line, "server", t.addr)
	}
	untagged := len(line) > 1 && line[0] == '*' && line[1] == ' '
	t.alert(line)
	if untagged {
		if n := t.untagged.Add(1); n > t.allow.Load() {
			return t.fail(&errFlood{fmt.Sprintf("server flooded the session: more than %d untagged responses during %s (the last %q)",
				t.allow.Load(), *t.what.Load(), clip(line))})
		}
	}
	return nil
}

// alert logs the text of a response carrying [ALERT] (RFC 3501 section
// 7.1) where the user sees it, tagged or not.
func (t *tap) alert(line string) {
	if !strings.Contains(line, "[") {
		return
	}
	r, err := parseResponse(line)
	if err != nil || r.code != "ALERT" {
		return
	}
	t.log.Warn("IMAP server alert: "+clip(r.text), "server", t.addr)
}

// writer returns w watched by the tap: each command line is logged at
// logx.LevelTrace. Commands after login carry no secret.
func (t *tap) writer(w io.Writer) io.Writer {
	return &tapWriter{t: t, w: w}
}

type tapWriter struct {
	t *tap
	w io.Writer
}

func (tw *tapWriter) Write(p []byte) (int, error) {
	t := tw.t
	t.wmu.Lock()
	rest := p
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			if len(t.wbuf) < tapHead {
				t.wbuf = append(t.wbuf, rest[:min(len(rest), tapHead-len(t.wbuf))]...)
			}
			break
		}
		if len(t.wbuf) < tapHead {
			t.wbuf = append(t.wbuf, rest[:min(i+1, tapHead-len(t.wbuf))]...)
		}
		rest = rest[i+1:]
		if t.tracing() {
			t.log.Log(context.Background(), logx.LevelTrace, "imap C: "+string(trimCRLF(t.wbuf)), "server", t.addr)
		}
		t.wbuf = t.wbuf[:0]
	}
	t.wmu.Unlock()
	return tw.w.Write(p)
}
