package odmr

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/linkctl/linkctl/fetch/deliver"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
)

// ServeOptions configure the reversed half of an ODMR session, where the
// relay is the SMTP client and linkctl the server.
type ServeOptions struct {
	Hostname string         // our name in the 220 greeting
	Target   deliver.Target // where each message goes before we answer 250
	// Rcpt maps a recipient the relay names to local recipients; nil keeps
	// the address as it is. Returning nil refuses the recipient (550).
	Rcpt    func(addr string) []string
	Timeout time.Duration // per read and write (inactivity)
	Logger  *slog.Logger
	Sink    event.Sink
	Account string // for events
}

// ServeResult counts what the relay handed over.
type ServeResult struct {
	Messages int   // accepted: delivered locally, then answered 250
	Bytes    int64 // of the accepted messages
	Deferred int   // answered 4xx: the relay keeps them and tries again
	Rejected int   // answered 5xx: the relay bounces them
}

// Serve plays the SMTP server on conn after the turnaround (RFC 2645
// section 4: "the roles are reversed"): it greets, then accepts each message
// only after the local Target has taken it, so that the relay deletes
// nothing we have not delivered. buffered holds the bytes our client side
// had already read past the ATRN reply; they belong to the new session.
// Serve returns when the relay QUITs or the connection ends.
func Serve(ctx context.Context, conn net.Conn, buffered []byte, opts ServeOptions) (ServeResult, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &backend{ctx: ctx, opts: opts, log: log}
	srv := smtp.NewServer(b)
	srv.Domain = opts.Hostname
	if srv.Domain == "" {
		srv.Domain = "localhost"
	}
	srv.ReadTimeout, srv.WriteTimeout = opts.Timeout, opts.Timeout
	srv.MaxLineLength = 64 << 10 // a relay passes on what it got: be lenient
	srv.AllowInsecureAuth = true // no AUTH is offered in this direction anyway
	srv.ErrorLog = errLogger{log}

	c := &replayConn{Conn: conn, r: io.MultiReader(strings.NewReader(string(buffered)), conn), closed: make(chan struct{})}
	l := &oneConnListener{conn: c}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	err := srv.Serve(l)
	<-c.closed
	res := b.result()
	if ctx.Err() != nil {
		return res, context.Cause(ctx)
	}
	if err != nil && !errors.Is(err, errListenerDone) {
		return res, errkind.WrapTemporary(errkind.Network, "odmr: serving the relay", err)
	}
	if e := b.firstErr.Load(); e != nil && res.Deferred+res.Rejected > 0 {
		// Some messages were not taken (the relay keeps the deferred ones
		// and bounces the rejected): the run must say so even when others
		// went through, as a POP3/IMAP account's failed deliveries do.
		if res.Messages == 0 {
			return res, *e
		}
		return res, fmt.Errorf("%d of the relay's messages not delivered (%d deferred, kept by the relay; %d refused): %w",
			res.Deferred+res.Rejected, res.Deferred, res.Rejected, *e)
	}
	return res, nil
}

type backend struct {
	ctx  context.Context
	opts ServeOptions
	log  *slog.Logger

	mu       sync.Mutex
	res      ServeResult
	firstErr atomic.Pointer[error]
}

func (b *backend) result() ServeResult {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.res
}

func (b *backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{b: b}, nil }

type session struct {
	b    *backend
	from string
	to   []string
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from, s.to = from, nil
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	local := []string{to}
	if s.b.opts.Rcpt != nil {
		local = s.b.opts.Rcpt(to)
	}
	if len(local) == 0 {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no local recipient for " + to}
	}
	for _, l := range local {
		if !contains(s.to, l) {
			s.to = append(s.to, l)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Data delivers the message and answers only after the local side
// accepted it: 250 means the relay may forget it (RFC 5321 section 6.1),
// so it must never be said before the message is safe here.
func (s *session) Data(r io.Reader) error {
	lf, stop := newLFReader(r)
	counted := &countReader{r: lf}
	env := deliver.Envelope{From: s.from, To: s.to}
	err := s.b.opts.Target.Deliver(s.b.ctx, env, counted)
	// Whatever happened, the converter must let go of r before go-smtp
	// reads (and discards) the rest of the DATA and sends our reply.
	stop()
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if err == nil {
		s.b.res.Messages++
		s.b.res.Bytes += counted.n
		s.b.opts.Sink.Emit(event.Event{Type: event.Message, Account: s.b.opts.Account, Count: s.b.res.Messages, Bytes: s.b.res.Bytes})
		return nil
	}
	s.b.firstErr.CompareAndSwap(nil, &err)
	s.b.log.Warn("odmr: local delivery failed; answering the relay so it keeps the message", "from", s.from, "to", s.to, "error", err)
	if errkind.IsTemporary(err) || s.b.ctx.Err() != nil {
		s.b.res.Deferred++
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "local delivery failed, try again later"}
	}
	s.b.res.Rejected++
	return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 3, 0}, Message: "local delivery refused the message"}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// newLFReader turns the SMTP data's CRLF line ends into LF, as
// deliver.Target expects. A failure of r (the relay dropped the connection
// mid-DATA) reaches the reader as an error, never as a clean end, so a
// truncated message is never delivered. stop ends the conversion and waits
// until r is no longer being read.
func newLFReader(r io.Reader) (io.Reader, func()) {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		br := bufio.NewReaderSize(r, 32<<10)
		bw := bufio.NewWriterSize(pw, 32<<10)
		for {
			line, err := br.ReadSlice('\n')
			if n := len(line); n >= 2 && line[n-2] == '\r' && line[n-1] == '\n' {
				line[n-2] = '\n'
				line = line[:n-1]
			}
			if _, werr := bw.Write(line); werr != nil {
				pw.CloseWithError(werr)
				return
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil {
				if ferr := bw.Flush(); ferr != nil {
					err = ferr
				}
				if err == io.EOF {
					err = nil
				}
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr, func() {
		pr.Close()
		<-done
	}
}

// replayConn reads the bytes buffered before the turnaround first.
type replayConn struct {
	net.Conn
	r      io.Reader
	once   sync.Once
	closed chan struct{}
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *replayConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

var errListenerDone = errors.New("odmr: session over")

// oneConnListener hands go-smtp's server the one connection we already
// have, then reports itself closed once that connection is done.
type oneConnListener struct {
	conn *replayConn
	used atomic.Bool
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if l.used.CompareAndSwap(false, true) {
		return l.conn, nil
	}
	<-l.conn.closed
	return nil, errListenerDone
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }

type errLogger struct{ log *slog.Logger }

func (e errLogger) Printf(format string, v ...any) { e.log.Debug(fmt.Sprintf(format, v...)) }
func (e errLogger) Println(v ...any)               { e.log.Debug(fmt.Sprint(v...)) }
