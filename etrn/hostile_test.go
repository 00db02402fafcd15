package etrn

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
)

// The hostile-relay suite (issue 15 item 9): an SMTP relay that behaves
// until the session reaches one state (greeting, EHLO, AUTH, ETRN, QUIT)
// and then closes, stalls, drips, floods or lies there. Each case checks a
// clean error naming what happened, an end within the session deadline,
// and bounded memory. The relay is a real loopback listener so that Ask
// runs as the flush stage runs it: dial, context, deadlines.

type hostileRelay struct {
	at, do string
	ln     net.Listener
	hit    chan struct{}
	once   sync.Once
}

func startRelay(t *testing.T, at, do string) *hostileRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hostileRelay{at: at, do: do, ln: ln, hit: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go h.serve(c)
		}
	}()
	return h
}

func (h *hostileRelay) serve(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	say := func(lines ...string) bool {
		_, err := io.WriteString(conn, strings.Join(lines, "\r\n")+"\r\n")
		return err == nil
	}
	if h.at == "greeting" {
		h.act(conn, r)
		return
	}
	if !say("220 relay.test ESMTP") {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		verb = strings.ToUpper(verb)
		if verb == h.at {
			if !h.act(conn, r) {
				return
			}
			continue
		}
		ok := true
		switch verb {
		case "EHLO":
			ok = say("250-relay.test", "250-ETRN", "250 AUTH PLAIN")
		case "AUTH":
			ok = say("235 2.7.0 Authentication successful")
		case "ETRN":
			ok = say("250 Queuing started")
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

// act misbehaves in place of an answer; it returns whether to go on.
func (h *hostileRelay) act(conn net.Conn, r *bufio.Reader) bool {
	h.once.Do(func() { close(h.hit) })
	say := func(lines ...string) bool {
		_, err := io.WriteString(conn, strings.Join(lines, "\r\n")+"\r\n")
		return err == nil
	}
	switch h.do {
	case "close":
		return false
	case "stall":
		io.Copy(io.Discard, r)
		return false
	case "drip": // one octet every 20 ms, never a line end
		io.WriteString(conn, "250 ")
		for {
			time.Sleep(20 * time.Millisecond)
			if _, err := conn.Write([]byte("x")); err != nil {
				return false
			}
		}
	case "flood-lines": // a reply that never ends
		chunk := []byte(strings.Repeat("250-flood\r\n", 1000))
		for {
			if _, err := conn.Write(chunk); err != nil {
				return false
			}
		}
	case "flood-line": // one line that never ends
		chunk := []byte(strings.Repeat("2", 4096))
		for {
			if _, err := conn.Write(chunk); err != nil {
				return false
			}
		}
	case "lie:554":
		return say("554 5.7.1 no service for you")
	case "lie:pop3":
		return say("+OK POP3 ready")
	case "lie:noetrn":
		return say("250-relay.test", "250 AUTH PLAIN")
	case "lie:535":
		return say("535 5.7.8 Authentication credentials invalid")
	case "lie:codechange":
		return say("250-Queuing", "251 started")
	case "lie:458":
		return say("458 Unable to queue messages for node")
	case "lie:421":
		say("421 4.3.2 Service shutting down")
		return false
	}
	panic("unknown behaviour " + h.do)
}

func (h *hostileRelay) server() Server {
	return Server{
		Addr: h.ln.Addr().String(), Domains: []string{"example.org"}, TLS: netconn.TLSNone,
		Helo: "client.test", User: "u", Password: func(context.Context) (string, error) { return "p", nil },
		Timeout: time.Minute, // only the session deadline may end a stall here
	}
}

// heapPeak samples the live heap until stop and returns the highest figure
// above the level at the start.
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

const relayDeadline = 700 * time.Millisecond

func TestHostileRelay(t *testing.T) {
	type tc struct {
		at, do string
		want   string // in the error; "" for none
		kind   errkind.Kind
		temp   bool
	}
	var cases []tc
	for _, at := range []string{"greeting", "EHLO", "AUTH", "ETRN", "QUIT"} {
		c := []tc{
			{at, "close", "server closed the connection", errkind.Network, true},
			{at, "stall", "context deadline exceeded", errkind.Network, true},
			{at, "drip", "context deadline exceeded", errkind.Network, true},
			{at, "flood-lines", "reply of more than 100 lines", errkind.Protocol, false},
			{at, "flood-line", "reply line longer than 512 octets", errkind.Protocol, false},
		}
		if at == "QUIT" {
			// ETRN was answered: what QUIT gets does not matter, but
			// it must not hold the session past its deadline.
			for i := range c {
				c[i].want = ""
			}
		}
		cases = append(cases, c...)
	}
	cases = append(cases,
		tc{"greeting", "lie:554", `server replied "554 5.7.1 no service for you"`, errkind.Refused, false},
		tc{"greeting", "lie:pop3", `malformed reply line "+OK POP3 ready"`, errkind.Protocol, false},
		tc{"EHLO", "lie:noetrn", "does not offer ETRN", errkind.Refused, false},
		tc{"AUTH", "lie:535", "authentication as \"u\" failed", errkind.Auth, false},
		tc{"ETRN", "lie:codechange", "reply code changed from 250 to 251", errkind.Protocol, false},
		tc{"ETRN", "lie:458", "458", errkind.Refused, true},
		tc{"ETRN", "lie:421", "421", errkind.Refused, true},
	)
	for _, c := range cases {
		t.Run(c.at+"/"+c.do, func(t *testing.T) {
			if c.do == "stall" || c.do == "drip" {
				t.Parallel()
			}
			h := startRelay(t, c.at, c.do)
			ctx, cancel := context.WithTimeout(context.Background(), relayDeadline)
			defer cancel()
			peak := heapPeak()
			start := time.Now()
			res := Ask(ctx, h.server(), nil, nil)
			took := time.Since(start)
			grown := peak()
			t.Logf("after %v, heap +%d KiB: %v", took.Round(time.Millisecond), grown>>10, res.Err)
			if took > relayDeadline+2*time.Second {
				t.Errorf("session took %v, deadline %v", took, relayDeadline)
			}
			if grown > 16<<20 {
				t.Errorf("heap grew by %d MiB", grown>>20)
			}
			if c.want == "" {
				if res.Err != nil {
					t.Errorf("error %v after an accepted ETRN", res.Err)
				}
				return
			}
			if res.Err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if !strings.Contains(res.Err.Error(), c.want) || !strings.Contains(res.Err.Error(), h.ln.Addr().String()) {
				t.Errorf("error %q does not say %q and name the relay", res.Err, c.want)
			}
			if k := errkind.KindOf(res.Err); k != c.kind {
				t.Errorf("kind %v, want %v", k, c.kind)
			}
			if tmp := errkind.IsTemporary(res.Err); tmp != c.temp {
				t.Errorf("temporary %v, want %v", tmp, c.temp)
			}
		})
	}
}

// TestHostileRelayCancel: a cancel ends the ETRN session within a second
// in every state, and the error names it.
func TestHostileRelayCancel(t *testing.T) {
	var worst time.Duration
	for _, at := range []string{"greeting", "EHLO", "AUTH", "ETRN", "QUIT"} {
		for _, do := range []string{"stall", "drip"} {
			h := startRelay(t, at, do)
			ctx, cancel := context.WithCancelCause(context.Background())
			done := make(chan ServerResult, 1)
			go func() { done <- Ask(ctx, h.server(), nil, nil) }()
			select {
			case <-h.hit:
			case <-time.After(5 * time.Second):
				t.Fatalf("%s/%s: never reached", at, do)
			}
			time.Sleep(50 * time.Millisecond)
			cancelled := time.Now()
			cancel(errors.New("linkctl quit"))
			var res ServerResult
			select {
			case res = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s/%s: still running 10 s after the cancel", at, do)
			}
			took := time.Since(cancelled)
			worst = max(worst, took)
			if took > time.Second {
				t.Errorf("%s/%s: %v from cancel to return", at, do, took)
			}
			if at != "QUIT" && (res.Err == nil || !strings.Contains(res.Err.Error(), "linkctl quit") || !errkind.IsTemporary(res.Err)) {
				t.Errorf("%s/%s: error %v, want a temporary one naming the cancel", at, do, res.Err)
			}
		}
	}
	t.Logf("worst cancel-to-return: %v", worst)
}
