// Package hostile holds what the hostile-peer test suites share (issue 15
// item 9: etrn, fetch/deliver, fetch/pop3, fetch/imap). Each suite plays a
// peer that behaves until the session reaches one protocol state and then
// misbehaves there; each protocol keeps its own peer, since what "behaves"
// means is the protocol's, and takes from here:
//
//   - the misbehaviours themselves, which are the same bytes whatever the
//     protocol: Stall (read, never answer), Drip (one octet every 20 ms,
//     never a line end), Flood (write without end), and Say for a scripted
//     lie;
//   - ReadCommand, a peer's read of the next command line;
//   - a Mark the peer sets when it starts to misbehave, so that a test can
//     cancel the session right there;
//   - Run, which runs a session under its deadline and measures the time
//     and the heap it took (MeasureHeap), and CheckErr, which checks the
//     error a user would read;
//   - Cancel, which cancels a session in the state the Mark names and
//     checks that it ends within a second.
//
// A test suite's peer:
//
//	if verb == p.at {
//		p.hit.Set()
//		switch p.do {
//		case "stall":
//			hostile.Stall(r)
//		case "drip":
//			hostile.Drip(conn, "x")
//		}
//	}
//
// and its cancel test:
//
//	res, took := hostile.Cancel(t, at+"/"+do, p.hit.C(), func(ctx context.Context) error { return run(ctx) })
package hostile

import (
	"bufio"
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
)

// Say writes lines, each ended by CRLF, and reports whether the write
// went through (false: the client has gone, the peer should stop).
func Say(w io.Writer, lines ...string) bool {
	_, err := io.WriteString(w, strings.Join(lines, "\r\n")+"\r\n")
	return err == nil
}

// ReadCommand reads the next command line and returns it without its line
// end, its first word in upper case and the rest.
func ReadCommand(r *bufio.Reader) (line, verb, arg string, err error) {
	line, err = r.ReadString('\n')
	if err != nil {
		return "", "", "", err
	}
	line = strings.TrimRight(line, "\r\n")
	verb, arg, _ = strings.Cut(line, " ")
	return line, strings.ToUpper(verb), arg, nil
}

// Stall reads and drops what the client sends and never answers, until
// the connection ends.
func Stall(r io.Reader) { io.Copy(io.Discard, r) }

// DripEvery is the pace of Drip: slow enough that only a deadline ends a
// session, fast enough that no inactivity timeout ever fires.
const DripEvery = 20 * time.Millisecond

// Drip writes octet every DripEvery until a write fails: a reply that is
// never inactive and never done.
func Drip(w io.Writer, octet string) {
	for {
		time.Sleep(DripEvery)
		if _, err := io.WriteString(w, octet); err != nil {
			return
		}
	}
}

// Flood writes chunk again and again until a write fails.
func Flood(w io.Writer, chunk string) {
	b := []byte(chunk)
	for {
		if _, err := w.Write(b); err != nil {
			return
		}
	}
}

// Mark is closed once, when a peer starts to misbehave. Its zero value is
// ready for use.
type Mark struct {
	mu  sync.Mutex
	c   chan struct{}
	set bool
}

func (m *Mark) ch() chan struct{} {
	if m.c == nil {
		m.c = make(chan struct{})
	}
	return m.c
}

// Set closes the channel C returns; later calls do nothing.
func (m *Mark) Set() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.set {
		close(m.ch())
		m.set = true
	}
}

// C is closed once Set has been called.
func (m *Mark) C() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ch()
}

// Growth is what the heap grew by while a Heap measured it.
type Growth struct {
	Peak      uint64 // highest live heap (HeapAlloc) above the start
	InusePeak uint64 // highest heap in use (HeapInuse, spans) above the start
	Allocated uint64 // bytes allocated meanwhile (cumulative, so a short burst between two samples still counts)
}

// Heap samples the heap every 5 ms from MeasureHeap to Stop. The figures
// are the whole test process's: parallel cases add theirs.
type Heap struct {
	base, baseInuse, baseTotal uint64
	peak, peakInuse            atomic.Uint64
	done, finished             chan struct{}
}

// MeasureHeap collects garbage, takes the heap at that point as the base
// and samples it until Stop.
func MeasureHeap() *Heap {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h := &Heap{base: ms.HeapAlloc, baseInuse: ms.HeapInuse, baseTotal: ms.TotalAlloc,
		done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(h.finished)
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			h.sample(&ms)
			select {
			case <-h.done:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *Heap) sample(ms *runtime.MemStats) {
	runtime.ReadMemStats(ms)
	if ms.HeapAlloc > h.base && ms.HeapAlloc-h.base > h.peak.Load() {
		h.peak.Store(ms.HeapAlloc - h.base)
	}
	if ms.HeapInuse > h.baseInuse && ms.HeapInuse-h.baseInuse > h.peakInuse.Load() {
		h.peakInuse.Store(ms.HeapInuse - h.baseInuse)
	}
}

// Stop ends the sampling, takes one last sample and returns the growth.
func (h *Heap) Stop() Growth {
	close(h.done)
	<-h.finished
	var ms runtime.MemStats
	h.sample(&ms)
	return Growth{Peak: h.peak.Load(), InusePeak: h.peakInuse.Load(), Allocated: ms.TotalAlloc - h.baseTotal}
}

// Run runs session under a context with the given deadline, as a stage
// runs a session, and returns how long it took and what the heap grew by
// meanwhile.
func Run(deadline time.Duration, session func(ctx context.Context)) (took time.Duration, g Growth) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	h := MeasureHeap()
	start := time.Now()
	session(ctx)
	took = time.Since(start)
	return took, h.Stop()
}

// CheckErr fails the test unless err says want, names peer (its address or
// name; "" skips that check), and is of kind and as temporary as told.
func CheckErr(t testing.TB, err error, want, peer string, kind errkind.Kind, temp bool) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one saying %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if peer != "" && !strings.Contains(err.Error(), peer) {
		t.Errorf("error %q does not name the peer %s", err, peer)
	}
	if k := errkind.KindOf(err); k != kind {
		t.Errorf("error %q: kind %v, want %v", err, k, kind)
	}
	if tmp := errkind.IsTemporary(err); tmp != temp {
		t.Errorf("error %q: temporary %v, want %v", err, tmp, temp)
	}
}

// ErrQuit is the cause Cancel cancels with: the session's error must name
// it.
var ErrQuit = errors.New("linkctl quit")

// CancelWithin is how soon after a cancel a session must return.
const CancelWithin = time.Second

// Cancel runs session in a goroutine under a context that it cancels
// (cause ErrQuit) once reached is closed and 50 ms more have passed, for
// the client to block in that state. It returns what session returned and
// the time from the cancel to the return, and fails the test, naming the
// case, when reached is not closed within 5 s, when the session runs on
// 10 s after the cancel, or when it returns later than CancelWithin.
func Cancel[T any](t testing.TB, name string, reached <-chan struct{}, session func(context.Context) T) (T, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	done := make(chan T, 1)
	go func() { done <- session(ctx) }()
	select {
	case <-reached:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: the session never reached the state", name)
	}
	time.Sleep(50 * time.Millisecond)
	cancelled := time.Now()
	cancel(ErrQuit)
	var res T
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: session still running 10 s after the cancel", name)
	}
	took := time.Since(cancelled)
	if took > CancelWithin {
		t.Errorf("%s: %v from cancel to return, want within %v", name, took, CancelWithin)
	}
	return res, took
}
