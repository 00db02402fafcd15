package imap

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/netconn"
)

func TestParseResponse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want response
		bad  bool
	}{
		{in: "* OK [CAPABILITY IMAP4rev1 IDLE] ready", want: response{tag: "*", kind: "OK", code: "CAPABILITY", arg: "IMAP4rev1 IDLE", text: "ready"}},
		{in: "a1 no [unavailable] later", want: response{tag: "a1", kind: "NO", code: "UNAVAILABLE", text: "later"}},
		{in: "L2 OK", want: response{tag: "L2", kind: "OK"}},
		{in: "* CAPABILITY IMAP4rev1 STARTTLS", want: response{tag: "*", kind: "CAPABILITY", text: "IMAP4rev1 STARTTLS"}},
		{in: "+ idling", want: response{tag: "+", text: "idling"}},
		{in: "+", want: response{tag: "+"}},
		{in: "* BYE", want: response{tag: "*", kind: "BYE"}},
		{in: "", bad: true},
		{in: "*", bad: true},
		{in: "* OK [ALERT", bad: true},
		{in: "* OK []", bad: true},
		{in: "a(b OK x", bad: true},
	} {
		got, err := parseResponse(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: accepted as %+v", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseCaps(t *testing.T) {
	got, err := parseCaps("IMAP4rev1  idle AUTH=PLAIN IDLE")
	if err != nil || strings.Join(got, " ") != "IMAP4REV1 IDLE AUTH=PLAIN" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := parseCaps("IMAP4rev1 BAD\"CAP"); err == nil {
		t.Fatal("a non-atom capability was accepted")
	}
}

func TestLiteralSize(t *testing.T) {
	for in, want := range map[string]int64{"* ID ({5}": 5, "x {0}": 0, "x {12+}": 12, "no literal": -1, "x }": -1} {
		n, ok, err := literalSize(in)
		if want < 0 && (ok || err != nil) || want >= 0 && (!ok || n != want) {
			t.Errorf("%q: %d %v %v", in, n, ok, err)
		}
	}
	if _, _, err := literalSize("x {-1}"); err == nil {
		t.Error("negative literal accepted")
	}
}

func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{"* OK [CAPABILITY IMAP4rev1] hi", "a NO [X y] z", "+ abc", "* 3 EXISTS", "* OK [", "t BAD"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := parseResponse(line)
		if err != nil {
			return
		}
		if r.tag == "" {
			t.Fatalf("%q: empty tag", line)
		}
		if r.kind != strings.ToUpper(r.kind) || r.code != strings.ToUpper(r.code) {
			t.Fatalf("%q: kind/code not upper case: %+v", line, r)
		}
		if caps, err := parseCaps(r.arg); err == nil {
			for _, c := range caps {
				if c == "" || strings.ContainsAny(c, " ()]{\"\\") {
					t.Fatalf("%q: bad capability %q", line, c)
				}
			}
		}
		literalSize(line)
	})
}

// unquote reverses quote, for the round-trip property.
func unquote(q string) string {
	q = q[1 : len(q)-1]
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if q[i] == '\\' {
			i++
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

func FuzzQuote(f *testing.F) {
	f.Add(`a"b\c`)
	f.Add("s\xc3\xa9cret")
	f.Fuzz(func(t *testing.T, s string) {
		q, ok := quote(s)
		if !ok {
			if !strings.ContainsAny(s, "\r\n\x00") && strings.IndexFunc(s, func(r rune) bool { return r >= 0x80 }) < 0 {
				t.Fatalf("%q: refused to quote a quotable string", s)
			}
			return
		}
		if strings.ContainsAny(q, "\r\n") || unquote(q) != s {
			t.Fatalf("%q quoted as %q", s, q)
		}
	})
}

// FuzzHandshake plays arbitrary server octets at the login and checks that
// Dial returns (with an error or a session) and never panics or hangs, and
// never sends the password anywhere but in LOGIN.
func FuzzHandshake(f *testing.F) {
	f.Add([]byte("* OK [CAPABILITY IMAP4rev1] hi\r\nL1 OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE] in\r\nL2 NO no\r\n"))
	f.Add([]byte("* PREAUTH hi\r\n* CAPABILITY IMAP4rev1\r\nL1 OK\r\n"))
	f.Add([]byte("* OK hi\r\n* ID ({3}\r\nabc)\r\n+ go\r\nL1 BAD x\r\n"))
	f.Add([]byte("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN] hi\r\n+ \r\n+ x\r\nL1 OK\r\n"))
	f.Fuzz(func(t *testing.T, server []byte) {
		c, s := net.Pipe()
		defer s.Close()
		go func() {
			s.Write(server)
			s.Close()
		}()
		go func() { // swallow what the client writes
			buf := make([]byte, 4096)
			for {
				if _, err := s.Read(buf); err != nil {
					return
				}
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cl, err := Dial(ctx, Options{Addr: "fuzz:143", TLS: netconn.TLSNone, User: "u", Password: pass("p"),
			Timeout: time.Second, Dial: func(context.Context) (net.Conn, error) { return c, nil }})
		if err == nil {
			cl.Close()
		}
		if ctx.Err() != nil {
			t.Fatal("handshake hung until the context expired")
		}
	})
}

// FuzzFetchResponses answers UID FETCH 5,7 with arbitrary octets and checks
// that Fetch returns (never panics or hangs) and hands fn only the UIDs it
// asked for, each at most once.
func FuzzFetchResponses(f *testing.F) {
	f.Add([]byte("* 1 FETCH (UID 5 BODY[] {3}\r\nabc)\r\n* 2 FETCH (BODY[] {2}\r\nxy UID 7)\r\nT3 OK done\r\n"))
	f.Add([]byte("* 1 FETCH (UID 9 BODY[] {3}\r\nabc)\r\nT3 OK done\r\n"))
	f.Add([]byte("* 1 FETCH (UID 5 BODY[] {30}\r\nabc"))
	f.Add([]byte("* 1 FETCH (BODY[] {3}\r\nabc)\r\n* 1 FETCH (FLAGS (\\Seen) UID 5)\r\nT3 NO nope\r\n"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		c, s := net.Pipe()
		defer s.Close()
		go func() {
			r := bufio.NewReader(s)
			line := func() { r.ReadString('\n') }
			io.WriteString(s, "* OK [CAPABILITY IMAP4rev1 UIDPLUS] hi\r\n")
			line()
			io.WriteString(s, "L1 OK in\r\n")
			line() // CAPABILITY (none in the OK)
			io.WriteString(s, "* CAPABILITY IMAP4rev1\r\nL2 OK\r\n")
			line()
			line()
			io.WriteString(s, "* 2 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\nT1 OK sel\r\n* 1 FETCH (UID 5 RFC822.SIZE 3 FLAGS ())\r\n* 2 FETCH (UID 7 RFC822.SIZE 2 FLAGS ())\r\nT2 OK\r\n")
			line()
			s.Write(answer)
			s.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cl, err := Dial(ctx, Options{Addr: "fuzz:143", TLS: netconn.TLSNone, User: "u", Password: pass("p"),
			Timeout: time.Second, Dial: func(context.Context) (net.Conn, error) { return c, nil }})
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		defer cl.Close()
		if _, _, err := cl.SelectList(ctx, "INBOX"); err != nil {
			t.Fatalf("select: %v", err)
		}
		got := map[uint32]int{}
		cl.Fetch(ctx, []uint32{5, 7}, func(uid uint32, r io.Reader) error {
			got[uid]++
			_, err := io.Copy(io.Discard, r)
			return err
		})
		for uid, n := range got {
			if uid != 5 && uid != 7 || n != 1 {
				t.Fatalf("fn got UID %d %d times", uid, n)
			}
		}
		if ctx.Err() != nil {
			t.Fatal("Fetch hung until the context expired")
		}
	})
}
