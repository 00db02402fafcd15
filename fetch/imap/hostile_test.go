package imap

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/hostile"
	"github.com/linkctl/linkctl/internal/netconn"
)

// hostileServer is a small IMAP server for two messages (UIDs 5 and 7) that
// behaves until the protocol state named by state, and there misbehaves as
// mode says:
//
//	stall   stops answering (reads and drops what the client sends)
//	close   closes the connection
//	flood   sends untagged responses without end (or, where a line is
//	        read whole, one endless line)
//	lie     answers something untrue or malformed, state by state
//
// It records every line the client sends, so that a test can check what
// the client asked the server to delete.
type hostileServer struct {
	state, mode string
	tls         *tls.Config // offered with STARTTLS when set

	mu    sync.Mutex
	lines []string
}

var bodies = map[uint32]string{5: "Subject: five\r\n\r\nfive\r\n", 7: "Subject: seven\r\n\r\nseven\r\n"}

func (p *hostileServer) serve(c net.Conn) {
	defer c.Close()
	send := func(lines ...string) bool { return hostile.Say(c, lines...) }
	if p.misbehave("greeting", c, "") {
		return
	}
	send("* OK hostile ready")
	r := bufio.NewReader(c)
	tlsOn := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		p.mu.Lock()
		p.lines = append(p.lines, line)
		p.mu.Unlock()
		tag, rest, _ := strings.Cut(line, " ")
		verb, args, _ := strings.Cut(rest, " ")
		verb = strings.ToUpper(verb)
		if verb == "UID" {
			v, a, _ := strings.Cut(args, " ")
			verb, args = "UID "+strings.ToUpper(v), a
		}
		state := map[string]string{"CAPABILITY": "capability", "STARTTLS": "starttls", "LOGIN": "login",
			"AUTHENTICATE": "authenticate", "SELECT": "select", "UID STORE": "store", "UID EXPUNGE": "expunge",
			"LOGOUT": "logout"}[verb]
		if verb == "UID FETCH" {
			state = "bodies"
			if strings.HasPrefix(args, "1:*") {
				state = "listing"
			}
		}
		if p.misbehave(state, c, tag) {
			return
		}
		switch state {
		case "capability":
			caps := "* CAPABILITY IMAP4rev1 UIDPLUS AUTH=PLAIN"
			if p.tls != nil && !tlsOn {
				caps += " STARTTLS"
			}
			send(caps, tag+" OK done")
		case "starttls":
			send(tag + " OK begin TLS")
			tc := tls.Server(c, p.tls)
			if tc.Handshake() != nil {
				return
			}
			c, r, tlsOn = tc, bufio.NewReader(tc), true
		case "login":
			send(tag + " OK logged in")
		case "authenticate":
			send("+ ")
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
			send(tag + " OK logged in")
		case "select":
			exists := "2"
			if p.state == "listing" && p.mode == "lie" {
				exists = "100000000" // and the listing never ends
			}
			send("* "+exists+" EXISTS", "* OK [UIDVALIDITY 42] ok", "* OK [UIDNEXT 8] ok", tag+" OK [READ-WRITE] selected")
		case "listing":
			send("* 1 FETCH (UID 5 RFC822.SIZE 25 FLAGS ())", "* 2 FETCH (UID 7 RFC822.SIZE 27 FLAGS ())", tag+" OK listed")
		case "bodies":
			var b strings.Builder
			for i, u := range []uint32{5, 7} {
				if strings.Contains(args, strconv.Itoa(int(u))) {
					fmt.Fprintf(&b, "* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n", i+1, u, len(bodies[u]), bodies[u])
				}
			}
			io.WriteString(c, b.String())
			send(tag + " OK fetched")
		case "store":
			send(tag + " OK stored")
		case "expunge":
			send("* 2 EXPUNGE", "* 1 EXPUNGE", tag+" OK expunged")
		case "logout":
			send("* BYE bye", tag+" OK bye")
			return
		default:
			send(tag + " BAD unknown")
		}
	}
}

// misbehave acts out mode if the session has reached p.state, and reports
// whether the session is over (serve returns).
func (p *hostileServer) misbehave(state string, c net.Conn, tag string) bool {
	if state != p.state {
		return false
	}
	write := func(s string) bool { _, err := io.WriteString(c, s); return err == nil }
	switch p.mode {
	case "stall":
		hostile.Stall(c)
	case "close":
	case "flood":
		// Read what the client sends meanwhile, as a TCP peer's kernel
		// would: the flood is what must end the session, not a write
		// blocked on net.Pipe.
		go hostile.Stall(c)
		switch state {
		case "greeting":
			// One line that never ends.
			write("* OK ")
			hostile.Flood(c, strings.Repeat("a", 4096))
		case "listing":
			// A listing without end, each entry a new UID.
			for i := 1; ; i += 100 {
				var b strings.Builder
				for j := i; j < i+100; j++ {
					fmt.Fprintf(&b, "* %d FETCH (UID %d RFC822.SIZE 10 FLAGS ())\r\n", j, j)
				}
				if !write(b.String()) {
					break
				}
			}
		default:
			line := "* OK [ALERT-NOT] still talking\r\n"
			if state == "bodies" {
				line = "* 1 FETCH (FLAGS (\\Seen))\r\n"
			}
			hostile.Flood(c, strings.Repeat(line, 100))
		}
	case "lie":
		switch state {
		case "greeting":
			write("A1 OK not a greeting\r\n")
			hostile.Stall(c)
		case "capability":
			write("* CAPABILITY IMAP4rev1 \x01\x02\r\n" + tag + " OK\r\n")
			hostile.Stall(c)
		case "starttls":
			// The OK and, in the same packet, plaintext that would be
			// read as if it came over TLS (CVE-2011-0411 class).
			write(tag + " OK begin TLS\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n")
			hostile.Stall(c)
		case "login", "authenticate":
			write("Z99 OK logged in\r\n") // a tag the client never sent
			hostile.Stall(c)
		case "select":
			write("* 2 EXISTS\r\n" + tag + " OK [READ-WRITE] selected, no UIDVALIDITY\r\n")
			hostile.Stall(c)
		case "listing":
			return p.misbehaveAs("flood", state, c, tag)
		case "bodies":
			// Issue 15, finding 1: bodies without UIDs, then silence.
			write("* 1 FETCH (BODY[] {3}\r\nabc)\r\n* 2 FETCH (BODY[] {2}\r\nxy)\r\n")
			hostile.Stall(c)
		case "store":
			write(tag + " NO [ALERT] store refused\r\n")
			hostile.Stall(c)
		case "expunge":
			// More EXPUNGE responses than go-imap's channel holds, for
			// messages never asked about, then OK.
			write(strings.Repeat("* 1 EXPUNGE\r\n", 300) + tag + " OK expunged\r\n")
			hostile.Stall(c)
		case "logout":
			write("\x00\x01\x02 garbage\r\n")
			hostile.Stall(c)
		}
	}
	return true
}

func (p *hostileServer) misbehaveAs(mode, state string, c net.Conn, tag string) bool {
	q := &hostileServer{state: state, mode: mode}
	return q.misbehave(state, c, tag)
}

// deleted returns the UIDs the client asked the server to flag \Deleted
// or expunge.
func (p *hostileServer) deleted() []uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var uids []uint32
	for _, l := range p.lines {
		_, rest, _ := strings.Cut(l, " ")
		up := strings.ToUpper(rest)
		var set string
		switch {
		case strings.HasPrefix(up, "UID STORE ") && strings.Contains(up, `\DELETED`):
			set, _, _ = strings.Cut(rest[len("UID STORE "):], " ")
		case strings.HasPrefix(up, "UID EXPUNGE "):
			set = rest[len("UID EXPUNGE "):]
		case up == "EXPUNGE":
			set = "*"
		default:
			continue
		}
		for _, f := range strings.Split(set, ",") {
			n, err := strconv.ParseUint(f, 10, 32)
			if err != nil {
				uids = append(uids, 0) // a range or "*": not what linkctl sends
				continue
			}
			uids = append(uids, uint32(n))
		}
	}
	return uids
}

// pullHostile runs a whole session the way fetch.IMAPSource does: login,
// SELECT and listing, bodies, commit of what was delivered, logout. It
// returns what fn received whole and the first error.
func pullHostile(ctx context.Context, o Options) (delivered []uint32, err error) {
	cl, err := Dial(ctx, o)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	_, list, err := cl.SelectList(ctx, "INBOX")
	if err != nil {
		return nil, err
	}
	var uids []uint32
	limits := map[uint32]int64{}
	for _, e := range list {
		uids = append(uids, e.UID)
		limits[e.UID] = 2*e.Size + 1<<20
	}
	ferr := cl.FetchLimited(ctx, uids, limits, func(uid uint32, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if string(b) != strings.ReplaceAll(bodies[uid], "\r\n", "\n") {
			return fmt.Errorf("UID %d: body %q", uid, b)
		}
		delivered = append(delivered, uid)
		return nil
	})
	// Commit what was delivered even after a failed fetch: the strictest
	// test that nothing else is ever deleted.
	_, cerr := cl.Commit(ctx, Commit{Delete: delivered})
	return delivered, errors.Join(ferr, cerr)
}

// maxHostileHeap bounds the heap a hostile session may take: the listing
// cap (DefaultMaxMessages entries) plus buffers, whatever the server claims.
const maxHostileHeap = 64 << 20

// TestHostileServers plays a hostile server at every protocol state of a
// pull. Each case must end with a clean error naming what happened, within
// its deadline, in bounded memory, and without asking the server to delete
// anything that was not delivered.
func TestHostileServers(t *testing.T) {
	srvTLS, cliTLS := testCert(t)
	states := []string{"greeting", "capability", "starttls", "login", "authenticate", "select", "listing", "bodies", "store", "expunge", "logout"}
	modes := []string{"stall", "cancel", "close", "flood", "lie"}
	// want: what the error must say (all lower case), "" for success.
	want := func(state, mode string) string {
		switch mode {
		case "stall":
			if state == "logout" {
				return "" // the commit was answered; LOGOUT's own answer does not matter
			}
			return "no answer within"
		case "cancel":
			if state == "logout" {
				return ""
			}
			return "context canceled"
		case "close":
			if state == "logout" {
				return ""
			}
			return "closed"
		case "flood":
			switch state {
			case "greeting":
				return "longer than"
			case "listing":
				return "server listed more than 10000 messages in inbox"
			case "logout":
				return ""
			}
			return "flooded"
		}
		return map[string]string{
			"greeting":     "expected an untagged greeting",
			"capability":   "bad capability",
			"starttls":     "after its starttls answer, before tls",
			"login":        "unknown tag",
			"authenticate": "unknown tag",
			"select":       "no uidvalidity",
			"listing":      "server listed more than 10000 messages in inbox (it announced exists 100000000)",
			"bodies":       "without a uid",
			"store":        "store refused",
			"expunge":      "",
			"logout":       "",
		}[state]
	}
	var worstCancel time.Duration
	for _, state := range states {
		for _, mode := range modes {
			t.Run(state+"/"+mode, func(t *testing.T) {
				p := &hostileServer{state: state, mode: mode}
				if mode == "cancel" {
					p.mode = "stall"
				}
				c, s := net.Pipe()
				t.Cleanup(func() { c.Close(); s.Close() })
				var logs bytes.Buffer
				o := Options{Addr: "hostile.test:143", TLS: netconn.TLSNone, User: "alice", Password: pass("secret"),
					Timeout: 300 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelWarn})),
					Dial: func(context.Context) (net.Conn, error) { return c, nil }}
				// A smaller listing cap keeps the endless-listing cases
				// quick under -race; TestClaimed1e8MessagesMemory runs
				// with the default.
				o.MaxMessages = 10000
				switch state {
				case "starttls":
					p.tls, o.TLS, o.TLSConfig = srvTLS, netconn.TLSStartTLS, cliTLS.Clone()
					o.TLSConfig.ServerName = "127.0.0.1"
				case "authenticate":
					o.Auth = "plain"
				}
				go p.serve(s)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				deadline := 3 * time.Second // the inactivity timeout, and some
				cancelled := make(chan time.Time, 1)
				if mode == "cancel" {
					// The run is cancelled while the server stalls: it must
					// end at once, long before the inactivity timeout.
					o.Timeout = time.Minute
					time.AfterFunc(500*time.Millisecond, func() { cancelled <- time.Now(); cancel() })
				}
				start := time.Now()
				var delivered []uint32
				var err error
				done := make(chan struct{})
				var peak uint64
				go func() {
					defer close(done)
					h := hostile.MeasureHeap()
					delivered, err = pullHostile(ctx, o)
					peak = h.Stop().InusePeak
				}()
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					buf := make([]byte, 1<<20)
					t.Fatalf("session still running after 10s (deadline %v):\n%s", deadline, buf[:runtime.Stack(buf, true)])
				}
				took := time.Since(start)
				if mode == "cancel" {
					after := time.Since(<-cancelled)
					if after > worstCancel {
						worstCancel = after
					}
					if after > 2*time.Second {
						t.Errorf("ended %v after the cancel, want within 2s", after)
					}
				}
				if took > deadline+500*time.Millisecond*time.Duration(boolInt(mode == "cancel")) {
					t.Errorf("took %v, deadline %v", took, deadline)
				}
				w := want(state, mode)
				switch {
				case w == "" && err != nil:
					t.Errorf("err %v, want success", err)
				case w != "" && (err == nil || !strings.Contains(strings.ToLower(err.Error()), w)):
					t.Errorf("err %v, want one saying %q", err, w)
				}
				if err != nil && errkind.KindOf(err) == errkind.Internal {
					t.Errorf("error classified internal: %v", err)
				}
				if peak > maxHostileHeap {
					t.Errorf("heap grew by %d MB, bound %d MB", peak>>20, maxHostileHeap>>20)
				}
				for _, u := range p.deleted() {
					if !slices.Contains(delivered, u) {
						t.Errorf("asked the server to delete UID %d, delivered only %v (client sent %q)", u, delivered, p.lines)
					}
				}
				t.Logf("%v in %v, heap peak +%.1f MB, delivered %v", err, took.Round(time.Millisecond), float64(peak)/(1<<20), delivered)
			})
		}
	}
	t.Logf("worst time from cancel to return: %v", worstCancel.Round(time.Microsecond))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
