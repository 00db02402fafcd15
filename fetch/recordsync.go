package fetch

import (
	"sync"
	"time"
)

// DefaultRecordSync is how long a delivered message's record may wait for
// its fsync while deliveries go on (Options.RecordSync).
const DefaultRecordSync = 100 * time.Millisecond

// recordSync fsyncs a seen-store Log (seen.Log.Commit) some time after records were written
// to it, one fsync for everything written meanwhile. A record is written
// the moment its delivery is accepted, so a kill -9 never loses it; only a
// crash of the machine needs the fsync, and a per-message fsync (which
// measured at about 30% of the rate into a Maildir, competing with the
// Maildir's own) bought no more than this: such a crash duplicates the
// messages of the last interval at most. The caller still Commits before
// any DELE, so nothing is ever deleted on an unsynced record.
type recordSync struct {
	commit func() error  // the Log's Commit
	every  time.Duration // <= 0: fsync after every record, waiting for it
	onErr  func(error)

	mu      sync.Mutex
	timer   *time.Timer // an fsync is scheduled
	stopped bool
	wg      sync.WaitGroup // a scheduled fsync is running
}

// written notes that a record was written; with every <= 0 it fsyncs now
// (shared with concurrent callers, see seen.Log.Commit) and returns the
// error, otherwise it makes sure an fsync runs within every and returns nil.
func (s *recordSync) written() error {
	if s.every <= 0 {
		return s.commit()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil || s.stopped {
		return nil
	}
	s.wg.Add(1)
	s.timer = time.AfterFunc(s.every, func() {
		defer s.wg.Done()
		s.mu.Lock()
		s.timer = nil
		s.mu.Unlock()
		if err := s.commit(); err != nil {
			s.onErr(err)
		}
	})
	return nil
}

// stop cancels a scheduled fsync, or waits for one that is running; the
// caller Commits what is left.
func (s *recordSync) stop() {
	s.mu.Lock()
	s.stopped = true
	if s.timer != nil && s.timer.Stop() {
		s.timer = nil
		s.wg.Done()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
