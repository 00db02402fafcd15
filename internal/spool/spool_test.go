package spool

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/linkctl/linkctl/internal/errkind"
)

// Below and above the memory bound, the message comes back whole, as often
// as asked; above it, the temp file is already gone from the directory.
func TestSpoolRoundTrip(t *testing.T) {
	for _, size := range []int{0, 10, 64, 65, 200_000} {
		msg := bytes.Repeat([]byte("line of mail\n"), size/13+1)[:size]
		dir := t.TempDir()
		// OneByteReader: the protocol readers hand out small pieces.
		s, err := New(iotest.OneByteReader(bytes.NewReader(msg)), dir, 64, nil)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		for range 2 {
			got, err := io.ReadAll(s.Reader())
			if err != nil || !bytes.Equal(got, msg) || s.Size() != int64(size) {
				t.Fatalf("size %d: read back %d bytes (%v), Size %d", size, len(got), err, s.Size())
			}
		}
		if h := s.Head(20); !bytes.Equal(h, msg[:min(20, size)]) {
			t.Errorf("size %d: Head(20) = %q", size, h)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("size %d: %d files left in the spool directory, want the spool unlinked", size, len(ents))
		}
		s.Close()
	}
}

// A read error is the source's and comes back unchanged; a directory that
// cannot hold the file is a temporary local (delivery) error naming it.
func TestSpoolErrors(t *testing.T) {
	cut := errors.New("link cut")
	_, err := New(io.MultiReader(strings.NewReader(strings.Repeat("x", 100)), iotest.ErrReader(cut)), t.TempDir(), 10, nil)
	if !errors.Is(err, cut) || errkind.KindOf(err) == errkind.Delivery {
		t.Errorf("source error: %v, want the link error unchanged", err)
	}
	_, err = New(strings.NewReader(strings.Repeat("x", 100)), "/nonexistent/spool", 10, nil)
	if errkind.KindOf(err) != errkind.Delivery || !errkind.IsTemporary(err) || !strings.Contains(err.Error(), "/nonexistent/spool") {
		t.Errorf("unwritable directory: %v, want a temporary delivery error naming it", err)
	}
}
