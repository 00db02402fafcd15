package demo

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pop3Server is a small RFC 1939 server with the RFC 2449 extensions a
// modern client looks for (CAPA, UIDL, PIPELINING, RESP-CODES) and one
// in-memory maildrop. Commands are answered in order and replies are
// flushed only when no further command is already buffered, so a
// pipelining client gets its replies in few packets, which is the point of
// PIPELINING on a slow link (RFC 2449 section 6.6).
type pop3Server struct {
	ln   net.Listener
	user string
	pass string

	mu    sync.Mutex
	msgs  []pop3Msg
	inUse bool // RFC 1939 section 4: one session holds the maildrop lock
	wg    sync.WaitGroup
}

type pop3Msg struct {
	uid  string
	text string // CRLF line endings, not dot-stuffed
}

func startPOP3(user, pass string, msgs []msg) (*pop3Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cannot listen for the demo POP3 server: %w", err)
	}
	s := &pop3Server{ln: ln, user: user, pass: pass}
	for i, m := range msgs {
		s.msgs = append(s.msgs, pop3Msg{uid: fmt.Sprintf("demo-%04d-%x", i+1, len(m.Text)), text: crlf(m.Text)})
	}
	go s.serve()
	return s, nil
}

func (s *pop3Server) addr() string { return s.ln.Addr().String() }

func (s *pop3Server) close() { s.ln.Close(); s.wg.Wait() }

func (s *pop3Server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

func (s *pop3Server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.session(c)
		}()
	}
}

func (s *pop3Server) session(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 1024)
	w := bufio.NewWriter(c)
	out := func(format string, args ...any) { fmt.Fprintf(w, format+"\r\n", args...) }
	flush := func() bool {
		if r.Buffered() > 0 {
			return true // more pipelined commands waiting: answer them first
		}
		_ = c.SetWriteDeadline(time.Now().Add(2 * time.Minute))
		return w.Flush() == nil
	}
	out("+OK linkctl demo POP3 server ready")
	if !flush() {
		return
	}
	var user string
	authed := false
	var snapshot []pop3Msg // the maildrop as it was at login
	deleted := map[int]bool{}
	defer func() {
		if authed {
			s.mu.Lock()
			s.inUse = false
			s.mu.Unlock()
		}
	}()
	for {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		line, err := r.ReadString('\n')
		if err != nil {
			return // no QUIT: deletions are not committed (RFC 1939 section 6)
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) > 255 { // RFC 2449 section 4: commands are at most 255 octets
			out("-ERR command too long")
			flush()
			continue
		}
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		msgArg := func() (int, bool) {
			n, err := strconv.Atoi(arg)
			if err != nil || n < 1 || n > len(snapshot) || deleted[n] {
				out("-ERR no such message")
				return 0, false
			}
			return n, true
		}
		switch {
		case verb == "CAPA":
			out("+OK capability list follows")
			for _, l := range []string{"USER", "UIDL", "TOP", "PIPELINING", "RESP-CODES", "IMPLEMENTATION linkctl-demo", "."} {
				out("%s", l)
			}
		case verb == "QUIT":
			if authed {
				s.commit(snapshot, deleted)
			}
			out("+OK bye")
			flush()
			return
		case verb == "NOOP" && authed:
			out("+OK")
		case !authed && verb == "USER":
			user = arg
			out("+OK send PASS")
		case !authed && verb == "PASS":
			if user != s.user || arg != s.pass {
				out("-ERR [AUTH] invalid user name or password")
				break
			}
			s.mu.Lock()
			if s.inUse {
				s.mu.Unlock()
				out("-ERR [IN-USE] maildrop already locked")
				break
			}
			s.inUse = true
			snapshot = append([]pop3Msg(nil), s.msgs...)
			s.mu.Unlock()
			authed = true
			out("+OK maildrop locked and ready, %d messages", len(snapshot))
		case !authed:
			out("-ERR log in first (USER and PASS)")
		case verb == "STAT":
			n, size := 0, 0
			for i, m := range snapshot {
				if !deleted[i+1] {
					n++
					size += len(m.text)
				}
			}
			out("+OK %d %d", n, size)
		case (verb == "LIST" || verb == "UIDL") && arg != "":
			if n, ok := msgArg(); ok {
				if verb == "LIST" {
					out("+OK %d %d", n, len(snapshot[n-1].text))
				} else {
					out("+OK %d %s", n, snapshot[n-1].uid)
				}
			}
		case verb == "LIST" || verb == "UIDL":
			out("+OK listing follows")
			for i, m := range snapshot {
				if deleted[i+1] {
					continue
				}
				if verb == "LIST" {
					out("%d %d", i+1, len(m.text))
				} else {
					out("%d %s", i+1, m.uid)
				}
			}
			out(".")
		case verb == "RETR" || verb == "TOP":
			a, lines, _ := strings.Cut(arg, " ")
			arg = a
			n, ok := msgArg()
			if !ok {
				break
			}
			text := snapshot[n-1].text
			if verb == "TOP" {
				k, err := strconv.Atoi(strings.TrimSpace(lines))
				if err != nil || k < 0 {
					out("-ERR syntax: TOP msg n")
					break
				}
				text = top(text, k)
			}
			out("+OK %d octets", len(snapshot[n-1].text))
			w.WriteString(dotStuff(text))
			out(".")
		case verb == "DELE":
			if n, ok := msgArg(); ok {
				deleted[n] = true
				out("+OK message %d deleted", n)
			}
		case verb == "RSET":
			deleted = map[int]bool{}
			out("+OK")
		default:
			out("-ERR unknown command")
		}
		if !flush() {
			return
		}
	}
}

// commit removes the messages deleted in a session that ended with QUIT
// (the UPDATE state, RFC 1939 section 6).
func (s *pop3Server) commit(snapshot []pop3Msg, deleted map[int]bool) {
	gone := map[string]bool{}
	for n := range deleted {
		gone[snapshot[n-1].uid] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.msgs[:0]
	for _, m := range s.msgs {
		if !gone[m.uid] {
			kept = append(kept, m)
		}
	}
	s.msgs = kept
}

// dotStuff prepares a CRLF text for a multi-line reply (RFC 1939 section
// 3): a leading '.' is doubled, and the text ends with CRLF.
func dotStuff(text string) string {
	if !strings.HasSuffix(text, "\r\n") {
		text += "\r\n"
	}
	lines := strings.SplitAfter(text, "\r\n")
	var b strings.Builder
	for _, l := range lines {
		if strings.HasPrefix(l, ".") {
			b.WriteByte('.')
		}
		b.WriteString(l)
	}
	return b.String()
}

// top returns the header and the first k lines of the body.
func top(text string, k int) string {
	head, body, _ := strings.Cut(text, "\r\n\r\n")
	lines := strings.SplitAfter(body, "\r\n")
	if k < len(lines) {
		lines = lines[:k]
	}
	return head + "\r\n\r\n" + strings.Join(lines, "")
}
