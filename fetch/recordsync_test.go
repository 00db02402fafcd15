package fetch

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRecordSyncShared: a burst of deliveries costs one fsync of the
// seen-store, not one each (each competed with the local side's own fsync:
// about 30% of the rate into a Maildir), and the fsync still comes within
// the interval when no delivery follows; with a negative interval every
// record is fsynced before the delivery counts, as before.
func TestRecordSyncShared(t *testing.T) {
	var n atomic.Int32
	s := &recordSync{commit: func() error { n.Add(1); return nil }, every: 30 * time.Millisecond, onErr: func(error) {}}
	for range 100 {
		if err := s.written(); err != nil {
			t.Fatal(err)
		}
	}
	if got := n.Load(); got != 0 {
		t.Errorf("%d fsyncs at once, want them after the interval", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("%d fsyncs for a burst of 100 records, want 1", got)
	}
	s.written() // a later record gets its own
	s.stop()    // cancels it: the caller commits what is left
	if got := n.Load(); got != 1 {
		t.Errorf("%d fsyncs after stop, want none scheduled any more", got)
	}

	n.Store(0)
	each := &recordSync{commit: func() error { n.Add(1); return nil }, every: -1}
	for range 10 {
		each.written()
	}
	if got := n.Load(); got != 10 {
		t.Errorf("RecordSync < 0: %d fsyncs for 10 records, want 10", got)
	}
}

// TestRecordSyncError: a failed deferred fsync reaches onErr (the engine
// then stops the pull and deletes nothing), and stop waits for an fsync
// that is running.
func TestRecordSyncError(t *testing.T) {
	var mu sync.Mutex
	var got error
	release := make(chan struct{})
	s := &recordSync{every: time.Millisecond,
		commit: func() error { <-release; return errors.New("disk full") },
		onErr:  func(err error) { mu.Lock(); got = err; mu.Unlock() }}
	s.written()
	time.Sleep(20 * time.Millisecond) // the fsync is running, blocked
	go func() { time.Sleep(20 * time.Millisecond); close(release) }()
	s.stop()
	mu.Lock()
	defer mu.Unlock()
	if got == nil {
		t.Error("stop returned before the running fsync, or its error was dropped")
	}
}
