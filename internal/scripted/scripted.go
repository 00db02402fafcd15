// Package scripted plays one side of a line protocol from a script, over
// net.Pipe, so that a protocol client can be tested against every reply code
// and failure mode without a real server: one script per case.
//
// A script is a list of steps. "S: text" sends a line (CRLF added), "C: text"
// expects the client to send exactly that line, "C~ prefix" expects a line
// starting with prefix (for AUTH blobs and timestamps), "RAW: bytes" sends
// bytes as they are (no CRLF: for overlong lines or half replies), "HANG"
// stops answering but keeps the conn open (timeouts), "CLOSE" closes it
// (link cuts). Run returns the first mismatch, so the test can fail with
// what the client actually said.
//
//	srv := scripted.Start(t, []string{"S: +OK ready", "C: CAPA", "S: +OK", "S: .", "CLOSE"})
//	c, err := pop3.New(srv.Conn, ...)
//	...
//	srv.Wait(t)
//
// For a client that dials its peer itself, Listen and Serve run a test
// peer's session on every connection to a loopback listener.
package scripted

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is the scripted side of a net.Pipe.
type Server struct {
	Conn net.Conn // the client's end: hand it to the client under test

	srv  net.Conn
	done chan error
	mu   sync.Mutex
	got  []string // lines the client sent
}

// Start plays script on one end of a net.Pipe in a goroutine. The test's
// cleanup closes both ends.
func Start(t testing.TB, script []string) *Server {
	t.Helper()
	c, s := net.Pipe()
	srv := &Server{Conn: c, srv: s, done: make(chan error, 1)}
	go func() { srv.done <- srv.play(script) }()
	t.Cleanup(func() { c.Close(); s.Close() })
	return srv
}

func (s *Server) play(script []string) error {
	r := bufio.NewReader(s.srv)
	for i, step := range script {
		verb, arg, _ := strings.Cut(step, " ")
		switch verb {
		case "S:":
			if _, err := s.srv.Write([]byte(arg + "\r\n")); err != nil {
				return fmt.Errorf("step %d %q: write: %v", i, step, err)
			}
		case "RAW:":
			if _, err := s.srv.Write([]byte(arg)); err != nil {
				return fmt.Errorf("step %d %q: write: %v", i, step, err)
			}
		case "C:", "C~":
			line, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("step %d: expected client line %q, got error %v", i, arg, err)
			}
			line = strings.TrimRight(line, "\r\n")
			s.mu.Lock()
			s.got = append(s.got, line)
			s.mu.Unlock()
			if verb == "C:" && line != arg || verb == "C~" && !strings.HasPrefix(line, arg) {
				return fmt.Errorf("step %d: client sent %q, script expected %q", i, line, arg)
			}
		case "HANG":
			// Drain whatever the client writes so it never blocks on the
			// pipe, but never answer.
			buf := make([]byte, 4096)
			for {
				if _, err := s.srv.Read(buf); err != nil {
					return nil
				}
			}
		case "CLOSE":
			return s.srv.Close()
		default:
			return fmt.Errorf("step %d: bad script step %q", i, step)
		}
	}
	return nil
}

// Wait fails the test if the script was not played to its end as written,
// waiting at most 5 seconds for it to finish.
func (s *Server) Wait(t testing.TB) {
	t.Helper()
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("scripted server: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("scripted server: script not finished after 5s; client sent %q", s.Lines())
	}
}

// Err waits for the script to end and returns its error, if any.
func (s *Server) Err() error {
	select {
	case err := <-s.done:
		return err
	case <-time.After(5 * time.Second):
		return fmt.Errorf("script not finished after 5s")
	}
}

// Lines returns the lines the client has sent so far.
func (s *Server) Lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}
