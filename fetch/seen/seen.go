// Package seen is the fetch stage's durable memory: for each mailbox (a
// key such as "pop3:user@host:110", or for IMAP one that includes the
// folder and its UIDVALIDITY) the UIDs that were delivered locally, when
// each was first fetched, and how many times delivery of a UID failed.
//
// It exists so that no mail is lost and none is duplicated when a link
// drops (DESIGN.md "No mail is lost"): the fetch engine records a UID here,
// durably, after the local side accepted the message and BEFORE it sends
// the DELE for it. A run cut before POP3 QUIT leaves the message on the
// server (RFC 1939 section 6 rolls the DELE back); the next run finds the
// UID here, skips the download, and deletes it.
//
// The flow:
//
//	st, _ := seen.Open(stateDir)        // <stateDir>/seen/, 0700
//	log, _ := st.Mailbox(key)           // loads the key's file, takes a lock
//	log.Retain(listedUIDs)              // forget UIDs the server no longer has
//	log.Seen(uid), log.Failures(uid)    // decide what to fetch
//	log.DeliveredDigest(uid, now, d, n) // written at once (survives kill -9)
//	log.Commit()                        // fsynced: now DELE may go
//
// Storage: one append-only file per key. Each change is one line
//
//	D <uid> <unix-time> <crc>     delivered, first fetched at that time
//	H <uid> <digest>.<size> <crc> the delivered message's digest, its listed size
//	F <uid> <count> <crc>         delivery failed, count times in all
//	X <uid> 0 <crc>               forgotten (the server no longer lists it)
//	U <uid> 0 <crc>               the last D of uid is void (see Undo)
//	O <digest> 0 <crc>            a digest whose UID no longer means anything
//	K <key> 0 <crc>               the file's key (first record; see Keys)
//
// each with a CRC-32 of the line's text, so a record torn by a crash (a
// last line without its newline, or garbage in its place) is recognised
// and dropped on load, and the file is cut back to its last whole record
// before anything is appended. Appending keeps the cost of one message at
// one short write; Commit fsyncs once for everything buffered since the
// last one, and concurrent Commits share one fsync (group commit), so a
// 5000-message mailbox never rewrites 5000 lines per message. When dead
// records outnumber live ones the file is rewritten once, atomically
// (temp file, fsync, rename, fsync of the directory).
//
// Digests (a hash of the Message-ID and size, computed by the engine) are
// the memory that outlives the UIDs: a UID the server no longer lists, or
// one whose UIDL the server reused for another message, or every UID of an
// IMAP folder whose UIDVALIDITY changed, leaves its digest behind as an
// orphan. The engine consults them when it cannot trust the UIDs and skips
// a message it already delivered under another UID. Orphans are kept first
// in, first out, at most the orphan limit of the Store (default
// DefaultOrphanDigests, about 3 MB of file for a full set).
//
// Delivered records are written to the file (not yet fsynced) the moment
// they are made: a process killed after the local side accepted a message
// loses the record only if the kill came before that one write, never
// because the record waited for someone else's fsync.
//
// A file is locked (flock) while a Log is open, so two processes never
// append to the same mailbox's record; the kernel releases the lock when
// a process dies. [Peek] reads a record without the lock and without
// creating or changing anything, for `linkctl plan` beside a run.
package seen

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linkctl/linkctl/internal/durable"
	"github.com/linkctl/linkctl/internal/errkind"
)

// DefaultOrphanDigests is how many orphan digests a mailbox's record
// keeps (enough for a large kept mailbox whose UIDs all changed).
const DefaultOrphanDigests = 100000

// Store is the directory of per-mailbox files.
type Store struct {
	dir     string
	orphans int // limit per Log

	mu   sync.Mutex
	logs map[string]*Log
}

// Open opens (creating it with mode 0700) the store in <stateDir>/seen.
func Open(stateDir string) (*Store, error) {
	dir := filepath.Join(stateDir, "seen")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "seen-store: cannot create "+dir+" (check state_dir and its permissions)", err)
	}
	return &Store{dir: dir, orphans: DefaultOrphanDigests, logs: map[string]*Log{}}, nil
}

// SetOrphanLimit sets how many orphan digests each mailbox keeps (n <= 0:
// DefaultOrphanDigests), for the Logs opened from now on.
func (s *Store) SetOrphanLimit(n int) {
	if n <= 0 {
		n = DefaultOrphanDigests
	}
	s.mu.Lock()
	s.orphans = n
	s.mu.Unlock()
}

// Dir is the directory holding the files.
func (s *Store) Dir() string { return s.dir }

// FileName is the file name used for key: readable, and unique through a
// hash of the whole key.
func FileName(key string) string {
	var b strings.Builder
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '@', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 80 {
			break
		}
	}
	sum := sha256.Sum256([]byte(key))
	return b.String() + "-" + hex.EncodeToString(sum[:6]) + ".seen"
}

// Mailbox returns the Log for key, loading it on first use. The same Log
// is returned for the same key until Close.
func (s *Store) Mailbox(key string) (*Log, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.logs[key]; ok {
		return l, nil
	}
	l, err := openLog(filepath.Join(s.dir, FileName(key)), key, s.orphans)
	if err != nil {
		return nil, err
	}
	s.logs[key] = l
	return l, nil
}

// Peek reads the record of key as it is on disk, without creating,
// locking or changing anything: for `linkctl plan`, which must not touch
// the state a run (even one in progress, holding the lock) relies on. A
// torn last record is ignored, as a load does. No record is an empty Log.
// The returned Log answers Get and friends; it must not be written to.
func (s *Store) Peek(key string) (*Log, error) {
	return Peek(s.dir, key)
}

// Peek is Store.Peek on the store in dir (<stateDir>/seen) without
// opening it: a plan must not even create the directory.
func Peek(dir, key string) (*Log, error) {
	l := newLog("", key, DefaultOrphanDigests)
	f, err := os.Open(filepath.Join(dir, FileName(key)))
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "seen-store "+dir+": cannot read the record of "+key, err)
	}
	defer f.Close()
	l.f = f
	_, err = l.load()
	l.f = nil
	if err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "seen-store "+dir+": cannot read the record of "+key, err)
	}
	return l, nil
}

// Close commits and closes every open Log.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for k, l := range s.logs {
		errs = append(errs, l.close())
		delete(s.logs, k)
	}
	return errors.Join(errs...)
}

// Keys returns the keys of the stored mailboxes that start with prefix
// (for IMAP: the same folder under another UIDVALIDITY).
func (s *Store) Keys(prefix string) ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "seen-store "+s.dir, err)
	}
	var keys []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".seen") {
			continue
		}
		f, err := os.Open(filepath.Join(s.dir, e.Name()))
		if err != nil {
			continue
		}
		line, _ := bufio.NewReader(io.LimitReader(f, 4096)).ReadSlice('\n')
		f.Close()
		probe := newLog("", "", 1)
		if len(line) == 0 || line[0] != 'K' || !probe.apply(bytes.TrimSuffix(line, []byte("\n"))) {
			continue
		}
		f2 := strings.Fields(string(line))
		if key, ok := unescape(f2[1]); ok && strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
	}
	return keys, nil
}

// Remove deletes the record of key (a mailbox that no longer exists, or
// an IMAP folder whose UIDVALIDITY changed, which voids its UIDs).
func (s *Store) Remove(key string) error {
	s.mu.Lock()
	if l, ok := s.logs[key]; ok {
		l.close()
		delete(s.logs, key)
	}
	s.mu.Unlock()
	err := os.Remove(filepath.Join(s.dir, FileName(key)))
	if err != nil && !os.IsNotExist(err) {
		return errkind.WrapPermanent(errkind.Internal, "seen-store: cannot remove the record of "+key, err)
	}
	return nil
}

// Entry is what the store knows about one UID.
type Entry struct {
	Delivered    bool
	FirstFetched time.Time // when it was delivered (zero if never)
	Failures     int       // failed delivery attempts so far
	Digest       uint64    // the delivered message's digest (0 unknown)
	Size         int64     // the size the server listed for it (0 unknown)
}

// Log is the record of one mailbox. Its methods are safe for concurrent use.
type Log struct {
	path string
	key  string

	mu          sync.Mutex
	f           *os.File
	entries     map[string]Entry
	live        map[uint64]int  // digests of entries, with counts
	orphans     map[uint64]bool // digests whose UID is gone
	orphanOrder []uint64        // the orphans, oldest first (may hold dropped ones)
	maxOrphans  int
	records     int          // records in the file, live or dead
	pending     bytes.Buffer // appended, not yet written
	appended    uint64       // sequence of the last buffered change
	err         error        // a failed write poisons the Log

	syncMu sync.Mutex // one writer+fsync at a time
	synced uint64     // sequence durable on disk
}

func newLog(path, key string, maxOrphans int) *Log {
	return &Log{path: path, key: key, entries: map[string]Entry{}, live: map[uint64]int{},
		orphans: map[uint64]bool{}, maxOrphans: maxOrphans}
}

func openLog(path, key string, maxOrphans int) (*Log, error) {
	op := "seen-store " + path
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, op+": cannot open (check state_dir permissions)", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errkind.Temporary(errkind.Locked, op, "another linkctl process is fetching this mailbox")
		}
		return nil, errkind.WrapPermanent(errkind.Internal, op+": cannot lock", err)
	}
	l := newLog(path, key, maxOrphans)
	l.f = f
	good, err := l.load()
	if err != nil {
		f.Close()
		return nil, errkind.WrapPermanent(errkind.Internal, op+": cannot read", err)
	}
	// Cut a torn tail so the next record starts on a line of its own.
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, errkind.WrapPermanent(errkind.Internal, op+": cannot truncate a torn record", err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, errkind.WrapPermanent(errkind.Internal, op, err)
	}
	if good == 0 {
		// A new (or wholly torn) file starts with its key, so that
		// Store.Keys can find it without the key's hash.
		if _, err := f.Write(record('K', key, 0)); err != nil {
			f.Close()
			return nil, errkind.WrapTemporary(errkind.Internal, op+": cannot write", err)
		}
		l.records++
	}
	if l.needsCompaction() {
		if err := l.compact(); err != nil {
			f.Close()
			return nil, err
		}
	}
	return l, nil
}

// load reads every whole, intact record and returns the offset after the
// last one (everything after it is a torn write).
func (l *Log) load() (good int64, err error) {
	r := bufio.NewReaderSize(l.f, 64<<10)
	var off int64
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// No record is this long: garbage. Skip to the next newline.
			n := int64(len(line))
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = r.ReadSlice('\n')
				n += int64(len(line))
			}
			if err != nil {
				return good, nil
			}
			off += n
			continue
		}
		if err == io.EOF {
			return good, nil // a last line without '\n' is torn
		}
		if err != nil {
			return good, err
		}
		off += int64(len(line))
		if l.apply(line[:len(line)-1]) {
			l.records++
			good = off
		} else if len(bytes.Trim(line, "\x00\n")) == 0 {
			// zero-filled blocks from a crash: not a record
			continue
		} else {
			// A damaged record in the middle (a torn write followed by
			// later appends): skip it, keep the ones after it.
			good = off
		}
	}
}

// apply parses one record and applies it; false if it is damaged.
func (l *Log) apply(line []byte) bool {
	i := bytes.LastIndexByte(line, ' ')
	if i < 0 {
		return false
	}
	sum, err := strconv.ParseUint(string(line[i+1:]), 16, 32)
	if err != nil || uint32(sum) != crc32.ChecksumIEEE(line[:i]) {
		return false
	}
	f := strings.Fields(string(line[:i]))
	if len(f) != 3 {
		return false
	}
	uid, ok := unescape(f[1])
	if !ok {
		return false
	}
	if f[0] == "H" {
		ds, ss, ok := strings.Cut(f[2], ".")
		d, err1 := strconv.ParseUint(ds, 16, 64)
		size, err2 := strconv.ParseInt(ss, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return false
		}
		e := l.entries[uid]
		l.setDigest(uid, e, d, size)
		return true
	}
	n, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return false
	}
	switch f[0] {
	case "O":
		d, err := strconv.ParseUint(uid, 16, 64)
		if err != nil {
			return false
		}
		l.addOrphan(d)
	case "D":
		e := l.entries[uid]
		e.Delivered = true
		e.FirstFetched = time.Unix(n, 0)
		l.entries[uid] = e
	case "F":
		e := l.entries[uid]
		e.Failures = int(n)
		l.entries[uid] = e
	case "X":
		l.drop(uid)
	case "U":
		l.undo(uid)
	case "K":
		// the file's key: nothing to apply
	default:
		return false
	}
	return true
}

// escape makes a UID safe for a space-separated line: bytes outside
// 0x21-0x7E (RFC 1939 section 7 allows none, but servers err) and '%' are
// percent-encoded. An empty UID becomes "%".
func escape(uid string) string {
	if uid == "" {
		return "%"
	}
	var b strings.Builder
	for i := 0; i < len(uid); i++ {
		c := uid[i]
		if c <= 0x20 || c >= 0x7f || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func unescape(s string) (string, bool) {
	if s == "%" {
		return "", true
	}
	if !strings.Contains(s, "%") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), true
}

func record(op byte, uid string, n int64) []byte {
	body := fmt.Sprintf("%c %s %d", op, escape(uid), n)
	return fmt.Appendf(nil, "%s %08x\n", body, crc32.ChecksumIEEE([]byte(body)))
}

// digestRecord is the H record of uid.
func digestRecord(uid string, d uint64, size int64) []byte {
	body := fmt.Sprintf("H %s %016x.%d", escape(uid), d, size)
	return fmt.Appendf(nil, "%s %08x\n", body, crc32.ChecksumIEEE([]byte(body)))
}

// setDigest gives uid's entry e a digest; the caller holds l.mu (or is
// loading).
func (l *Log) setDigest(uid string, e Entry, d uint64, size int64) {
	if e.Digest != 0 {
		l.unlive(e.Digest)
	}
	e.Digest, e.Size = d, size
	l.entries[uid] = e
	if d != 0 {
		l.live[d]++
	}
}

func (l *Log) unlive(d uint64) {
	if l.live[d] <= 1 {
		delete(l.live, d)
	} else {
		l.live[d]--
	}
}

// drop forgets uid; its digest, if any, becomes an orphan (recorded by
// the caller when not loading). It returns that digest.
func (l *Log) drop(uid string) uint64 {
	e, ok := l.entries[uid]
	if !ok {
		return 0
	}
	delete(l.entries, uid)
	if e.Digest != 0 {
		l.unlive(e.Digest)
		l.addOrphan(e.Digest)
	}
	return e.Digest
}

// undo forgets uid and its digest without keeping the digest as an
// orphan: the delivery the entry recorded did not happen as far as anyone
// knows.
func (l *Log) undo(uid string) {
	e, ok := l.entries[uid]
	if !ok {
		return
	}
	delete(l.entries, uid)
	if e.Digest != 0 {
		l.unlive(e.Digest)
	}
}

// addOrphan remembers d, dropping the oldest orphans beyond the limit.
func (l *Log) addOrphan(d uint64) bool {
	if d == 0 || l.orphans[d] {
		return false
	}
	l.orphans[d] = true
	l.orphanOrder = append(l.orphanOrder, d)
	for len(l.orphans) > l.maxOrphans && len(l.orphanOrder) > 0 {
		old := l.orphanOrder[0]
		l.orphanOrder = l.orphanOrder[1:]
		delete(l.orphans, old)
	}
	if len(l.orphanOrder) > 2*len(l.orphans)+1024 {
		l.orphanOrder = slices.DeleteFunc(l.orphanOrder, func(d uint64) bool { return !l.orphans[d] })
	}
	return true
}

// appendOrphan records d as an orphan; the caller holds l.mu.
func (l *Log) appendOrphan(d uint64) {
	l.append('O', fmt.Sprintf("%016x", d), 0)
}

// append buffers a record; the caller holds l.mu.
func (l *Log) append(op byte, uid string, n int64) {
	l.pending.Write(record(op, uid, n))
	l.records++
	l.appended++
}

// Key is the mailbox key the Log belongs to.
func (l *Log) Key() string { return l.key }

// Get returns what is known about uid.
func (l *Log) Get(uid string) Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.entries[uid]
}

// Seen reports whether uid was delivered (committed or not yet).
func (l *Log) Seen(uid string) bool { return l.Get(uid).Delivered }

// Failures returns how many deliveries of uid failed.
func (l *Log) Failures(uid string) int { return l.Get(uid).Failures }

// Len returns the number of UIDs known.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// Delivered records that uid was delivered at t (its first fetch; a UID
// already delivered keeps its first time). See DeliveredDigest.
func (l *Log) Delivered(uid string, t time.Time) { l.DeliveredDigest(uid, t, 0, 0) }

// DeliveredDigest records that uid was delivered at t, with the message's
// digest d and listed size (0: unknown). The record is written to the
// file at once, so it survives the process being killed; it survives a
// crash of the machine only after Commit.
func (l *Log) DeliveredDigest(uid string, t time.Time, d uint64, size int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[uid]
	if e.Delivered {
		return
	}
	e.Delivered, e.FirstFetched = true, time.Unix(t.Unix(), 0)
	l.entries[uid] = e
	l.append('D', uid, t.Unix())
	if d != 0 {
		l.setDigest(uid, e, d, size)
		l.pending.Write(digestRecord(uid, d, size))
		l.records++
	}
	l.writeLocked()
}

// writeLocked writes what is pending to the file (no fsync); the caller
// holds l.mu. A failed write poisons the Log (Commit reports it).
func (l *Log) writeLocked() {
	if l.err != nil || l.pending.Len() == 0 {
		return
	}
	_, err := l.f.Write(l.pending.Bytes())
	l.pending.Reset()
	if err != nil {
		l.err = errkind.WrapTemporary(errkind.Internal, "seen-store "+l.path+": cannot record delivered messages (disk full?); nothing is deleted from the server until this works", err)
	}
}

// KnownDigest reports whether a message with digest d was delivered
// under a UID that no longer counts (an orphan), or, with live, under any
// UID still recorded.
func (l *Log) KnownDigest(d uint64, live bool) bool {
	if d == 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.orphans[d] || live && l.live[d] > 0
}

// Digests returns every digest the Log holds, live and orphan.
func (l *Log) Digests() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ds []uint64
	for _, d := range l.orphanOrder {
		if l.orphans[d] {
			ds = append(ds, d)
		}
	}
	for d := range l.live {
		ds = append(ds, d)
	}
	return ds
}

// AddOrphans keeps ds as orphan digests (from the record of an IMAP
// folder's earlier UIDVALIDITY). Durable only after Commit.
func (l *Log) AddOrphans(ds []uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range ds {
		if l.addOrphan(d) {
			l.appendOrphan(d)
		}
	}
}

// Reused forgets uid because the server now lists another message under
// it (a POP3 server that reuses UIDLs); its digest becomes an orphan, so
// the message it named is still recognised. Durable only after Commit.
func (l *Log) Reused(uid string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.entries[uid]; !ok {
		return
	}
	d := l.drop(uid)
	l.append('X', uid, 0)
	if d != 0 {
		l.appendOrphan(d)
	}
}

// Undo voids the delivery of uid recorded by DeliveredDigest: the local
// side reported it failed after all (a Maildir whose directory could not
// be synced after the rename), so it must be delivered again, not deleted
// as delivered; unlike Reused its digest is not kept as an orphan, so the
// next run does not skip the message as already delivered. Written at
// once, like DeliveredDigest.
func (l *Log) Undo(uid string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.entries[uid]; !ok {
		return
	}
	l.undo(uid)
	l.append('U', uid, 0)
	l.writeLocked()
}

// Failed counts a failed delivery of uid and returns the new count.
// Durable only after Commit.
func (l *Log) Failed(uid string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[uid]
	e.Failures++
	l.entries[uid] = e
	l.append('F', uid, int64(e.Failures))
	return e.Failures
}

// Retain forgets every UID not in listed: the server no longer has those
// messages, so the record of them is dead weight. Call it only with a
// complete listing of the mailbox. Durable only after Commit.
func (l *Log) Retain(listed []string) {
	keep := make(map[string]bool, len(listed))
	for _, u := range listed {
		keep[u] = true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for uid := range l.entries {
		if !keep[uid] {
			d := l.drop(uid)
			l.append('X', uid, 0)
			if d != 0 {
				l.appendOrphan(d)
			}
		}
	}
}

// Commit writes every buffered change and fsyncs the file. When several
// goroutines commit at once, one fsync serves them all. After Commit
// returns nil, every change made before the call survives a crash.
func (l *Log) Commit() error {
	l.mu.Lock()
	want := l.appended
	l.mu.Unlock()

	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.synced >= want {
		l.mu.Lock()
		err := l.err
		l.mu.Unlock()
		return err // another goroutine's fsync covered our changes
	}
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return l.err
	}
	l.writeLocked()
	upto := l.appended
	compact := l.needsCompaction()
	err := l.err
	f := l.f
	l.mu.Unlock()
	if err != nil {
		return err
	}

	// Writes go on under l.mu meanwhile; this fsync covers at least
	// everything up to upto.
	err = f.Sync()
	if err != nil {
		err = errkind.WrapTemporary(errkind.Internal, "seen-store "+l.path+": cannot record delivered messages (disk full?); nothing is deleted from the server until this works", err)
		l.mu.Lock()
		l.err = err // the file may hold half a record: stop appending
		l.mu.Unlock()
		return err
	}
	l.synced = upto
	if compact {
		l.mu.Lock()
		defer l.mu.Unlock()
		if err := l.compact(); err != nil {
			// The appended file is intact and durable; compaction is
			// only an optimisation.
			return nil
		}
	}
	return nil
}

// needsCompaction: the caller holds l.mu.
func (l *Log) needsCompaction() bool {
	// A delivered entry has two records (D and H).
	return l.records > 2*(2*len(l.entries)+len(l.orphans))+256
}

// compact rewrites the file with one record per live UID, atomically.
// The caller holds l.mu (and, outside openLog, l.syncMu) and there is
// nothing pending.
func (l *Log) compact() error {
	op := "seen-store " + l.path + ": compaction"
	tmp, err := os.CreateTemp(filepath.Dir(l.path), ".compact-*")
	if err != nil {
		return errkind.WrapTemporary(errkind.Internal, op, err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	w.Write(record('K', l.key, 0))
	n := 1
	l.orphanOrder = slices.DeleteFunc(l.orphanOrder, func(d uint64) bool { return !l.orphans[d] })
	for _, d := range l.orphanOrder {
		w.Write(record('O', fmt.Sprintf("%016x", d), 0))
		n++
	}
	for uid, e := range l.entries {
		if e.Delivered {
			w.Write(record('D', uid, e.FirstFetched.Unix()))
			n++
		}
		if e.Digest != 0 {
			w.Write(digestRecord(uid, e.Digest, e.Size))
			n++
		}
		if e.Failures > 0 {
			w.Write(record('F', uid, int64(e.Failures)))
			n++
		}
	}
	err = w.Flush()
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = unix.Flock(int(tmp.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), l.path)
	}
	if err == nil {
		err = durable.SyncDir(filepath.Dir(l.path))
	}
	if err != nil {
		tmp.Close()
		return errkind.WrapTemporary(errkind.Internal, op, err)
	}
	// The renamed file is ours now (and locked); the old inode goes.
	l.f.Close()
	l.f = tmp
	l.records = n
	if _, err := l.f.Seek(0, io.SeekEnd); err != nil {
		return errkind.WrapTemporary(errkind.Internal, op, err)
	}
	return nil
}

func (l *Log) close() error {
	err := l.Commit()
	l.mu.Lock()
	defer l.mu.Unlock()
	if cerr := l.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}
