package pop3

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// errTooLong ends a message that grows far beyond the size LIST gave it: a
// server streaming without end must not fill the disk of the delivery.
var errTooLong = fmt.Errorf("%w: message longer than the server announced", errProto)

// dotReader streams the body of a multi-line response (RFC 1939 section
// 3): it removes the byte-stuffed leading dot, turns CRLF into LF, and
// ends at the terminating "." line. It does what textproto's DotReader
// does, a line at a time out of the bufio buffer instead of a byte at a
// time, and it never holds more than one buffer of a line: message lines
// may be of any length.
type dotReader struct {
	br    *bufio.Reader
	pend  []byte // the part of the current chunk not yet returned (in br's buffer)
	pre   []byte // octets to return before pend (a held-back CR)
	bol   bool   // the next octet read starts a line
	heldR bool   // the last chunk was a line cut short by the buffer, ending in CR
	done  bool
	err   error
	n     int64 // octets returned
	limit int64 // 0: none
}

func newDotReader(br *bufio.Reader, limit int64) *dotReader {
	return &dotReader{br: br, bol: true, limit: limit}
}

func (d *dotReader) Read(p []byte) (int, error) {
	for len(d.pre) == 0 && len(d.pend) == 0 {
		if d.done {
			return 0, io.EOF
		}
		if d.err != nil {
			return 0, d.err
		}
		d.fill()
	}
	if d.limit > 0 {
		// There is at least one more octet: past the ceiling, that is
		// the end of it; below, return no more than the ceiling allows.
		if d.n >= d.limit {
			d.err, d.pend, d.pre = errTooLong, nil, nil
			return 0, d.err
		}
		if rem := d.limit - d.n; int64(len(p)) > rem {
			p = p[:rem]
		}
	}
	var n int
	if len(d.pre) > 0 {
		n = copy(p, d.pre)
		d.pre = d.pre[n:]
	} else {
		n = copy(p, d.pend)
		d.pend = d.pend[n:]
	}
	d.n += int64(n)
	return n, nil
}

// fill reads the next line, or the next buffer of a long line.
func (d *dotReader) fill() {
	line, err := d.br.ReadSlice('\n')
	partial := errors.Is(err, bufio.ErrBufferFull)
	if err != nil && !partial {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the terminating line never came
		}
		// Return what came before the error, then the error: the caller
		// sees a message that broke off, never one that looks complete.
		d.err = err
		partial = true
	}
	startOfLine := d.bol
	d.bol = !partial
	if d.heldR {
		// The previous chunk ended in a CR held back in case this chunk
		// starts with the LF that makes the pair a line end.
		d.heldR = false
		if len(line) == 0 || line[0] != '\n' {
			d.pre = []byte{'\r'}
		}
	}
	if startOfLine && len(line) > 0 && line[0] == '.' {
		if !partial && (len(line) == 2 || len(line) == 3 && line[1] == '\r') {
			d.done = true // "." CRLF (or a bare LF): the end
			return
		}
		line = line[1:] // byte-stuffing
	}
	if partial {
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line, d.heldR = line[:n-1], true
		}
	} else if n := len(line); n >= 2 && line[n-2] == '\r' {
		line[n-2] = '\n' // CRLF -> LF, in the buffer already consumed
		line = line[:n-1]
	}
	d.pend = line
}
