package deliver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
)

// The hostile-peer suite for SMTP and LMTP delivery (issue 15 item 9): a
// local MTA that behaves until the transaction reaches one state
// (greeting, EHLO/LHLO, MAIL, RCPT, DATA, the reply after the final dot,
// QUIT) and then closes, stalls, drips, floods or lies there. What a user
// must never see: a message counted as delivered that the MTA did not take
// (Deliver returns nil only after the final 250, for LMTP one per
// recipient), a delivery that outlives its deadline, or memory that
// follows the peer.

type hostilePeer struct {
	lmtp   bool
	at, do string
	ln     net.Listener
	hit    chan struct{}
	once   sync.Once
}

func startPeer(t *testing.T, lmtp bool, at, do string) *hostilePeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &hostilePeer{lmtp: lmtp, at: at, do: do, ln: ln, hit: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *hostilePeer) serve(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	say := func(lines ...string) bool {
		_, err := io.WriteString(conn, strings.Join(lines, "\r\n")+"\r\n")
		return err == nil
	}
	if p.at == "greeting" {
		p.act(conn, r)
		return
	}
	if !say("220 mta.test ESMTP") {
		return
	}
	rcpts := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		verb = strings.ToUpper(verb)
		if verb == "MAIL" || verb == "RCPT" {
			verb, _, _ = strings.Cut(verb, ":")
		}
		state := verb
		if verb == "EHLO" || verb == "LHLO" {
			state = "HELLO"
		}
		if state == p.at {
			if !p.act(conn, r) {
				return
			}
			continue
		}
		ok := true
		switch state {
		case "HELLO":
			ok = say("250-mta.test", "250-PIPELINING", "250 8BITMIME")
		case "MAIL":
			rcpts = 0
			ok = say("250 2.1.0 Ok")
		case "RCPT":
			rcpts++
			ok = say("250 2.1.5 Ok")
		case "DATA":
			if !say("354 End data with <CR><LF>.<CR><LF>") {
				return
			}
			if !readData(r) {
				return
			}
			if p.at == "final" {
				if !p.act(conn, r) {
					return
				}
				continue
			}
			n := 1
			if p.lmtp {
				n = rcpts
			}
			for range n {
				ok = ok && say("250 2.0.0 Ok: queued")
			}
		case "RSET", "NOOP":
			ok = say("250 2.0.0 Ok")
		case "QUIT":
			say("221 2.0.0 Bye")
			return
		default:
			ok = say("502 5.5.2 Error: command not recognized")
		}
		if !ok {
			return
		}
	}
}

// readData reads the message up to its terminating dot line.
func readData(r *bufio.Reader) bool {
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return false
		}
		if l == ".\r\n" {
			return true
		}
	}
}

func (p *hostilePeer) act(conn net.Conn, r *bufio.Reader) bool {
	p.once.Do(func() { close(p.hit) })
	say := func(lines ...string) bool {
		_, err := io.WriteString(conn, strings.Join(lines, "\r\n")+"\r\n")
		return err == nil
	}
	switch p.do {
	case "close":
		return false
	case "stall":
		io.Copy(io.Discard, r)
		return false
	case "drip":
		// Digits without a line end: never a reply. (A dripped "250 "
		// would be one: go-smtp, through bufio's ReadLine, takes a
		// partial line cut by the close as complete, and the MTA had
		// said 250.)
		for {
			time.Sleep(20 * time.Millisecond)
			if _, err := conn.Write([]byte("2")); err != nil {
				return false
			}
		}
	case "flood-lines":
		chunk := []byte(strings.Repeat("250-flood\r\n", 1000))
		for {
			if _, err := conn.Write(chunk); err != nil {
				return false
			}
		}
	case "flood-line":
		chunk := []byte(strings.Repeat("2", 4096))
		for {
			if _, err := conn.Write(chunk); err != nil {
				return false
			}
		}
	case "lie:554":
		return say("554 5.3.2 no service")
	case "lie:421":
		say("421 4.3.2 shutting down")
		return false
	case "lie:250-not-354":
		// DATA answered as if it were the end of the message.
		return say("250 2.0.0 Ok: queued")
	case "lie:one-of-two":
		// LMTP: the first recipient's 250, then the connection drops
		// before the second's reply.
		say("250 2.0.0 Ok")
		return false
	case "lie:452":
		return say("452 4.3.1 Insufficient system storage")
	}
	panic("unknown behaviour " + p.do)
}

func heapPeak() (stop func() uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base && ms.HeapAlloc-base > peak.Load() {
				peak.Store(ms.HeapAlloc - base)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); <-finished; return peak.Load() }
}

func (p *hostilePeer) target() Target {
	if p.lmtp {
		return NewLMTP(LMTPOptions{Addr: p.ln.Addr().String(), LocalName: "linkctl.test", Timeout: time.Minute})
	}
	return NewSMTP(SMTPOptions{Addr: p.ln.Addr().String(), LocalName: "linkctl.test", Timeout: time.Minute})
}

var hostileEnv = Envelope{From: "a@example.org", To: []string{"u1@mta.test", "u2@mta.test"}}

const hostileMsg = "Subject: hostile\n\nbody\n"

const peerDeadline = 700 * time.Millisecond

func TestHostileDeliveryPeer(t *testing.T) {
	type tc struct {
		at, do string
		want   string // in the error; "" when the delivery must succeed
		temp   bool
	}
	step := map[string]string{
		"greeting": "greeting and", "HELLO": "greeting and", "MAIL": "MAIL FROM", "RCPT": "RCPT TO:<u1@mta.test>",
		"DATA": "DATA", "final": "end of DATA",
	}
	var cases []tc
	for _, at := range []string{"greeting", "HELLO", "MAIL", "RCPT", "DATA", "final", "QUIT"} {
		for _, do := range []string{"close", "stall", "drip", "flood-lines", "flood-line"} {
			w := step[at]
			switch {
			case at == "QUIT":
				w = "" // delivered before QUIT: Close must end in time
			case do == "stall" || do == "drip":
				w += ": context deadline exceeded"
			case do == "flood-line":
				w = "too long a line" // go-smtp's own line limit
			}
			cases = append(cases, tc{at, do, w, true})
		}
	}
	cases = append(cases,
		tc{"greeting", "lie:554", "554", false},
		tc{"MAIL", "lie:421", "421", true},
		tc{"RCPT", "lie:452", "452", true},
		tc{"DATA", "lie:250-not-354", "DATA", false},
		tc{"final", "lie:452", "452", true},
	)
	for _, lmtp := range []bool{false, true} {
		proto := "SMTP"
		if lmtp {
			proto = "LMTP"
		}
		for _, c := range cases {
			t.Run(proto+"/"+c.at+"/"+c.do, func(t *testing.T) {
				if c.do == "stall" || c.do == "drip" || c.at == "QUIT" {
					t.Parallel()
				}
				known := knownDeliverIssue(c.at, c.do)
				if c.do == "flood-lines" && known != "" && os.Getenv("LINKCTL_HOSTILE_ALL") == "" {
					// Hundreds of MiB on a shared machine: only on demand.
					t.Skipf("known issue (LINKCTL_HOSTILE_ALL=1 runs it): %s", known)
				}
				runHostileDelivery(t, startPeer(t, lmtp, c.at, c.do), c.want, c.temp, known)
			})
		}
		if lmtp {
			t.Run("LMTP/final/lie:one-of-two", func(t *testing.T) {
				runHostileDelivery(t, startPeer(t, true, "final", "lie:one-of-two"), "end of DATA", true, "")
			})
		}
	}
}

// knownDeliverIssue names what fetch/deliver (not this file's to change)
// still gets wrong in a case, found by this suite; "" when nothing. Such a
// case still runs (flood-lines only with LINKCTL_HOSTILE_ALL=1) and is
// skipped with its problems when it fails; remove the entry once fixed.
func knownDeliverIssue(at, do string) string {
	switch {
	case do == "flood-lines":
		return "a multi-line reply without end is read whole: go-smtp's ReadResponse keeps every line, " +
			"so the heap follows the peer (70-170 MiB in 0.7 s; 510-640 MiB during Close's 5 s QUIT bound) until the deadline"
	case (at == "greeting" || at == "HELLO") && (do == "stall" || do == "drip"):
		return "a context that ends while the session is being opened (greeting, EHLO/LHLO) is reported as " +
			"\"use of closed network connection\", not as its cause (pool.dial returns p.fail, not context.Cause)"
	}
	return ""
}

func runHostileDelivery(t *testing.T, p *hostilePeer, want string, temp bool, known string) {
	t.Helper()
	if known != "" {
		var problems []string
		soft := &softT{TB: t, problems: &problems}
		done := make(chan struct{})
		go func() { // softT.Fatalf ends this goroutine only
			defer close(done)
			checkHostileDelivery(soft, p, want, temp)
		}()
		<-done
		if len(problems) > 0 {
			t.Skipf("known issue: %s; problems: %q", known, problems)
		}
		t.Logf("known issue no longer seen here (remove it from knownDeliverIssue): %s", known)
		return
	}
	checkHostileDelivery(t, p, want, temp)
}

// softT collects failures instead of failing, for the known issues.
type softT struct {
	testing.TB
	problems *[]string
}

func (s *softT) Errorf(format string, a ...any) {
	*s.problems = append(*s.problems, fmt.Sprintf(format, a...))
}
func (s *softT) Fatalf(format string, a ...any) {
	*s.problems = append(*s.problems, fmt.Sprintf(format, a...))
	runtime.Goexit()
}

func checkHostileDelivery(t testing.TB, p *hostilePeer, want string, temp bool) {
	t.Helper()
	tg := p.target()
	ctx, cancel := context.WithTimeout(context.Background(), peerDeadline)
	defer cancel()
	peak := heapPeak()
	start := time.Now()
	err := tg.Deliver(ctx, hostileEnv, strings.NewReader(hostileMsg))
	closeStart := time.Now()
	tg.Close()
	closeTook := time.Since(closeStart)
	took := time.Since(start)
	grown := peak()
	t.Logf("after %v (Close %v), heap +%d KiB: %v", took.Round(time.Millisecond), closeTook.Round(time.Millisecond), grown>>10, err)
	if took > peerDeadline+6*time.Second {
		// Close bounds a hanging QUIT at 5 s.
		t.Errorf("delivery and Close took %v, deadline %v", took, peerDeadline)
	}
	if grown > 64<<20 {
		t.Errorf("heap grew by %d MiB against a hostile peer", grown>>20)
	}
	if want == "" {
		if err != nil {
			t.Errorf("error %v, want the message delivered", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("delivered (nil error) though the peer never accepted the message; want %q", want)
	}
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p.ln.Addr().String()) {
		t.Errorf("error %q does not say %q and name the peer", err, want)
	}
	if k := errkind.KindOf(err); k != errkind.Delivery {
		t.Errorf("kind %v, want delivery", k)
	}
	if tmp := errkind.IsTemporary(err); tmp != temp {
		t.Errorf("temporary %v, want %v", tmp, temp)
	}
}

// TestHostileDeliveryCancel: a cancel ends a delivery within a second in
// every state, and the message does not count as delivered.
func TestHostileDeliveryCancel(t *testing.T) {
	var worst time.Duration
	for _, lmtp := range []bool{false, true} {
		for _, at := range []string{"greeting", "HELLO", "MAIL", "RCPT", "DATA", "final"} {
			for _, do := range []string{"stall", "drip", "flood-lines"} {
				p := startPeer(t, lmtp, at, do)
				tg := p.target()
				ctx, cancel := context.WithCancelCause(context.Background())
				done := make(chan error, 1)
				go func() { done <- tg.Deliver(ctx, hostileEnv, strings.NewReader(hostileMsg)) }()
				select {
				case <-p.hit:
				case <-time.After(5 * time.Second):
					t.Fatalf("%s/%s: never reached", at, do)
				}
				time.Sleep(50 * time.Millisecond)
				cancelled := time.Now()
				cancel(errors.New("linkctl quit"))
				var err error
				select {
				case err = <-done:
				case <-time.After(10 * time.Second):
					t.Fatalf("%s/%s: still running 10 s after the cancel", at, do)
				}
				took := time.Since(cancelled)
				worst = max(worst, took)
				if took > time.Second {
					t.Errorf("lmtp=%v %s/%s: %v from cancel to return", lmtp, at, do, took)
				}
				if err == nil {
					t.Errorf("lmtp=%v %s/%s: delivered (nil error) though cancelled before the final reply", lmtp, at, do)
				} else if !errkind.IsTemporary(err) {
					t.Errorf("lmtp=%v %s/%s: permanent error %v after a cancel", lmtp, at, do, err)
				} else if !strings.Contains(err.Error(), "linkctl quit") && knownDeliverIssue(at, "stall") != "" {
					t.Logf("lmtp=%v %s/%s: known issue: %v", lmtp, at, do, err)
				} else if !strings.Contains(err.Error(), "linkctl quit") {
					t.Errorf("lmtp=%v %s/%s: error %v, want a temporary one naming the cancel", lmtp, at, do, err)
				}
				tg.Close()
			}
		}
	}
	t.Logf("worst cancel-to-return: %v", worst)
}
