package demo

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// relay plays the ISP's mail relay: the MX that holds mail for the demo
// domain while the link is down, and the smarthost our outbound queue is
// sent to. It speaks just enough SMTP on net/textproto for that (go-smtp's
// server cannot be taught ETRN): EHLO advertising ETRN (RFC 1985 section
// 3), MAIL/RCPT/DATA, and ETRN, after which it delivers what it holds over
// a new connection to our "local MTA", as a real relay does.
type relay struct {
	ln     net.Listener
	domain string
	// deliverTo is where held mail goes after ETRN (the sink, possibly
	// through the modem).
	deliverTo func() string
	log       *slog.Logger

	mu       sync.Mutex
	held     []msg
	accepted []msg // outbound mail received as the smarthost
	wg       sync.WaitGroup
	closed   bool
}

func startRelay(domain string, held []msg, log *slog.Logger) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cannot listen for the demo relay: %w", err)
	}
	r := &relay{ln: ln, domain: domain, held: held, log: log}
	go r.serve()
	return r, nil
}

func (r *relay) addr() string { return r.ln.Addr().String() }

func (r *relay) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.ln.Close()
	r.wg.Wait()
}

func (r *relay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.session(c)
		}()
	}
}

func (r *relay) heldCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.held)
}

func (r *relay) outbound() []msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]msg(nil), r.accepted...)
}

const relayName = "relay.demo.example"

func (r *relay) session(c net.Conn) {
	defer c.Close()
	tp := textproto.NewConn(struct {
		io.Reader
		io.WriteCloser
	}{bufio.NewReaderSize(c, 4096), c})
	reply := func(format string, args ...any) bool {
		_ = c.SetWriteDeadline(time.Now().Add(time.Minute))
		return tp.PrintfLine(format, args...) == nil
	}
	if !reply("220 %s ESMTP linkctl demo relay", relayName) {
		return
	}
	var from string
	var to []string
	for {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		if len(line) > 1000 { // RFC 5321 section 4.5.3.1.4: 512 octets for a command line
			reply("500 5.5.2 line too long")
			continue
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			reply("250-%s hello %s", relayName, arg)
			reply("250-PIPELINING")
			reply("250-8BITMIME")
			reply("250-SIZE 10485760")
			reply("250 ETRN")
		case "HELO":
			reply("250 %s", relayName)
		case "MAIL":
			if !strings.HasPrefix(strings.ToUpper(arg), "FROM:") {
				reply("501 5.5.4 syntax: MAIL FROM:<address>")
				continue
			}
			from = ""
			if f := strings.Fields(arg[5:]); len(f) > 0 {
				from = strings.Trim(f[0], "<>")
			}
			to = nil
			reply("250 2.1.0 sender ok")
		case "RCPT":
			if !strings.HasPrefix(strings.ToUpper(arg), "TO:") {
				reply("501 5.5.4 syntax: RCPT TO:<address>")
				continue
			}
			f := strings.Fields(arg[3:])
			if len(f) == 0 || strings.Trim(f[0], "<>") == "" {
				reply("501 5.1.3 empty recipient")
				continue
			}
			to = append(to, strings.Trim(f[0], "<>"))
			reply("250 2.1.5 recipient ok")
		case "DATA":
			if len(to) == 0 {
				reply("503 5.5.1 RCPT first")
				continue
			}
			reply("354 end data with <CR><LF>.<CR><LF>")
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Minute))
			body, err := io.ReadAll(io.LimitReader(tp.DotReader(), 10<<20))
			if err != nil {
				return
			}
			r.accept(from, to, string(body))
			reply("250 2.0.0 queued")
			from, to = "", nil
		case "RSET":
			from, to = "", nil
			reply("250 2.0.0 ok")
		case "NOOP":
			reply("250 2.0.0 ok")
		case "QUIT":
			reply("221 2.0.0 bye")
			return
		case "ETRN":
			reply("%s", r.etrn(strings.TrimSpace(arg)))
		default:
			reply("502 5.5.2 command not recognized")
		}
	}
}

// accept files a message received as the smarthost: mail for our own
// domain is held like any other (it waits for the next ETRN), the rest
// "leaves for the Internet".
func (r *relay) accept(from string, to []string, body string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rc := range to {
		m := msg{From: from, To: rc, Text: body}
		if strings.HasSuffix(strings.ToLower(rc), "@"+r.domain) {
			r.held = append(r.held, m)
		} else {
			r.accepted = append(r.accepted, m)
		}
	}
}

// etrn answers an ETRN command (RFC 1985 section 5) and, when there is
// mail to send, starts delivering it on a new connection.
func (r *relay) etrn(node string) string {
	switch {
	case node == "":
		return "501 5.5.4 syntax: ETRN [@|#]node"
	case strings.HasPrefix(node, "#"):
		// Queue names are a site's private convention; this relay has none.
		return fmt.Sprintf("458 4.0.0 unable to queue messages for node %s", node)
	}
	name := strings.ToLower(strings.TrimPrefix(node, "@"))
	if name != r.domain {
		return fmt.Sprintf("459 5.7.1 node %s not allowed: not a domain this relay holds mail for", node)
	}
	r.mu.Lock()
	n := len(r.held)
	if n == 0 || r.closed {
		r.mu.Unlock()
		return fmt.Sprintf("251 2.0.0 OK, no messages waiting for node %s", node)
	}
	batch := r.held
	r.held = nil
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		if left := r.deliver(batch); len(left) > 0 {
			r.mu.Lock()
			r.held = append(left, r.held...) // undelivered mail waits for the next ETRN
			r.mu.Unlock()
		}
	}()
	return fmt.Sprintf("253 2.0.0 OK, %d pending messages for node %s started", n, node)
}

// deliver sends batch to our local MTA over one SMTP session and returns
// what it could not deliver.
func (r *relay) deliver(batch []msg) []msg {
	conn, err := net.DialTimeout("tcp", r.deliverTo(), 30*time.Second)
	if err != nil {
		r.log.Warn("demo relay cannot reach the local MTA", "err", err)
		return batch
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello(relayName); err != nil {
		return batch
	}
	for i, m := range batch {
		text := fmt.Sprintf("Received: from %s by %s with ESMTP; %s\n%s",
			"client.isp.example", relayName, time.Now().Format(time.RFC1123Z), m.Text)
		if err := c.SendMail(m.From, []string{m.To}, strings.NewReader(crlf(text))); err != nil {
			r.log.Warn("demo relay delivery failed", "to", m.To, "err", err)
			return batch[i:]
		}
	}
	_ = c.Quit()
	return nil
}
