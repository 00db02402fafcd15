package etrn

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/scripted"
)

const ehloETRN = "S: 250-relay.test" // followed by the keyword lines of each case

// plainServer is the server of most cases: tls none, helo "client.test".
func plainServer(domains ...string) Server {
	return Server{Addr: "relay.test", Domains: domains, TLS: netconn.TLSNone, Helo: "client.test", Timeout: 2 * time.Second}
}

type transcript struct {
	mu    sync.Mutex
	lines []string
}

func (tr *transcript) add(l string) { tr.mu.Lock(); tr.lines = append(tr.lines, l); tr.mu.Unlock() }
func (tr *transcript) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return strings.Join(tr.lines, "\n")
}

func greetEHLO(keywords ...string) []string {
	s := []string{"S: 220 relay.test ESMTP", "C: EHLO client.test"}
	if len(keywords) == 0 {
		return append(s, "S: 250 relay.test")
	}
	s = append(s, ehloETRN)
	for i, k := range keywords {
		sep := "-"
		if i == len(keywords)-1 {
			sep = " "
		}
		s = append(s, "S: 250"+sep+k)
	}
	return s
}

// TestETRNGoldenTranscript checks the exact bytes of a whole session and
// the transcript a user sees with -v.
func TestETRNGoldenTranscript(t *testing.T) {
	script := append(greetEHLO("PIPELINING", "ETRN", "ENHANCEDSTATUSCODES"),
		"C: ETRN example.org", "S: 250 Queuing started",
		"C: ETRN @example.org", "S: 250 2.0.0 Queuing started",
		"C: QUIT", "S: 221 2.0.0 Bye", "CLOSE")
	srv := scripted.Start(t, script)
	var tr transcript
	res := AskConn(context.Background(), srv.Conn, plainServer("example.org", "@example.org"), tr.add, nil)
	srv.Wait(t)
	if res.Err != nil {
		t.Fatalf("AskConn: %v", res.Err)
	}
	want := strings.Join([]string{
		"S: 220 relay.test ESMTP", "C: EHLO client.test", "S: 250-relay.test", "S: 250-PIPELINING",
		"S: 250-ETRN", "S: 250 ENHANCEDSTATUSCODES", "C: ETRN example.org", "S: 250 Queuing started",
		"C: ETRN @example.org", "S: 250 2.0.0 Queuing started", "C: QUIT", "S: 221 2.0.0 Bye",
	}, "\n")
	if got := tr.String(); got != want {
		t.Errorf("transcript:\n%s\nwant:\n%s", got, want)
	}
	if len(res.Domains) != 2 || res.Domains[1].Reply.Enhanced != "2.0.0" || res.Domains[1].Outcome != Started {
		t.Errorf("domains = %+v", res.Domains)
	}
	if !strings.Contains(res.Domains[0].Reading, "Postfix answers 250 Queuing started") {
		t.Errorf("reading of 250 = %q, want the Postfix explanation", res.Domains[0].Reading)
	}
}

// TestETRNReplyCodes runs one script per reply code of RFC 1985 and the
// failures real relays send.
func TestETRNReplyCodes(t *testing.T) {
	cases := []struct {
		reply   string
		outcome Outcome
		kind    errkind.Kind // OK when accepted
		temp    bool
		reading string
	}{
		{"250 Queuing started", Started, errkind.OK, false, "new connection"},
		{"251 OK no messages waiting for node example.org", NothingWaiting, errkind.OK, false, "no mail is waiting for example.org"},
		{"252 OK pending messages for node example.org started", Started, errkind.OK, false, "is waiting and its delivery has started"},
		{"253 7 pending messages for node example.org started", Started, errkind.OK, false, "7 message(s) waiting"},
		{"458 Unable to queue messages for node example.org", TryLater, errkind.Refused, true, "try again later"},
		{"459 4.7.1 <example.org>: service unavailable", Refused, errkind.Refused, false, "fast_flush_domains"},
		{"500 5.5.2 Error: command not recognized", Refused, errkind.Refused, false, "does not implement ETRN"},
		{"501 Syntax Error in Parameters", Refused, errkind.Refused, false, "syntax"},
		{"502 5.5.1 Command not implemented", Refused, errkind.Refused, false, "does not implement ETRN"},
		{"503 5.5.1 Error: send HELO/EHLO first", Refused, errkind.Refused, false, "first"},
		{"530 5.7.0 Authentication required", Refused, errkind.Auth, false, "--password-file"},
		{"550 5.7.1 Access denied", Refused, errkind.Refused, false, "permanently"},
		{"421 4.3.2 Service shutting down", TryLater, errkind.Refused, true, "temporary"},
		{"554 5.3.0 no", Refused, errkind.Refused, false, "permanent failure"},
	}
	for _, tc := range cases {
		t.Run(tc.reply[:3], func(t *testing.T) {
			script := append(greetEHLO("ETRN"), "C: ETRN example.org", "S: "+tc.reply, "C: QUIT", "S: 221 Bye", "CLOSE")
			srv := scripted.Start(t, script)
			res := AskConn(context.Background(), srv.Conn, plainServer("example.org"), nil, nil)
			srv.Wait(t)
			d := res.Domains[0]
			if !d.Sent || d.Outcome != tc.outcome {
				t.Errorf("sent=%v outcome=%v, want sent, %v", d.Sent, d.Outcome, tc.outcome)
			}
			if got := errkind.KindOf(res.Err); got != tc.kind {
				t.Errorf("kind = %v (%v), want %v", got, res.Err, tc.kind)
			}
			if res.Err != nil && errkind.IsTemporary(res.Err) != tc.temp {
				t.Errorf("temporary = %v, want %v", !tc.temp, tc.temp)
			}
			if !strings.Contains(d.Reading, tc.reading) {
				t.Errorf("reading = %q, want it to mention %q", d.Reading, tc.reading)
			}
		})
	}
}

// TestETRNNotOffered: an EHLO without ETRN means ETRN is not sent, and
// the user is told so; --force sends it anyway.
func TestETRNNotOffered(t *testing.T) {
	srv := scripted.Start(t, append(greetEHLO("PIPELINING", "SIZE 10240000"), "C: QUIT", "S: 221 Bye", "CLOSE"))
	res := AskConn(context.Background(), srv.Conn, plainServer("example.org"), nil, nil)
	srv.Wait(t)
	if res.Domains[0].Sent || errkind.KindOf(res.Err) != errkind.Refused || !strings.Contains(res.Err.Error(), "does not offer ETRN") {
		t.Errorf("sent=%v err=%v, want not sent and 'does not offer ETRN'", res.Domains[0].Sent, res.Err)
	}
	if slices.ContainsFunc(srv.Lines(), func(l string) bool { return strings.HasPrefix(l, "ETRN") }) {
		t.Errorf("client sent ETRN: %q", srv.Lines())
	}

	srv = scripted.Start(t, append(greetEHLO("PIPELINING"), "C: ETRN example.org", "S: 250 Queuing started", "C: QUIT", "S: 221 Bye", "CLOSE"))
	s := plainServer("example.org")
	s.Force = true
	res = AskConn(context.Background(), srv.Conn, s, nil, nil)
	srv.Wait(t)
	if res.Err != nil || !res.Domains[0].Sent {
		t.Errorf("with Force: %+v", res)
	}
}

// TestHELOFallback: a server that rejects EHLO gets HELO, and then has no
// ETRN keyword.
func TestHELOFallback(t *testing.T) {
	srv := scripted.Start(t, []string{"S: 220 old.test", "C: EHLO client.test", "S: 502 unknown", "C: HELO client.test", "S: 250 old.test", "C: QUIT", "S: 221 Bye", "CLOSE"})
	res := AskConn(context.Background(), srv.Conn, plainServer("example.org"), nil, nil)
	srv.Wait(t)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "does not offer ETRN") {
		t.Errorf("err = %v", res.Err)
	}
}

// TestStartTLSNotOffered: STARTTLS is required (the default) and the
// server does not offer it: an error, and nothing else is sent.
func TestStartTLSNotOffered(t *testing.T) {
	srv := scripted.Start(t, append(greetEHLO("ETRN", "AUTH PLAIN"), "CLOSE"))
	s := plainServer("example.org")
	s.TLS = netconn.TLSStartTLS
	s.User, s.Password = "u", func(context.Context) (string, error) { return "secret", nil }
	res := AskConn(context.Background(), srv.Conn, s, nil, nil)
	srv.Wait(t)
	if errkind.KindOf(res.Err) != errkind.Protocol || !strings.Contains(res.Err.Error(), "does not offer STARTTLS") {
		t.Errorf("err = %v, want a protocol error about STARTTLS", res.Err)
	}
	if res.Domains[0].Sent {
		t.Errorf("ETRN was sent")
	}
	if got := srv.Lines(); len(got) != 1 {
		t.Errorf("client sent %q after the EHLO reply", got)
	}
}

// TestStartTLSInjection: bytes after the 220 to STARTTLS, before the
// handshake, are refused.
func TestStartTLSInjection(t *testing.T) {
	srv := scripted.Start(t, append(greetEHLO("STARTTLS", "ETRN"), "C: STARTTLS", "RAW: 220 go ahead\r\n250 injected\r\n", "CLOSE"))
	s := plainServer("example.org")
	s.TLS = netconn.TLSStartTLS
	res := AskConn(context.Background(), srv.Conn, s, nil, nil)
	srv.Wait(t)
	if errkind.KindOf(res.Err) != errkind.Protocol || !strings.Contains(res.Err.Error(), "before the TLS handshake") {
		t.Errorf("err = %v", res.Err)
	}
}

// TestGreetingRefused: a 554 greeting is a refusal; 421 a temporary one.
func TestGreetingRefused(t *testing.T) {
	for _, tc := range []struct {
		greet string
		temp  bool
	}{{"554 5.7.1 go away", false}, {"421 4.3.2 busy", true}} {
		srv := scripted.Start(t, []string{"S: " + tc.greet, "CLOSE"})
		res := AskConn(context.Background(), srv.Conn, plainServer("example.org"), nil, nil)
		srv.Wait(t)
		if errkind.KindOf(res.Err) != errkind.Refused || errkind.IsTemporary(res.Err) != tc.temp {
			t.Errorf("%s: err = %v (temp %v)", tc.greet, res.Err, errkind.IsTemporary(res.Err))
		}
	}
}

// TestHostileReplies: overlong lines, endless continuations, garbage,
// silence and a cut link end in clear protocol or network errors.
func TestHostileReplies(t *testing.T) {
	long := "S: 250 " + strings.Repeat("x", 600)
	endless := []string{"S: 220 relay.test", "C: EHLO client.test"}
	for i := 0; i < 150; i++ {
		endless = append(endless, "S: 250-more")
	}
	cases := []struct {
		name   string
		script []string
		kind   errkind.Kind
		want   string
	}{
		{"overlong", append(greetEHLO("ETRN"), "C: ETRN example.org", long), errkind.Protocol, "longer than 512"},
		{"endless", endless, errkind.Protocol, "more than 100 lines"},
		{"garbage", []string{"S: hello there"}, errkind.Protocol, "malformed"},
		{"code change", []string{"S: 220-relay", "S: 250 oops"}, errkind.Protocol, "code changed"},
		{"silence", append(greetEHLO("ETRN"), "C: ETRN example.org", "HANG"), errkind.Network, "did not answer in time"},
		{"cut", append(greetEHLO("ETRN"), "C: ETRN example.org", "CLOSE"), errkind.Network, "EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := scripted.Start(t, tc.script)
			s := plainServer("example.org")
			s.Timeout = 200 * time.Millisecond
			res := AskConn(context.Background(), srv.Conn, s, nil, nil)
			srv.Conn.Close()
			if errkind.KindOf(res.Err) != tc.kind || !strings.Contains(res.Err.Error(), tc.want) {
				t.Errorf("err = %v (kind %v), want kind %v mentioning %q", res.Err, errkind.KindOf(res.Err), tc.kind, tc.want)
			}
		})
	}
}

// TestMultilineEnhanced: a multi-line reply with enhanced codes reads
// cleanly.
func TestMultilineEnhanced(t *testing.T) {
	srv := scripted.Start(t, append(greetEHLO("ETRN", "ENHANCEDSTATUSCODES"),
		"C: ETRN #q1", "S: 459-4.7.1 Node not allowed:", "S: 459-4.7.1 ask the postmaster", "S: 459 4.7.1 at relay.test",
		"C: QUIT", "S: 221 Bye", "CLOSE"))
	res := AskConn(context.Background(), srv.Conn, plainServer("#q1"), nil, nil)
	srv.Wait(t)
	r := res.Domains[0].Reply
	if got, want := r.String(), "459 4.7.1 Node not allowed:; ask the postmaster; at relay.test"; got != want {
		t.Errorf("reply = %q, want %q", got, want)
	}
	if !strings.Contains(res.Domains[0].Reading, "queue q1") {
		t.Errorf("reading = %q", res.Domains[0].Reading)
	}
}

// TestBadArgument: an argument with a space or CRLF is never sent.
func TestBadArgument(t *testing.T) {
	srv := scripted.Start(t, append(greetEHLO("ETRN"), "C: QUIT", "S: 221 Bye", "CLOSE"))
	c, err := NewClient(srv.Conn, ClientOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	for _, arg := range []string{"", "@", "a b", "x\r\nRCPT TO:<a@b>"} {
		if _, err := c.ETRN(arg); !errors.Is(err, ErrBadArgument) {
			t.Errorf("ETRN(%q) = %v, want ErrBadArgument", arg, err)
		}
	}
	c.Quit()
	srv.Wait(t)
}
