package etrn

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/hostile"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/scripted"
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
	hit    hostile.Mark
}

func startRelay(t *testing.T, at, do string) *hostileRelay {
	t.Helper()
	h := &hostileRelay{at: at, do: do}
	h.ln = scripted.Listen(t, h.serve)
	return h
}

func (h *hostileRelay) serve(conn net.Conn) {
	r := bufio.NewReader(conn)
	if h.at == "greeting" {
		h.act(conn, r)
		return
	}
	if !hostile.Say(conn, "220 relay.test ESMTP") {
		return
	}
	for {
		_, verb, _, err := hostile.ReadCommand(r)
		if err != nil {
			return
		}
		if verb == h.at {
			if !h.act(conn, r) {
				return
			}
			continue
		}
		ok := true
		switch verb {
		case "EHLO":
			ok = hostile.Say(conn, "250-relay.test", "250-ETRN", "250 AUTH PLAIN")
		case "AUTH":
			ok = hostile.Say(conn, "235 2.7.0 Authentication successful")
		case "ETRN":
			ok = hostile.Say(conn, "250 Queuing started")
		case "QUIT":
			hostile.Say(conn, "221 2.0.0 Bye")
			return
		default:
			ok = hostile.Say(conn, "502 5.5.2 Error: command not recognized")
		}
		if !ok {
			return
		}
	}
}

// act misbehaves in place of an answer; it returns whether to go on.
func (h *hostileRelay) act(conn net.Conn, r *bufio.Reader) bool {
	h.hit.Set()
	switch h.do {
	case "close":
		return false
	case "stall":
		hostile.Stall(r)
		return false
	case "drip": // one octet every 20 ms, never a line end
		io.WriteString(conn, "250 ")
		hostile.Drip(conn, "x")
		return false
	case "flood-lines": // a reply that never ends
		hostile.Flood(conn, strings.Repeat("250-flood\r\n", 1000))
		return false
	case "flood-line": // one line that never ends
		hostile.Flood(conn, strings.Repeat("2", 4096))
		return false
	case "lie:554":
		return hostile.Say(conn, "554 5.7.1 no service for you")
	case "lie:pop3":
		return hostile.Say(conn, "+OK POP3 ready")
	case "lie:noetrn":
		return hostile.Say(conn, "250-relay.test", "250 AUTH PLAIN")
	case "lie:535":
		return hostile.Say(conn, "535 5.7.8 Authentication credentials invalid")
	case "lie:codechange":
		return hostile.Say(conn, "250-Queuing", "251 started")
	case "lie:458":
		return hostile.Say(conn, "458 Unable to queue messages for node")
	case "lie:421":
		hostile.Say(conn, "421 4.3.2 Service shutting down")
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
			var res ServerResult
			took, grown := hostile.Run(relayDeadline, func(ctx context.Context) { res = Ask(ctx, h.server(), nil, nil) })
			t.Logf("after %v, heap +%d KiB: %v", took.Round(time.Millisecond), grown.Peak>>10, res.Err)
			if took > relayDeadline+2*time.Second {
				t.Errorf("session took %v, deadline %v", took, relayDeadline)
			}
			if grown.Peak > 16<<20 {
				t.Errorf("heap grew by %d MiB", grown.Peak>>20)
			}
			if c.want == "" {
				if res.Err != nil {
					t.Errorf("error %v after an accepted ETRN", res.Err)
				}
				return
			}
			hostile.CheckErr(t, res.Err, c.want, h.ln.Addr().String(), c.kind, c.temp)
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
			res, took := hostile.Cancel(t, at+"/"+do, h.hit.C(), func(ctx context.Context) ServerResult { return Ask(ctx, h.server(), nil, nil) })
			worst = max(worst, took)
			if at != "QUIT" && (res.Err == nil || !strings.Contains(res.Err.Error(), "linkctl quit") || !errkind.IsTemporary(res.Err)) {
				t.Errorf("%s/%s: error %v, want a temporary one naming the cancel", at, do, res.Err)
			}
		}
	}
	t.Logf("worst cancel-to-return: %v", worst)
}
