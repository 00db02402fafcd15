package pop3

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/hostile"
)

// The hostile-server suite (issue 15 item 9): a POP3 server that behaves
// until the session reaches one protocol state and then closes, stalls,
// floods or lies there. Each case checks what a user would notice: a clean
// error naming what happened, an end within the session deadline, bounded
// memory, and nothing deleted that was not delivered (no DELE for a message
// that was not delivered; no QUIT after a failed delivery, so that the
// server rolls the DELEs back, RFC 1939 section 6).

// hostileMsgs is the maildrop the server offers before it misbehaves.
var hostileMsgs = []string{
	"Subject: one\r\n\r\nfirst\r\n",
	"Subject: two\r\n\r\nsecond\r\n",
	"Subject: three\r\n\r\nthird\r\n",
}

// hostileServer is the server. at is the state where it misbehaves: greeting,
// CAPA, auth (USER, PASS, AUTH), STAT, UIDL, LIST, RETR, DELE or QUIT; do
// is what it does there:
//
//	close  closes the connection instead of answering
//	stall  reads what the client sends and never answers
//	drip   starts an answer and sends one octet every 20 ms, never a line
//	       end: never inactive, never done
//	flood  sends without end: one endless line, or endless lines of a
//	       listing or a message body
//	lie:X  a scripted lie, X naming it (see lie)
type hostileServer struct {
	at, do string
	retr   int // RETR: which message number misbehaves (0: the first asked)

	mu   sync.Mutex
	cmds []string // every command line received
	hit  hostile.Mark
}

func (h *hostileServer) record(line string) {
	h.mu.Lock()
	h.cmds = append(h.cmds, line)
	h.mu.Unlock()
}

func (h *hostileServer) commands() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.cmds...)
}

func stateOf(verb string) string {
	switch verb {
	case "USER", "PASS", "AUTH":
		return "auth"
	}
	return verb
}

func (h *hostileServer) serve(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	say := func(lines ...string) bool { return hostile.Say(conn, lines...) }
	if h.at == "greeting" {
		h.act(conn, r, "greeting", "")
		return
	}
	if !say("+OK hostile ready") {
		return
	}
	stat := strconv.Itoa(len(hostileMsgs))
	for {
		line, verb, arg, err := hostile.ReadCommand(r)
		if err != nil {
			return
		}
		h.record(line)
		n, _ := strconv.Atoi(arg)
		if stateOf(verb) == h.at && (verb != "RETR" || h.retr == 0 || h.retr == n) {
			if !h.act(conn, r, verb, arg) {
				return
			}
			continue
		}
		ok := true
		switch verb {
		case "CAPA":
			ok = say("+OK", "UIDL", "USER", "SASL PLAIN XOAUTH2", "PIPELINING", ".")
		case "USER", "PASS", "NOOP", "DELE", "RSET":
			ok = say("+OK")
		case "AUTH":
			ok = say("+OK logged in")
		case "QUIT":
			say("+OK bye")
			return
		case "STAT":
			ok = say("+OK " + stat + " 60")
		case "UIDL", "LIST":
			out := []string{"+OK"}
			for i, m := range hostileMsgs {
				if verb == "UIDL" {
					out = append(out, fmt.Sprintf("%d uid-%d", i+1, i+1))
				} else {
					out = append(out, fmt.Sprintf("%d %d", i+1, len(m)))
				}
			}
			ok = say(append(out, ".")...)
		case "RETR":
			if n < 1 || n > len(hostileMsgs) {
				ok = say("-ERR no such message")
				break
			}
			ok = say("+OK", hostileMsgs[n-1]+".")
		default:
			ok = say("-ERR unknown command")
		}
		if !ok {
			return
		}
	}
}

// act misbehaves in answer to verb; it returns whether to keep serving.
func (h *hostileServer) act(conn net.Conn, r *bufio.Reader, verb, arg string) bool {
	h.hit.Set()
	say := func(lines ...string) bool { return hostile.Say(conn, lines...) }
	multi := verb == "CAPA" || verb == "UIDL" || verb == "LIST" || verb == "RETR"
	switch h.do {
	case "close":
		return false
	case "stall":
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return false
			}
			h.record(strings.TrimRight(line, "\r\n"))
		}
	case "drip":
		if multi && !say("+OK") {
			return false
		}
		if _, err := io.WriteString(conn, "+OK "); err == nil {
			hostile.Drip(conn, "x")
		}
		return false
	case "flood":
		chunk := strings.Repeat("flood", 1000)
		if multi {
			if !say("+OK") {
				return false
			}
			// Endless listing lines (each a valid one) or body lines.
			var b strings.Builder
			for i := 1; i <= 1000; i++ {
				if verb == "LIST" {
					fmt.Fprintf(&b, "%d 1000\r\n", i)
				} else {
					fmt.Fprintf(&b, "%d flood-%d\r\n", i, i)
				}
			}
			chunk = b.String()
		}
		hostile.Flood(conn, chunk)
		return false
	}
	// The lies.
	switch h.do {
	case "lie:busy":
		say("-ERR [SYS/TEMP] too busy, try later")
		return false
	case "lie:imap":
		say("* OK IMAP4rev1 ready")
		return false
	case "lie:badpass":
		if verb == "PASS" {
			return say("-ERR [AUTH] invalid login")
		}
		return say("+OK")
	case "lie:challenges":
		for {
			if !say("+ ") {
				return false
			}
			if _, err := r.ReadString('\n'); err != nil {
				return false
			}
		}
	case "lie:huge":
		return say("+OK 99999999 99999999999")
	case "lie:statgarbage":
		return say("+OK lots of mail")
	case "lie:dupuid":
		return say("+OK", "1 same", "2 same", "3 other", ".")
	case "lie:beyond":
		return say("+OK", "1 a", "2 b", "9 c", ".")
	case "lie:missing":
		return say("+OK", "1 10", "2 10", ".")
	case "lie:endlessuidl":
		// STAT claimed 10^8 (lie:huge at STAT is not this case): list
		// without end, each line valid and new.
		if !say("+OK") {
			return false
		}
		w := bufio.NewWriterSize(conn, 64<<10)
		for i := 1; ; i++ {
			fmt.Fprintf(w, "%d %s\r\n", i, uidFor(i))
			if w.Buffered() > 60<<10 {
				if w.Flush() != nil {
					return false
				}
			}
		}
	case "lie:cut":
		io.WriteString(conn, "+OK\r\nSubject: cut\r\n\r\nhalf of it")
		return false
	case "lie:err":
		return say("-ERR [SYS/TEMP] cannot do that now")
	}
	panic("unknown behaviour " + h.do)
}

// uidFor is a unique-id of the longest form RFC 1939 allows (70 octets),
// which is what makes a listing cost the most memory per entry.
func uidFor(i int) string {
	s := strconv.Itoa(i)
	return strings.Repeat("u", 70-len(s)) + s
}

// hostileOutcome is what a session against a hostile server did.
type hostileOutcome struct {
	err       error
	delivered []uint32
	failed    bool // a delivery failed or a RETR broke off
	elapsed   time.Duration
}

// runSession is the fetch engine's use of the client, cut down: connect,
// CAPA, log in, list, retrieve and "deliver" each message, then DELE what
// was delivered and QUIT, only when every retrieval went well; otherwise
// drop the connection so that the server keeps everything. ctx carries the
// session deadline. failAt makes the delivery of that message fail.
// noLimit retrieves without a per-message ceiling, as for a message whose
// LIST size is beyond sense: then only the deadline ends an endless body.
func runSession(ctx context.Context, conn net.Conn, o Options, auth string, failAt uint32, noLimit bool) (out hostileOutcome) {
	start := time.Now()
	defer func() { out.elapsed = time.Since(start) }()
	c, err := NewContext(ctx, conn, o)
	if err != nil {
		out.err = err
		return out
	}
	defer c.Close()
	if _, err := c.Capa(); err != nil {
		out.err = err
		return out
	}
	switch auth {
	case "xoauth2":
		err = c.Auth(XOAuth2Auth("u", "token"), false)
	default:
		err = c.Login("u", "p")
	}
	if err == nil {
		err = c.RefreshCapa()
	}
	if err != nil {
		out.err = err
		return out
	}
	msgs, err := c.Scan()
	if err != nil {
		out.err = err
		return out
	}
	nums := make([]uint32, len(msgs))
	limits := make([]int64, len(msgs))
	for i, m := range msgs {
		nums[i], limits[i] = m.Num, 2*m.Size+1<<20 // as fetch's retrLimit
	}
	if noLimit {
		limits = nil
	}
	err = c.RetrLimited(nums, limits, func(i int, r io.Reader) error {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
		if nums[i] == failAt {
			return errkind.Temporary(errkind.Delivery, "deliver", "local MTA refused message %d", nums[i])
		}
		out.delivered = append(out.delivered, nums[i])
		return nil
	})
	if err != nil {
		out.failed = true
		out.err = err
		return out // no DELE, no QUIT: the server keeps everything
	}
	out.err = c.DeleQuit(out.delivered)
	return out
}

type hostileCase struct {
	at, do  string
	retr    int
	auth    string
	failAt  uint32
	noLimit bool
	want    string // in the error
	kind    errkind.Kind
	temp    bool
	noError bool
}

// hostileCases covers close, stall, drip and flood at every state, then
// the lies.
func hostileCases() []hostileCase {
	var cs []hostileCase
	lineTooLong := "longer than 512 octets"
	floods := map[string]string{
		"greeting": lineTooLong, "CAPA": "CAPA listing has more than 200 lines", "auth": lineTooLong,
		"STAT": lineTooLong, "UIDL": "server listed more than the 3 messages STAT said",
		"LIST": "server listed more than the 3 messages STAT said", "RETR": "message longer than the server announced",
		"DELE": lineTooLong, "QUIT": lineTooLong,
	}
	for _, at := range []string{"greeting", "CAPA", "auth", "STAT", "UIDL", "LIST", "RETR", "DELE", "QUIT"} {
		cs = append(cs,
			hostileCase{at: at, do: "close", want: "server closed the connection", kind: errkind.Network, temp: true},
			hostileCase{at: at, do: "stall", want: "session ended: context deadline exceeded", kind: errkind.Network, temp: true},
			hostileCase{at: at, do: "drip", want: "session ended: context deadline exceeded", kind: errkind.Network, temp: true},
			hostileCase{at: at, do: "flood", want: floods[at], kind: errkind.Protocol, temp: false},
		)
	}
	return append(cs,
		hostileCase{at: "greeting", do: "lie:busy", want: "greeting with -ERR [SYS/TEMP]", kind: errkind.Refused, temp: true},
		hostileCase{at: "greeting", do: "lie:imap", want: "expected +OK or -ERR", kind: errkind.Protocol},
		hostileCase{at: "auth", do: "lie:badpass", want: "invalid login", kind: errkind.Auth},
		hostileCase{at: "auth", do: "lie:challenges", auth: "xoauth2", want: "more than 8 SASL challenges", kind: errkind.Protocol},
		hostileCase{at: "STAT", do: "lie:statgarbage", want: `STAT answer "lots of mail"`, kind: errkind.Protocol},
		hostileCase{at: "STAT", do: "lie:huge", noError: true}, // a claim alone costs nothing: 3 listed, 3 fetched
		hostileCase{at: "UIDL", do: "lie:dupuid", want: "to two messages", kind: errkind.Protocol},
		hostileCase{at: "UIDL", do: "lie:beyond", want: "UIDL lists message 9 of 3", kind: errkind.Protocol},
		hostileCase{at: "LIST", do: "lie:missing", want: "UIDL lists 3 messages, LIST 2", kind: errkind.Protocol},
		hostileCase{at: "RETR", do: "lie:cut", retr: 2, want: "RETR 2: server closed the connection", kind: errkind.Network, temp: true},
		hostileCase{at: "RETR", do: "lie:err", retr: 2, want: "RETR 2 with -ERR [SYS/TEMP]", kind: errkind.Refused, temp: true},
		hostileCase{at: "RETR", do: "flood", noLimit: true, want: "RETR 1: session ended: context deadline exceeded", kind: errkind.Network, temp: true},
		hostileCase{at: "none", do: "deliveryfails", failAt: 2, want: "local MTA refused message 2", kind: errkind.Delivery, temp: true},
		hostileCase{at: "DELE", do: "lie:err", want: "DELE 1 with -ERR", kind: errkind.Refused, temp: true},
		hostileCase{at: "QUIT", do: "lie:err", want: "QUIT with -ERR", kind: errkind.Refused, temp: true},
	)
}

// sessionDeadline is the session deadline of the suite: what a fetch
// engine sets on the context; the inactivity timeout is left far above it
// so that only the deadline can end a stalled or dripping server.
const sessionDeadline = 700 * time.Millisecond

// memBound is the most heap a hostile session may add.
const memBound = 64 << 20

func TestHostileServer(t *testing.T) {
	for _, tc := range hostileCases() {
		name := tc.at + "/" + tc.do
		if tc.noLimit {
			name += "-nolimit"
		}
		t.Run(name, func(t *testing.T) {
			if tc.do == "stall" || tc.do == "drip" {
				// These wait for the deadline and hold little memory:
				// side by side, after the cases whose heap is measured.
				t.Parallel()
			}
			h := &hostileServer{at: tc.at, do: tc.do, retr: tc.retr}
			cli, srv := net.Pipe()
			go h.serve(srv)
			t.Cleanup(func() { cli.Close(); srv.Close() })
			var out hostileOutcome
			_, g := hostile.Run(sessionDeadline, func(ctx context.Context) {
				out = runSession(ctx, cli, Options{Timeout: time.Minute, Server: "hostile.test"}, tc.auth, tc.failAt, tc.noLimit)
			})
			grown := g.Peak
			t.Logf("after %v, heap +%d KiB: %v", out.elapsed.Round(time.Millisecond), grown>>10, out.err)

			if tc.noError {
				if out.err != nil {
					t.Fatalf("error %v, want none", out.err)
				}
			} else {
				server := "hostile.test"
				if tc.kind == errkind.Delivery {
					server = "" // the local MTA's error, not the server's
				}
				hostile.CheckErr(t, out.err, tc.want, server, tc.kind, tc.temp)
			}
			if out.elapsed > sessionDeadline+2*time.Second {
				t.Errorf("session took %v, deadline %v", out.elapsed, sessionDeadline)
			}
			if grown > memBound {
				t.Errorf("heap grew by %d MiB against a hostile server", grown>>20)
			}
			checkNothingLost(t, h.commands(), out)
		})
	}
}

// checkNothingLost: every DELE names a delivered message, and no QUIT
// follows a failed delivery or retrieval (the DELEs would then commit).
func checkNothingLost(t *testing.T, cmds []string, out hostileOutcome) {
	t.Helper()
	delivered := map[string]bool{}
	for _, n := range out.delivered {
		delivered[strconv.Itoa(int(n))] = true
	}
	for _, l := range cmds {
		if n, ok := strings.CutPrefix(l, "DELE "); ok && !delivered[n] {
			t.Errorf("DELE %s sent for a message that was not delivered (commands %q)", n, cmds)
		}
		if l == "QUIT" && out.failed {
			t.Errorf("QUIT sent after a failed delivery: the server commits the DELEs (commands %q)", cmds)
		}
	}
}

// TestHostileClaimMemory is finding 2 of issue 15: STAT claims 10^8
// messages and UIDL (or LIST) lists without end, each entry a valid line
// with the longest unique-id allowed. The listing must end with a
// protocol error naming the claim after MaxMessages entries, with a heap
// that does not follow the claim.
func TestHostileClaimMemory(t *testing.T) {
	for _, at := range []string{"UIDL", "LIST"} {
		t.Run(at, func(t *testing.T) {
			cli, srv := net.Pipe()
			t.Cleanup(func() { cli.Close(); srv.Close() })
			go serveClaim(srv, at)
			var out hostileOutcome
			_, g := hostile.Run(60*time.Second, func(ctx context.Context) {
				out = runSession(ctx, cli, Options{Timeout: time.Minute, Server: "hostile.test"}, "", 0, false)
			})
			grown := g.Peak
			t.Logf("%s: heap peak +%.1f MiB after %v: %v", at, float64(grown)/(1<<20), out.elapsed.Round(time.Millisecond), out.err)
			wantKind(t, out.err, errkind.Protocol, false)
			want := "server listed more than 100000 messages (STAT said 99999999)"
			if !strings.Contains(out.err.Error(), want) {
				t.Errorf("error %q does not say %q", out.err, want)
			}
			if grown > memBound {
				t.Errorf("heap grew by %d MiB against a server claiming 10^8 messages", grown>>20)
			}
		})
	}
}

// serveClaim answers STAT with 10^8 messages and lists without end at
// UIDL or LIST (the other listing honest for 10^5+1 messages).
func serveClaim(conn net.Conn, endless string) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	w := bufio.NewWriterSize(conn, 64<<10)
	fmt.Fprintf(w, "+OK ready\r\n")
	w.Flush()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb := strings.TrimRight(line, "\r\n")
		switch verb {
		case "CAPA":
			fmt.Fprintf(w, "+OK\r\nUIDL\r\nPIPELINING\r\n.\r\n")
		case "STAT":
			fmt.Fprintf(w, "+OK 99999999 99999999999\r\n")
		case "UIDL", "LIST":
			fmt.Fprintf(w, "+OK\r\n")
			for i := 1; verb == endless || i <= DefaultMaxMessages; i++ {
				if verb == "UIDL" {
					// Padded numbers make each line as long as allowed.
					fmt.Fprintf(w, "%0400d %s\r\n", i, uidFor(i))
				} else {
					fmt.Fprintf(w, "%d %d\r\n", i, 1000)
				}
				if w.Buffered() > 60<<10 && w.Flush() != nil {
					return
				}
			}
			fmt.Fprintf(w, ".\r\n")
		default:
			fmt.Fprintf(w, "+OK\r\n")
		}
		if w.Flush() != nil {
			return
		}
	}
}

// TestHostileCancel: a cancel ends the session within a second in every
// protocol state, whatever the server does there (stall, drip or flood),
// and the error names the cancel.
func TestHostileCancel(t *testing.T) {
	var worst time.Duration
	for _, at := range []string{"greeting", "CAPA", "auth", "STAT", "UIDL", "LIST", "RETR", "DELE", "QUIT"} {
		for _, do := range []string{"stall", "drip", "flood"} {
			if do == "flood" && at != "RETR" {
				// These floods end by their own bound (line length,
				// listing size) before a cancel could come.
				continue
			}
			h := &hostileServer{at: at, do: do}
			cli, srv := net.Pipe()
			go h.serve(srv)
			out, took := hostile.Cancel(t, at+"/"+do, h.hit.C(), func(ctx context.Context) hostileOutcome {
				return runSession(ctx, cli, Options{Timeout: time.Minute, Server: "hostile.test"}, "", 0, do == "flood")
			})
			worst = max(worst, took)
			if out.err == nil || !strings.Contains(out.err.Error(), "linkctl quit") || !errkind.IsTemporary(out.err) {
				t.Errorf("%s/%s: error %v, want a temporary one naming the cancel", at, do, out.err)
			}
			checkNothingLost(t, h.commands(), out)
			cli.Close()
			srv.Close()
		}
	}
	t.Logf("worst cancel-to-return: %v", worst)
}
