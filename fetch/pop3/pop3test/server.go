// Package pop3test is an in-memory POP3 server for tests, benchmarks and
// demos: one maildrop, USER/PASS and AUTH PLAIN, UIDL, LIST, RETR, DELE
// with RFC 1939 section 6 semantics (deletions commit at QUIT and roll
// back when the connection drops), optional PIPELINING and STLS.
//
// It answers each command as it reads it, like a real server, so a client
// that pipelines without reading its responses would deadlock against it
// over net.Pipe: that is part of what it tests.
package pop3test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
)

// Server is one maildrop served to any number of sequential sessions.
type Server struct {
	User, Pass string
	Pipelining bool        // announce PIPELINING (before and after login, as Dovecot does)
	TLS        *tls.Config // when set, announce and accept STLS
	// Token, when set, is the one OAuth bearer token accepted for User
	// with SASL XOAUTH2 and OAUTHBEARER (RFC 7628), both announced; any
	// other token gets the error challenge and then -ERR [AUTH], as an
	// expired token does at Gmail or Outlook.
	Token string

	mu       sync.Mutex
	msgs     []msg
	next     int
	client   bytes.Buffer // every octet clients sent
	pipeline int          // sessions in which a command arrived before the previous was answered
	lockstep int          // ... and in which it never did
}

type msg struct {
	uid  string
	wire []byte // dot-stuffed, CRLF line ends, without the terminating ".\r\n"
	size int
}

// Add appends a message (any line ends; stored with CRLF) and returns its UID.
func (s *Server) Add(raw []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	uid := fmt.Sprintf("uid-%06d", s.next)
	s.msgs = append(s.msgs, msg{uid: uid, wire: wire(raw, true), size: len(wire(raw, false))})
	return uid
}

// Count returns the messages in the maildrop.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// ClientBytes returns every octet clients have sent so far.
func (s *Server) ClientBytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.client.Bytes()...)
}

// Pipelined reports in how many sessions a client sent a command before
// the previous one was answered.
func (s *Server) Pipelined() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pipeline
}

// wire converts raw to CRLF line ends (adding a final one) and, when
// stuffed, doubles the dot at the start of each line (RFC 1939 section 3).
func wire(raw []byte, stuffed bool) []byte {
	out := make([]byte, 0, len(raw)+len(raw)/32+2)
	bol := true
	for i := 0; i < len(raw); i++ {
		ch := raw[i]
		if bol && ch == '.' && stuffed {
			out = append(out, '.')
		}
		bol = false
		switch {
		case ch == '\r' && i+1 < len(raw) && raw[i+1] == '\n':
			continue // the LF below writes the pair
		case ch == '\n':
			out = append(out, '\r', '\n')
			bol = true
			continue
		}
		out = append(out, ch)
	}
	if !bol {
		out = append(out, '\r', '\n')
	}
	return out
}

// Pipe starts a session over net.Pipe and returns the client's end.
func (s *Server) Pipe() net.Conn {
	c, srv := net.Pipe()
	go func() { s.Serve(srv); srv.Close() }()
	return c
}

// ServeListener serves sessions from l until it is closed.
func (s *Server) ServeListener(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() { s.Serve(c); c.Close() }()
	}
}

type recorder struct {
	s *Server
	r io.Reader
}

func (r recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.s.mu.Lock()
	r.s.client.Write(p[:n])
	r.s.mu.Unlock()
	return n, err
}

// Serve runs one session on conn. It returns when the client quits or the
// connection fails; deletions are committed only on QUIT.
func (s *Server) Serve(conn net.Conn) error {
	var tr *bufio.Reader
	var w *bufio.Writer
	setConn := func(c net.Conn) {
		tr = bufio.NewReader(recorder{s, c})
		w = bufio.NewWriterSize(c, 32<<10)
	}
	setConn(conn)
	reply := func(format string, a ...any) error {
		fmt.Fprintf(w, format+"\r\n", a...)
		return w.Flush()
	}
	if err := reply("+OK pop3test ready <1.2@pop3test>"); err != nil {
		return err
	}
	s.mu.Lock()
	drop := append([]msg(nil), s.msgs...)
	s.mu.Unlock()
	deleted := map[int]bool{}
	authed, user, pipelined, tlsOn := false, "", false, false
	for {
		line, err := tr.ReadString('\n')
		if err != nil {
			return err
		}
		if tr.Buffered() > 0 {
			pipelined = true
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		num := func() (int, bool) {
			n, err := strconv.Atoi(arg)
			if err != nil || n < 1 || n > len(drop) || deleted[n-1] {
				reply("-ERR no such message")
				return 0, false
			}
			return n - 1, true
		}
		switch {
		case verb == "CAPA":
			caps := []string{"+OK", "TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "SASL PLAIN"}
			if s.Token != "" {
				caps[len(caps)-1] += " XOAUTH2 OAUTHBEARER"
			}
			if s.TLS != nil && !tlsOn && !authed {
				caps = append(caps, "STLS")
			}
			if s.Pipelining {
				caps = append(caps, "PIPELINING")
			}
			err = reply("%s\r\n.", strings.Join(caps, "\r\n"))
		case verb == "QUIT":
			s.mu.Lock()
			if pipelined {
				s.pipeline++
			} else {
				s.lockstep++
			}
			if authed {
				var keep []msg
				for _, m := range s.msgs {
					gone := false
					for i, d := range drop {
						if deleted[i] && d.uid == m.uid {
							gone = true
						}
					}
					if !gone {
						keep = append(keep, m)
					}
				}
				s.msgs = keep
			}
			s.mu.Unlock()
			return reply("+OK bye")
		case verb == "STLS" && s.TLS != nil && !tlsOn && !authed:
			if err := reply("+OK begin TLS"); err != nil {
				return err
			}
			tc := tls.Server(conn, s.TLS)
			if err := tc.Handshake(); err != nil {
				return err
			}
			tlsOn = true
			setConn(tc)
		case !authed && verb == "USER":
			user = arg
			err = reply("+OK")
		case !authed && verb == "PASS":
			if user == s.User && arg == s.Pass {
				authed = true
				err = reply("+OK logged in")
			} else {
				err = reply("-ERR [AUTH] invalid login")
			}
		case !authed && verb == "AUTH" && strings.HasPrefix(strings.ToUpper(arg), "PLAIN "):
			ir, _ := base64.StdEncoding.DecodeString(arg[6:])
			if string(ir) == "\x00"+s.User+"\x00"+s.Pass {
				authed = true
				err = reply("+OK logged in")
			} else {
				err = reply("-ERR [AUTH] invalid login")
			}
		case !authed && verb == "AUTH" && s.Token != "":
			mech, ir, _ := strings.Cut(arg, " ")
			mech = strings.ToUpper(mech)
			if mech != "XOAUTH2" && mech != "OAUTHBEARER" {
				err = reply("-ERR unsupported mechanism")
				break
			}
			if ir == "" {
				// Two-step form: ask for the response (RFC 5034 section 4).
				if err = reply("+ "); err != nil {
					return err
				}
				if ir, err = tr.ReadString('\n'); err != nil {
					return err
				}
				ir = strings.TrimRight(ir, "\r\n")
			}
			resp, _ := base64.StdEncoding.DecodeString(ir)
			if bearerOK(mech, string(resp), s.User, s.Token) {
				authed = true
				err = reply("+OK logged in")
				break
			}
			// RFC 7628 section 3.2.2: an error challenge, then the client's
			// dummy response, then the failure.
			if err = reply("+ %s", base64.StdEncoding.EncodeToString([]byte(`{"status":"invalid_token","schemes":"bearer"}`))); err != nil {
				return err
			}
			if _, err = tr.ReadString('\n'); err != nil {
				return err
			}
			err = reply("-ERR [AUTH] invalid token")
		case !authed:
			err = reply("-ERR not logged in")
		case verb == "NOOP":
			err = reply("+OK")
		case verb == "RSET":
			deleted = map[int]bool{}
			err = reply("+OK")
		case verb == "STAT":
			n, size := 0, 0
			for i, m := range drop {
				if !deleted[i] {
					n, size = n+1, size+m.size
				}
			}
			err = reply("+OK %d %d", n, size)
		case verb == "UIDL" && arg == "", verb == "LIST" && arg == "":
			fmt.Fprintf(w, "+OK\r\n")
			for i, m := range drop {
				if deleted[i] {
					continue
				}
				if verb == "UIDL" {
					fmt.Fprintf(w, "%d %s\r\n", i+1, m.uid)
				} else {
					fmt.Fprintf(w, "%d %d\r\n", i+1, m.size)
				}
			}
			err = reply(".")
		case verb == "RETR":
			if i, ok := num(); ok {
				fmt.Fprintf(w, "+OK %d octets\r\n", drop[i].size)
				w.Write(drop[i].wire)
				err = reply(".")
			}
		case verb == "DELE":
			if i, ok := num(); ok {
				deleted[i] = true
				err = reply("+OK marked")
			}
		default:
			err = reply("-ERR unknown command")
		}
		if err != nil {
			return err
		}
	}
}

// bearerOK checks an XOAUTH2 ("user=U^Aauth=Bearer T^A^A") or OAUTHBEARER
// ("n,a=U,^Aauth=Bearer T^A^A", RFC 7628 section 3.1) response.
func bearerOK(mech, resp, user, token string) bool {
	want := "user=" + user + "\x01auth=Bearer " + token + "\x01\x01"
	if mech == "OAUTHBEARER" {
		want = "n,a=" + user + ",\x01auth=Bearer " + token + "\x01\x01"
	}
	return resp == want
}
