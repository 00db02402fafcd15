package imap

import (
	"bytes"
	"io"
)

// lfReader turns CRLF into LF while streaming, as fetch.Mailbox promises
// (IMAP carries messages with CRLF line ends, RFC 3501 section 4.3; the
// local side wants the Unix form). A lone CR is kept. A CR that ends one
// read is held back until the next octet shows whether LF follows. The
// first error from src other than EOF is kept in err, so that the caller
// can tell a failed link from its own failure.
type lfReader struct {
	src    io.Reader
	buf    []byte
	b      []byte // read from src, not yet returned
	cr     bool   // a CR was taken from b and not yet written
	srcErr error  // sticky: src is done (io.EOF or a failure)
	err    error  // the failure, if src did not simply end
}

func (r *lfReader) Read(p []byte) (int, error) {
	if r.buf == nil {
		r.buf = make([]byte, 32<<10)
	}
	out := 0
	for out < len(p) {
		if len(r.b) == 0 {
			if r.srcErr != nil || out > 0 {
				break // never block while holding output
			}
			n, err := r.src.Read(r.buf)
			r.b = r.buf[:n]
			if err != nil {
				r.srcErr = err
				if err != io.EOF {
					r.err = err
				}
			}
			continue
		}
		if r.cr {
			r.cr = false
			if r.b[0] == '\n' {
				r.b = r.b[1:]
				p[out] = '\n'
			} else {
				p[out] = '\r' // a lone CR stays
			}
			out++
			continue
		}
		i := bytes.IndexByte(r.b, '\r')
		if i == 0 {
			r.cr = true
			r.b = r.b[1:]
			continue
		}
		run := r.b
		if i > 0 {
			run = r.b[:i]
		}
		n := copy(p[out:], run)
		out += n
		r.b = r.b[n:]
	}
	if r.cr && len(r.b) == 0 && r.srcErr != nil && out < len(p) {
		r.cr = false // the stream ended on a CR
		p[out] = '\r'
		out++
	}
	if out > 0 {
		return out, nil
	}
	return 0, r.srcErr
}
