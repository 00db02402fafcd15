package deliver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/hostile"
	"github.com/linkctl/linkctl/internal/scripted"
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
	hit    hostile.Mark
}

func startPeer(t *testing.T, lmtp bool, at, do string) *hostilePeer {
	t.Helper()
	p := &hostilePeer{lmtp: lmtp, at: at, do: do}
	p.ln = scripted.Listen(t, p.serve)
	return p
}

func (p *hostilePeer) serve(conn net.Conn) {
	r := bufio.NewReader(conn)
	say := func(lines ...string) bool { return hostile.Say(conn, lines...) }
	if p.at == "greeting" {
		p.act(conn, r, 1)
		return
	}
	if !say("220 mta.test ESMTP") {
		return
	}
	rcpts := 0
	for {
		_, verb, _, err := hostile.ReadCommand(r)
		if err != nil {
			return
		}
		if verb == "MAIL" || verb == "RCPT" {
			verb, _, _ = strings.Cut(verb, ":")
		}
		state := verb
		if verb == "EHLO" || verb == "LHLO" {
			state = "HELLO"
		}
		if state == p.at {
			if !p.act(conn, r, 1) {
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
			n := 1
			if p.lmtp {
				n = rcpts
			}
			if p.at == "final" {
				if !p.act(conn, r, n) {
					return
				}
				continue
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

// act misbehaves in reply to a request that wants replies replies (more
// than one only for LMTP's final dot: the cuts then spare all but the
// last, so that the damage falls on the reply that completes the
// delivery).
func (p *hostilePeer) act(conn net.Conn, r *bufio.Reader, replies int) bool {
	p.hit.Set()
	say := func(lines ...string) bool { return hostile.Say(conn, lines...) }
	// cut writes the whole replies but the last, then the start of the
	// last without its CRLF.
	cut := func(part string) bool {
		_, err := io.WriteString(conn, strings.Repeat("250 2.0.0 Ok\r\n", replies-1)+part)
		return err == nil
	}
	switch p.do {
	case "close":
		return false
	case "stall":
		hostile.Stall(r)
		return false
	case "drip":
		// Digits without a line end: never a reply. (A dripped "250 "
		// would be one: go-smtp, through bufio's ReadLine, takes a
		// partial line cut by the close as complete, and the MTA had
		// said 250.)
		hostile.Drip(conn, "2")
		return false
	case "drip-250":
		// A success reply that never reaches its line end: cut by the
		// deadline or a cancel, it must not count (RFC 5321 section 4.2),
		// and where 250 is the wrong code it must not count as a refusal.
		if cut("250 2.0.0 Ok: queued as ") {
			hostile.Drip(conn, "x")
		}
		return false
	case "lie:cut-250":
		cut("250 2.0.0 Ok: qu")
		return false
	case "lie:cut-550":
		cut("550 5.1.1 no such us")
		return false
	case "flood-lines":
		hostile.Flood(conn, strings.Repeat("250-flood\r\n", 1000))
		return false
	case "flood-line":
		hostile.Flood(conn, strings.Repeat("2", 4096))
		return false
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

func (p *hostilePeer) target() Target {
	if p.lmtp {
		return NewLMTP(LMTPOptions{Addr: p.ln.Addr().String(), LocalName: "linkctl.test", Timeout: time.Minute})
	}
	return NewSMTP(SMTPOptions{Addr: p.ln.Addr().String(), LocalName: "linkctl.test", Timeout: time.Minute})
}

var hostileEnv = Envelope{From: "a@example.org", To: []string{"u1@mta.test", "u2@mta.test"}}

const hostileMsg = "Subject: hostile\n\nbody\n"

const peerDeadline = 700 * time.Millisecond

// maxHeapGrowth bounds what a hostile peer may add to the heap during one
// delivery and Close: linkctl bounds a reply at 64 KiB (maxReplyOctets);
// the rest is the GC's slack. Before that bound, an endless multi-line
// reply grew the heap by 70-170 MiB in 0.7 s and by 510-640 MiB during
// Close's 5 s QUIT bound.
const maxHeapGrowth = 4 << 20

// maxAllocated bounds the bytes allocated meanwhile (by the whole test
// process: parallel cases add theirs), which no GC can hide.
const maxAllocated = 16 << 20

func TestHostileDeliveryPeer(t *testing.T) {
	type tc struct {
		at, do string
		want   string // in the error; "" when the delivery must succeed
		temp   bool
	}
	step := map[string]string{
		"greeting": "greeting and HELLO", "HELLO": "greeting and HELLO", "MAIL": "MAIL FROM", "RCPT": "RCPT TO:<u1@mta.test>",
		"DATA": "DATA", "final": "end of DATA",
	}
	var cases []tc
	for _, at := range []string{"greeting", "HELLO", "MAIL", "RCPT", "DATA", "final", "QUIT"} {
		for _, do := range []string{"close", "stall", "drip", "drip-250", "flood-lines", "flood-line"} {
			w := step[at]
			switch {
			case at == "QUIT":
				w = "" // delivered before QUIT: Close must end in time
			case do == "stall" || do == "drip" || do == "drip-250":
				w += ": context deadline exceeded"
			case do == "flood-lines":
				w += ": local MTA sent more than 65536 octets without a request: endless reply"
			case do == "flood-line":
				w = "too long a line" // go-smtp's own line limit
			}
			cases = append(cases, tc{at, do, w, true})
		}
		if at != "QUIT" {
			// A reply line cut before its CRLF is no reply: neither a
			// 250 that would confirm the delivery nor a 550 that would
			// make the engine give up the message.
			for _, do := range []string{"lie:cut-250", "lie:cut-550"} {
				cases = append(cases, tc{at, do, step[at] + ": connection lost in the middle of a reply line", true})
			}
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
		hello := map[bool]string{false: "EHLO", true: "LHLO"}[lmtp]
		for _, c := range cases {
			c.want = strings.ReplaceAll(c.want, "HELLO", hello)
			t.Run(proto+"/"+c.at+"/"+c.do, func(t *testing.T) {
				if strings.HasPrefix(c.do, "stall") || strings.HasPrefix(c.do, "drip") || c.at == "QUIT" {
					t.Parallel()
				}
				checkHostileDelivery(t, startPeer(t, lmtp, c.at, c.do), c.want, c.temp)
			})
		}
		if lmtp {
			t.Run("LMTP/final/lie:one-of-two", func(t *testing.T) {
				checkHostileDelivery(t, startPeer(t, true, "final", "lie:one-of-two"), "end of DATA", true)
			})
		}
	}
}

func checkHostileDelivery(t *testing.T, p *hostilePeer, want string, temp bool) {
	t.Helper()
	tg := p.target()
	var err error
	var closeTook time.Duration
	took, g := hostile.Run(peerDeadline, func(ctx context.Context) {
		err = tg.Deliver(ctx, hostileEnv, strings.NewReader(hostileMsg))
		closeStart := time.Now()
		tg.Close()
		closeTook = time.Since(closeStart)
	})
	grown, allocated := g.Peak, g.Allocated
	t.Logf("after %v (Close %v), heap +%d KiB, allocated %d KiB: %v", took.Round(time.Millisecond), closeTook.Round(time.Millisecond), grown>>10, allocated>>10, err)
	if took > peerDeadline+6*time.Second {
		// Close bounds a hanging QUIT at 5 s.
		t.Errorf("delivery and Close took %v, deadline %v", took, peerDeadline)
	}
	if grown > maxHeapGrowth {
		t.Errorf("heap grew by %d KiB against a hostile peer, want at most %d KiB", grown>>10, maxHeapGrowth>>10)
	}
	if allocated > maxAllocated {
		t.Errorf("%d KiB allocated against a hostile peer, want at most %d KiB", allocated>>10, maxAllocated>>10)
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
	hostile.CheckErr(t, err, want, p.ln.Addr().String(), errkind.Delivery, temp)
}

// TestHostileDeliveryCancel: a cancel ends a delivery within a second in
// every state, and the message does not count as delivered.
func TestHostileDeliveryCancel(t *testing.T) {
	var worst time.Duration
	for _, lmtp := range []bool{false, true} {
		for _, at := range []string{"greeting", "HELLO", "MAIL", "RCPT", "DATA", "final"} {
			for _, do := range []string{"stall", "drip", "drip-250", "flood-lines"} {
				p := startPeer(t, lmtp, at, do)
				tg := p.target()
				err, took := hostile.Cancel(t, fmt.Sprintf("lmtp=%v %s/%s", lmtp, at, do), p.hit.C(), func(ctx context.Context) error {
					return tg.Deliver(ctx, hostileEnv, strings.NewReader(hostileMsg))
				})
				worst = max(worst, took)
				if err == nil {
					t.Errorf("lmtp=%v %s/%s: delivered (nil error) though cancelled before the final reply", lmtp, at, do)
				} else if !errkind.IsTemporary(err) {
					t.Errorf("lmtp=%v %s/%s: permanent error %v after a cancel", lmtp, at, do, err)
				} else if do == "flood-lines" && strings.Contains(err.Error(), "endless reply") {
					// The bound on a reply ended it before the cancel.
				} else if !strings.Contains(err.Error(), "linkctl quit") {
					t.Errorf("lmtp=%v %s/%s: error %v, want a temporary one naming the cancel", lmtp, at, do, err)
				}
				tg.Close()
			}
		}
	}
	t.Logf("worst cancel-to-return: %v", worst)
}
