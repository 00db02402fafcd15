package fetch

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"

	"github.com/linkctl/linkctl/internal/errkind"
)

// memSpoolMax is how much of a message is held in memory; the rest goes
// to a temp file, so that memory stays flat however big a message is.
const memSpoolMax = 256 << 10

// headMax bounds the header bytes kept for Return-Path and Message-ID.
const headMax = 64 << 10

// spool holds one retrieved message between the server's reader (valid
// only while the Mailbox's callback runs) and its delivery on a worker.
type spool struct {
	mem  []byte
	file *os.File // unlinked at creation: nothing is left behind by a crash
	size int64
}

// newSpool copies r into memory up to memSpoolMax, then into an unlinked
// temp file in dir.
func newSpool(r io.Reader, dir string, buf *bytes.Buffer) (*spool, error) {
	buf.Reset()
	n, err := io.CopyN(buf, r, memSpoolMax+1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	s := &spool{}
	if n <= memSpoolMax {
		s.mem = bytes.Clone(buf.Bytes())
		s.size = n
		return s, nil
	}
	f, ferr := os.CreateTemp(dir, ".spool-*")
	if ferr != nil {
		return nil, errkind.Wrap(errkind.Delivery, true, "spool a large message in "+dir+" (check state_dir space and permissions)", ferr)
	}
	os.Remove(f.Name())
	s.file = f
	if _, werr := f.Write(buf.Bytes()); werr != nil {
		s.release()
		return nil, errkind.Wrap(errkind.Delivery, true, "spool a large message in "+dir, werr)
	}
	// Writes go to the file through a buffer: the protocol readers hand
	// out a line at a time, and a write(2) per line made a 50 MB message
	// cost more in system calls than in transfer. A read error from r is
	// the source's.
	bw := bufio.NewWriterSize(writerOnly{f}, 256<<10)
	m, err := io.Copy(bw, r)
	if err == nil {
		err = bw.Flush()
	}
	s.size = n + m
	if err != nil {
		s.release()
		var we writeErr
		if errors.As(err, &we) {
			return nil, errkind.Wrap(errkind.Delivery, true, "spool a large message in "+dir+" (disk full?)", we.error)
		}
		return nil, err
	}
	return s, nil
}

type writeErr struct{ error }

// writerOnly hides ReadFrom so that io.Copy's errors on the write side
// are marked as such.
type writerOnly struct{ f *os.File }

func (w writerOnly) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		return n, writeErr{err}
	}
	return n, nil
}

// head returns the first bytes of the message (up to headMax).
func (s *spool) head() []byte {
	if s.file == nil {
		if len(s.mem) > headMax {
			return s.mem[:headMax]
		}
		return s.mem
	}
	b := make([]byte, headMax)
	n, _ := s.file.ReadAt(b, 0)
	return b[:n]
}

// reader returns a fresh reader of the whole message.
func (s *spool) reader() io.Reader {
	if s.file == nil {
		return bytes.NewReader(s.mem)
	}
	return io.NewSectionReader(s.file, 0, s.size)
}

func (s *spool) release() {
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
	s.mem = nil
}
