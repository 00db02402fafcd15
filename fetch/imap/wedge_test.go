package imap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/hostile"
	"github.com/linkctl/linkctl/internal/scripted"
)

// fetchWithin runs Fetch of uids 5 and 7 against steps (after the login
// and the listing), cancels ctx after cancelAfter (0: never), and fails
// the test if Fetch has not returned within limit of the cancel (or of the
// start). The inactivity timeout is a minute: only the fix, or the cancel,
// can end these sessions in time.
func fetchWithin(t *testing.T, steps []string, cancelAfter, limit time.Duration, fn func(context.Context, uint32, io.Reader) error) (error, time.Duration) {
	t.Helper()
	srv := scripted.Start(t, script(login, selectList, steps))
	o := scriptOpts(t, srv)
	o.Timeout = time.Minute
	cl, err := Dial(ctxT(t), o)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cl.SelectList(ctxT(t), "INBOX"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	from := make(chan time.Time, 1)
	if cancelAfter > 0 {
		time.AfterFunc(cancelAfter, func() { from <- time.Now(); cancel() })
	} else {
		from <- time.Now()
	}
	done := make(chan error, 1)
	go func() {
		done <- cl.Fetch(ctx, []uint32{5, 7}, func(uid uint32, r io.Reader) error { return fn(ctx, uid, r) })
	}()
	select {
	case err := <-done:
		took := time.Since(<-from)
		cl.Close()
		return err, took
	case <-time.After(cancelAfter + limit):
		// No Close: on a wedged session it would hang too.
		buf := make([]byte, 1<<20)
		t.Errorf("Fetch still running %v after the cancel (or start): wedged\n%s", limit, buf[:runtime.Stack(buf, true)])
		runtime.Goexit()
	}
	return nil, 0
}

func readAll(_ context.Context, _ uint32, r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// TestWedgeUIDlessBodies is issue 15, finding 1: two FETCH responses with
// a body and no UID, then silence or a closed connection. Fetch used to
// wait for go-imap's reader, which waited for someone to take the second
// body: nothing ended it, not even the context.
func TestWedgeUIDlessBodies(t *testing.T) {
	for _, end := range []string{"HANG", "CLOSE"} {
		t.Run(end, func(t *testing.T) {
			err, took := fetchWithin(t, []string{
				"C: T3 UID FETCH 5,7 (UID BODY.PEEK[])",
				"RAW: * 1 FETCH (BODY[] {3}\r\nabc)\r\n* 2 FETCH (BODY[] {2}\r\nxy)\r\n",
				end,
			}, 0, 2*time.Second, readAll)
			if errkind.KindOf(err) != errkind.Protocol || !strings.Contains(err.Error(), "without a UID") {
				t.Fatalf("err %v, want a protocol error saying the body came without a UID", err)
			}
			t.Logf("%v after %v", err, took)
		})
	}
}

// TestCancelEndsFetchInEveryState cancels the context while Fetch is in
// each state a server can leave it in, and wants it back within 2 s.
func TestCancelEndsFetchInEveryState(t *testing.T) {
	slowFn := func(ctx context.Context, _ uint32, r io.Reader) error {
		io.Copy(io.Discard, r)
		<-ctx.Done() // a local delivery that honours the run's context
		return ctx.Err()
	}
	cases := []struct {
		name  string
		steps []string
		fn    func(context.Context, uint32, io.Reader) error
	}{
		{"before any answer", []string{"C: T3 UID FETCH 5,7 (UID BODY.PEEK[])", "HANG"}, readAll},
		{"mid literal", []string{"C: T3 UID FETCH 5,7 (UID BODY.PEEK[])", "RAW: * 1 FETCH (UID 5 BODY[] {100}\r\nabc", "HANG"}, readAll},
		{"body waiting for its UID", []string{"C: T3 UID FETCH 5,7 (UID BODY.PEEK[])", "RAW: * 1 FETCH (BODY[] {3}\r\nabc", "HANG"}, readAll},
		{"between messages", []string{"C: T3 UID FETCH 5,7 (UID BODY.PEEK[])", "RAW: * 1 FETCH (UID 5 BODY[] {3}\r\nabc)\r\n", "HANG"}, readAll},
		{"UID-less body pending while fn delivers", []string{"C: T3 UID FETCH 5,7 (UID BODY.PEEK[])",
			"RAW: * 1 FETCH (UID 5 BODY[] {3}\r\nabc)\r\n* 2 FETCH (BODY[] {2}\r\nxy UID 7)\r\n", "HANG"}, slowFn},
		{"UID-less bodies and silence", []string{"C: T3 UID FETCH 5,7 (UID BODY.PEEK[])",
			"RAW: * 1 FETCH (BODY[] {3}\r\nabc)\r\n* 2 FETCH (BODY[] {2}\r\nxy)\r\n", "HANG"}, slowFn},
		{"flag updates without end", []string{"C: T3 UID FETCH 5,7 (UID BODY.PEEK[])",
			"RAW: " + strings.Repeat("* 1 FETCH (FLAGS ())\r\n", 500), "HANG"}, readAll},
	}
	var worst time.Duration
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err, took := fetchWithin(t, c.steps, 200*time.Millisecond, 2*time.Second, c.fn)
			if err == nil {
				t.Fatal("Fetch succeeded")
			}
			if !errors.Is(err, context.Canceled) && errkind.KindOf(err) != errkind.Protocol {
				t.Errorf("err %v, want the cancel (or the protocol error found first)", err)
			}
			worst = max(worst, took)
			t.Logf("%v, %v after the cancel", err, took)
		})
	}
	t.Logf("worst time from cancel to return: %v", worst)
}

// TestCtxDeadlineEndsTalkativeSession: a server that keeps talking never
// trips the inactivity timeout, and trickles too slowly to trip the flood
// bound; the deadline the fetch engine puts on the context ends it at once.
func TestCtxDeadlineEndsTalkativeSession(t *testing.T) {
	c, s := net.Pipe()
	t.Cleanup(func() { c.Close(); s.Close() })
	go func() {
		io.WriteString(s, "* OK [CAPABILITY IMAP4rev1] hi\r\n")
		buf := make([]byte, 4096)
		s.Read(buf) // LOGIN
		io.WriteString(s, "L1 OK [CAPABILITY IMAP4rev1] in\r\n")
		s.Read(buf) // SELECT, UID FETCH
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(s, "* OK still here %d\r\n", i); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	o := Options{Addr: "talk.test:143", TLS: "none", User: "alice", Password: pass("secret"), Timeout: time.Minute,
		Dial: func(context.Context) (net.Conn, error) { return c, nil }}
	cl, err := Dial(ctxT(t), o)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = cl.SelectList(ctx, "INBOX")
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || !errkind.IsTemporary(err) {
		t.Fatalf("err %v, want the deadline, temporary", err)
	}
	if took > 1500*time.Millisecond {
		t.Fatalf("took %v with a 500ms deadline", took)
	}
}

// TestClaimed1e8MessagesMemory is issue 15, finding 2 (IMAP): a server
// announcing EXISTS 100000000 and listing without end. The listing stops
// at DefaultMaxMessages with an error naming the claim; the heap stays
// small whatever the server claims.
func TestClaimed1e8MessagesMemory(t *testing.T) {
	p := &hostileServer{state: "listing", mode: "lie"}
	c, s := net.Pipe()
	t.Cleanup(func() { c.Close(); s.Close() })
	go p.serve(s)
	o := Options{Addr: "liar.test:143", TLS: "none", User: "alice", Password: pass("secret"), Timeout: time.Minute,
		Dial: func(context.Context) (net.Conn, error) { return c, nil }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	done := make(chan struct{})
	var peak uint64
	go func() {
		defer close(done)
		h := hostile.MeasureHeap()
		defer func() { peak = h.Stop().InusePeak }()
		cl, derr := Dial(ctx, o)
		if derr != nil {
			err = derr
			return
		}
		defer cl.Close()
		_, _, err = cl.SelectList(ctx, "INBOX")
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second): // 0.3 s without -race, some 10 s with it
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		t.Fatalf("listing still running after 60s, heap in use %d MB", ms.HeapInuse>>20)
	}
	want := fmt.Sprintf("server listed more than %d messages in INBOX (it announced EXISTS 100000000)", DefaultMaxMessages)
	if errkind.KindOf(err) != errkind.Protocol || !strings.Contains(fmt.Sprint(err), want) {
		t.Fatalf("err %v, want a protocol error saying %q", err, want)
	}
	if peak > maxHostileHeap {
		t.Fatalf("heap grew by %d MB against a server claiming 10^8 messages, bound %d MB", peak>>20, maxHostileHeap>>20)
	}
	t.Logf("server claiming 10^8 messages: heap in use peaked %.1f MB above the start; process peak RSS %s", float64(peak)/(1<<20), vmHWM())
}

// vmHWM returns the process's peak resident set size, where Linux tells.
func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
