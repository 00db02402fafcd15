// Package spool holds one message between a reader that is valid only for
// a while and the code that uses the message later.
//
// The fetch engine reads each message from the protocol (a POP3 dot-stuffed
// body, an IMAP literal), which is valid only inside the Mailbox's callback,
// and hands it to a delivery worker; the IMAP client keeps a body that came
// before its UID until the UID arrives. In both, New copies the message:
// the first memMax bytes into memory, the rest into a temporary file that
// is unlinked at once, so memory stays flat however big a message is and a
// crash leaves nothing behind. Reader then gives the whole message as
// often as needed (a retried delivery reads it again), Head its first
// bytes, and Close frees it.
package spool

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"

	"github.com/linkctl/linkctl/internal/errkind"
)

// Spool is one message, in memory or in an unlinked file.
type Spool struct {
	mem  []byte
	file *os.File
	size int64
}

// New copies r into a Spool: up to memMax bytes in memory, the rest into
// an unlinked temporary file in dir ("" for the system's). buf, when not
// nil, is scratch space reused across calls. An error reading r is
// returned as it is (it is the source's); a local failure (the file, the
// disk) is a temporary errkind.Delivery error.
func New(r io.Reader, dir string, memMax int64, buf *bytes.Buffer) (*Spool, error) {
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	n, err := io.CopyN(buf, r, memMax+1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if n <= memMax {
		return &Spool{mem: bytes.Clone(buf.Bytes()), size: n}, nil
	}
	f, err := os.CreateTemp(dir, ".spool-*")
	if err != nil {
		return nil, local(dir, err, "check its space and permissions")
	}
	os.Remove(f.Name())
	s := &Spool{file: f}
	// Writes go through a buffer: the protocol readers hand out a line at
	// a time, and a write(2) per line made a 50 MB message cost more in
	// system calls than in transfer. writer hides the file's ReadFrom,
	// which bufio would pass the copy to unbuffered, and marks its errors
	// as the local side's.
	bw := bufio.NewWriterSize(writer{f}, 256<<10)
	bw.Write(buf.Bytes())
	m, err := io.Copy(bw, r)
	if err == nil {
		err = bw.Flush()
	}
	s.size = n + m
	if err != nil {
		s.Close()
		var we writeErr
		if errors.As(err, &we) {
			return nil, local(dir, we.error, "disk full?")
		}
		return nil, err
	}
	return s, nil
}

func local(dir string, err error, hint string) error {
	if dir == "" {
		dir = os.TempDir()
	}
	return errkind.WrapTemporary(errkind.Delivery, "spool a large message in "+dir+" ("+hint+")", err)
}

type writeErr struct{ error }

type writer struct{ f *os.File }

func (w writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		return n, writeErr{err}
	}
	return n, nil
}

// Size is the message's length in bytes.
func (s *Spool) Size() int64 { return s.size }

// Head returns the message's first bytes, at most n.
func (s *Spool) Head(n int) []byte {
	if s.file == nil {
		return s.mem[:min(n, len(s.mem))]
	}
	b := make([]byte, n)
	m, _ := s.file.ReadAt(b, 0)
	return b[:m]
}

// Reader returns a fresh reader of the whole message.
func (s *Spool) Reader() io.Reader {
	if s.file == nil {
		return bytes.NewReader(s.mem)
	}
	return io.NewSectionReader(s.file, 0, s.size)
}

// Close frees the message; the Spool must not be used afterwards.
func (s *Spool) Close() {
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
	s.mem = nil
}
