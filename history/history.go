// Package history keeps one record per pipeline run in state_dir, for
// `linkctl history`, `linkctl plan`'s link-time estimate and the metrics.
//
// A Record says when a run started and ended, which link it ran on, why
// (its cause), how long the link had been up, the bytes down and up per
// stage and per account (from the stages' reports: pipeline.Report
// Counts "bytes_down"/"bytes_up" and Accounts), the link's own counters
// over the run (RX/TX of the interface, read with LinkBytes), the result
// and the exit status.
//
// The flow: a Recorder's Begin reads the link's counters as a run starts;
// Run.End reads them again, builds the Record from the run's report
// (FromReport) and appends it. Every run writes one: the daemon's, `linkctl
// run` and `up`, and the one-stage commands. [Rate] turns the records of a
// link into its measured download rate (fetch bytes over fetch time, the
// last 20 runs that moved at least 4 KiB), which `linkctl plan` uses for
// its link-time estimate.
//
// Storage: <state_dir>/history.jsonl, one JSON object per line, appended
// with one write(2) of a whole line and fsynced. A crash can tear only the
// last line; Read skips any line that is not a whole JSON record. The
// file is bounded: when an append would take it past MaxBytes, or it holds
// more than about twice MaxRecords (judged by size), it is rewritten with its last MaxRecords
// records that fit in MaxBytes/2 (temp file, fsync, rename, fsync of the
// directory), so it never exceeds MaxBytes and rewrites are rare. An
// flock on the file keeps two processes' appends and rewrites apart.
package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"
	"golang.org/x/sys/unix"

	"github.com/linkctl/linkctl/internal/errkind"
)

// Defaults of Store's bounds.
const (
	DefaultMaxRecords = 500
	DefaultMaxBytes   = 1 << 20
)

// FileName is the history file in state_dir.
const FileName = "history.jsonl"

// maxLine bounds one record: a longer line is damage, not a record.
const maxLine = 64 << 10

// Record is one run.
type Record struct {
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Seconds float64   `json:"seconds"` // End - Start: the link time the run took
	Link    string    `json:"link,omitempty"`
	// LinkUpSeconds is how long the link had been up when the run ended,
	// when the process knows (the daemon does).
	LinkUpSeconds float64 `json:"link_up_seconds,omitempty"`
	Cause         string  `json:"cause"`
	Result        string  `json:"result"`
	Exit          int     `json:"exit"`
	Error         string  `json:"error,omitempty"`
	// BytesDown and BytesUp are what linkctl's stages counted (summed
	// over Stages).
	BytesDown int64 `json:"bytes_down"`
	BytesUp   int64 `json:"bytes_up"`
	// LinkRX and LinkTX are the interface's own counters over the run
	// (nil: not read, e.g. no link named or the interface is gone). They
	// include whatever else used the link meanwhile.
	LinkRX   *uint64   `json:"link_rx,omitempty"`
	LinkTX   *uint64   `json:"link_tx,omitempty"`
	Stages   []Stage   `json:"stages"`
	Accounts []Account `json:"accounts,omitempty"`
}

// Stage is one stage of a run.
type Stage struct {
	Name      string  `json:"name"`
	Result    string  `json:"result"`
	Seconds   float64 `json:"seconds"`
	Messages  int64   `json:"messages,omitempty"`
	BytesDown int64   `json:"bytes_down,omitempty"`
	BytesUp   int64   `json:"bytes_up,omitempty"`
	Error     string  `json:"error,omitempty"`
}

// Account is one mail account's share of a run.
type Account struct {
	Name      string `json:"name"`
	Stage     string `json:"stage"`
	Messages  int64  `json:"messages"`
	Bytes     int64  `json:"bytes"` // delivered messages' size
	BytesDown int64  `json:"bytes_down"`
	BytesUp   int64  `json:"bytes_up"`
}

// Store is the history file of one state_dir.
type Store struct {
	Path       string
	MaxRecords int // records kept by a rewrite (DefaultMaxRecords)
	MaxBytes   int // the file never grows past this (DefaultMaxBytes)
}

// Open returns the store in stateDir with the default bounds. Nothing is
// created until the first Append.
func Open(stateDir string) *Store {
	return &Store{Path: filepath.Join(stateDir, FileName)}
}

func (s *Store) bounds() (records, bytes int) {
	records, bytes = s.MaxRecords, s.MaxBytes
	if records <= 0 {
		records = DefaultMaxRecords
	}
	if bytes <= 0 {
		bytes = DefaultMaxBytes
	}
	return records, bytes
}

// Append adds r to the file, durably, rewriting the file first when the
// bounds say so.
func (s *Store) Append(r Record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return errkind.WrapPermanent(errkind.Internal, "history", err)
	}
	line = append(line, '\n')
	maxRec, maxBytes := s.bounds()
	if len(line) > min(maxLine, maxBytes/2) {
		return errkind.Permanent(errkind.Internal, "history", "record of %d bytes is too big to keep", len(line))
	}
	op := "history " + s.Path
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
		return errkind.WrapPermanent(errkind.Internal, op, err)
	}
	f, err := os.OpenFile(s.Path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return errkind.WrapPermanent(errkind.Internal, op+": cannot open", err)
	}
	defer f.Close()
	// Blocking: another process's append is one short write.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return errkind.WrapTemporary(errkind.Internal, op+": cannot lock", err)
	}
	st, err := f.Stat()
	if err != nil {
		return errkind.WrapPermanent(errkind.Internal, op, err)
	}
	size := st.Size()
	// Records are alike in size: more than twice maxRec of this one's
	// size is more than twice maxRec records, without reading the file.
	if size+int64(len(line)) > int64(maxBytes) || size > 2*int64(maxRec)*int64(len(line)) {
		recs, err := readAll(f)
		if err != nil {
			return errkind.WrapPermanent(errkind.Internal, op+": cannot read", err)
		}
		recs = append(recs, line)
		if err := s.rewrite(keep(recs, maxRec, maxBytes/2)); err != nil {
			return err
		}
		return nil
	}
	if size > 0 && !endsWithNewline(f, size) {
		// A torn last line from a crash: end it so that this record
		// starts on a line of its own (Read skips the torn one).
		line = append([]byte{'\n'}, line...)
	}
	if _, err := f.Write(line); err != nil {
		return errkind.WrapTemporary(errkind.Internal, op+": cannot write", err)
	}
	if err := f.Sync(); err != nil {
		return errkind.WrapTemporary(errkind.Internal, op+": cannot sync", err)
	}
	return nil
}

// keep is the last lines (at most n) whose total length fits in budget.
func keep(lines [][]byte, n, budget int) [][]byte {
	total, i := 0, len(lines)
	for i > 0 && len(lines)-i < n && total+len(lines[i-1]) <= budget {
		total += len(lines[i-1])
		i--
	}
	return lines[i:]
}

// rewrite replaces the file atomically with lines. The caller holds the
// flock of the old file; a process waiting on it then appends to the
// replaced inode and its record is lost, which a history can afford
// (two processes finishing a run within the same millisecond).
func (s *Store) rewrite(lines [][]byte) error {
	op := "history " + s.Path
	t, err := renameio.NewPendingFile(s.Path, renameio.WithPermissions(0o600))
	if err != nil {
		return errkind.WrapTemporary(errkind.Internal, op+": cannot rewrite", err)
	}
	defer t.Cleanup()
	w := bufio.NewWriter(t)
	for _, l := range lines {
		w.Write(l)
	}
	if err := w.Flush(); err != nil {
		return errkind.WrapTemporary(errkind.Internal, op+": cannot rewrite", err)
	}
	if err := t.CloseAtomicallyReplace(); err != nil {
		return errkind.WrapTemporary(errkind.Internal, op+": cannot rewrite", err)
	}
	// renameio fsyncs the file; the rename needs the directory's.
	if d, err := os.Open(filepath.Dir(s.Path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func endsWithNewline(f *os.File, size int64) bool {
	b := make([]byte, 1)
	_, err := f.ReadAt(b, size-1)
	return err == nil && b[0] == '\n'
}

// readAll returns the whole, valid record lines of f (newline included).
func readAll(f *os.File) ([][]byte, error) {
	var out [][]byte
	err := scan(io.NewSectionReader(f, 0, 1<<62), func(line []byte, _ Record) {
		out = append(out, append(bytes.Clone(line), '\n'))
	})
	return out, err
}

// scan calls fn for each line of r that is a whole JSON record; torn or
// damaged lines (a crash mid-write, garbage) are skipped.
func scan(r io.Reader, fn func(line []byte, rec Record)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Longer than any record: skip to the next newline.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil {
				return nil
			}
			continue
		}
		if err == io.EOF {
			return nil // a last line without its newline is torn
		}
		if err != nil {
			return err
		}
		line = line[:len(line)-1]
		var rec Record
		if len(bytes.TrimSpace(line)) == 0 || json.Unmarshal(line, &rec) != nil || rec.Start.IsZero() {
			continue
		}
		fn(line, rec)
	}
}

// Read returns the records, oldest first; the last n when n > 0. A
// missing file is no records.
func (s *Store) Read(n int) ([]Record, error) {
	f, err := os.Open(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "history "+s.Path+": cannot open", err)
	}
	defer f.Close()
	var recs []Record
	err = scan(f, func(_ []byte, r Record) {
		recs = append(recs, r)
		if n > 0 && len(recs) > 2*n {
			recs = append(recs[:0], recs[len(recs)-n:]...)
		}
	})
	if err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "history "+s.Path+": cannot read", err)
	}
	if n > 0 && len(recs) > n {
		recs = recs[len(recs)-n:]
	}
	return recs, nil
}

// Rate is the link's measured download rate in bytes a second: the
// fetch stages' bytes down over their duration, summed over the last
// records on link (any link when link is ""), up to 20 of them, counting
// only stages that moved at least 4 KiB (a run with nothing to fetch
// measures round trips, not the rate). ok is false with no such stage.
func Rate(recs []Record, link string) (bytesPerSecond float64, runs int, ok bool) {
	var bytes int64
	var secs float64
	for i := len(recs) - 1; i >= 0 && runs < 20; i-- {
		r := recs[i]
		if link != "" && r.Link != link {
			continue
		}
		counted := false
		for _, s := range r.Stages {
			if s.BytesDown < 4<<10 || s.Seconds <= 0 || s.Name != "fetch" && !hasAccounts(r, s.Name) {
				continue
			}
			bytes += s.BytesDown
			secs += s.Seconds
			counted = true
		}
		if counted {
			runs++
		}
	}
	if runs == 0 || secs <= 0 {
		return 0, 0, false
	}
	return float64(bytes) / secs, runs, true
}

func hasAccounts(r Record, stage string) bool {
	for _, a := range r.Accounts {
		if a.Stage == stage {
			return true
		}
	}
	return false
}

// HumanBytes is a byte count for humans.
func HumanBytes(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 10<<10:
		return fmt.Sprintf("%d kB", n>>10)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
