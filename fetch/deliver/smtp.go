package deliver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
)

// SMTPOptions configure delivery into an SMTP server (normally the local
// MTA on 127.0.0.1:25). The zero value of every field but Addr works.
type SMTPOptions struct {
	Addr      string // host:port
	Sessions  int    // connections kept open and used at once (0 = 1)
	LocalName string // EHLO name (default: the host name)
	StartTLS  bool   // require STARTTLS (for an MTA that is not on loopback)
	// Domain qualifies bare names ("chavez") in MAIL FROM and RCPT TO:
	// RFC 5321 section 4.1.2 wants a domain there, and strict MTAs refuse
	// one without. "" sends them as they are.
	Domain    string
	TLSConfig *tls.Config   // ServerName defaults to Addr's host
	Timeout   time.Duration // inactivity timeout per read/write and dial (0 = netconn.DefaultTimeout)
	Logger    *slog.Logger  // nil = discard
}

// LMTPOptions configure delivery into an LMTP server (RFC 2033), such as
// Dovecot's lmtp service.
type LMTPOptions struct {
	Addr      string        // a unix socket path (containing '/', or "unix:PATH"), or host:port
	Sessions  int           // connections kept open and used at once (0 = 1)
	LocalName string        // LHLO name (default: the host name)
	Timeout   time.Duration // inactivity timeout per read/write and dial (0 = netconn.DefaultTimeout)
	Logger    *slog.Logger  // nil = discard
}

// NewSMTP returns a Target that delivers over a pool of SMTP sessions.
//
// The flow of one delivery: take a free session (or open one: dial, read
// the 220 greeting, EHLO, STARTTLS and EHLO again when asked), then MAIL
// FROM, RCPT TO for each recipient, DATA; the message is converted to CRLF
// and dot-stuffed by go-smtp's writer (RFC 5321 section 4.5.2), and the
// delivery succeeds only on a 250 to the final dot. A refused MAIL or RCPT
// aborts the whole transaction (RSET) so that a message is never delivered
// to some recipients and not others. Sessions stay open between messages:
// after a 250 the transaction is complete and the next MAIL may follow at
// once (RFC 5321 section 4.1.1.4); after a failure the session is RSET, or
// closed when it is no longer in a known state. An idle session the server
// has closed in the meantime is noticed at MAIL, before a byte of the
// message was sent, and replaced once transparently.
//
// What the server may do to a session is bounded by linkctl: every read
// has the inactivity timeout, a reply longer than 64 KiB (an endless
// multi-line reply) fails the session with a temporary error, and a reply
// line the connection cut before its CRLF is no reply (RFC 5321 section
// 4.2): the step fails temporarily, and a cut reply to the final dot
// leaves the message undelivered (it stays on the server: a possible
// duplicate, never a loss). A context that ends makes every step fail
// with a temporary error naming its cause.
//
// Deliver may be called from several goroutines; at most Sessions
// transactions run at once. Delivering over several sessions in parallel is
// what makes a local MTA that fsyncs each message fast.
func NewSMTP(opts SMTPOptions) Target {
	p := newPool("SMTP", opts.Addr, "tcp", opts.Sessions, opts.LocalName, opts.StartTLS, opts.TLSConfig, opts.Timeout, opts.Logger)
	p.domain = opts.Domain
	return p
}

// NewLMTP returns a Target that delivers over a pool of LMTP sessions.
//
// It works as NewSMTP, with LHLO, and one reply per recipient after the
// final dot (RFC 2033 section 4.2). Recipients are de-duplicated first
// (the replies are matched to recipients by address). The delivery
// succeeds only if every recipient got a 250. When some recipients
// accepted the message and others did not, Deliver returns a
// *PartialError: the message counts as not delivered, stays on the server,
// and a retry will duplicate it for the recipients that did accept.
// linkctl prefers a duplicate to a loss.
func NewLMTP(opts LMTPOptions) Target {
	network, addr := "tcp", opts.Addr
	if rest, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", rest
	} else if strings.Contains(addr, "/") {
		network = "unix"
	}
	return newPool("LMTP", addr, network, opts.Sessions, opts.LocalName, false, nil, opts.Timeout, opts.Logger)
}

type pool struct {
	proto     string // "SMTP" or "LMTP"
	addr      string
	network   string
	localName string
	startTLS  bool
	tlsConfig *tls.Config
	timeout   time.Duration
	log       *slog.Logger
	domain    string // SMTP: qualifies bare names (SMTPOptions.Domain)

	dialer func(context.Context) (net.Conn, error) // tests: scripted servers over net.Pipe

	slots chan struct{} // one token per session allowed at once
	idle  chan *session // open sessions waiting for a message

	mu     sync.Mutex
	closed bool
}

type session struct {
	raw net.Conn // the socket, closed to abort
	g   *replyGuard
	c   *smtp.Client
}

func (s *session) close() { s.c.Close() }

func newPool(proto, addr, network string, n int, localName string, startTLS bool, cfg *tls.Config, timeout time.Duration, log *slog.Logger) *pool {
	if n <= 0 {
		n = 1
	}
	if localName == "" {
		localName, _ = os.Hostname()
		if localName == "" || strings.ContainsAny(localName, " \r\n") {
			localName = "localhost"
		}
	}
	if timeout <= 0 {
		timeout = netconn.DefaultTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &pool{
		proto: proto, addr: addr, network: network, localName: localName,
		startTLS: startTLS, tlsConfig: cfg, timeout: timeout, log: log,
		slots: make(chan struct{}, n), idle: make(chan *session, n),
	}
	for range n {
		p.slots <- struct{}{}
	}
	return p
}

func (p *pool) op(step string) string {
	return fmt.Sprintf("deliver via %s to %s: %s", p.proto, p.addr, step)
}

// fail classifies an error of step: a reply keeps its code's verdict (4xx
// temporary, 5xx permanent); anything else (a dropped connection, a
// timeout) is temporary unless it was already classified as permanent
// (a certificate that does not verify).
func (p *pool) fail(step string, err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return errkind.Wrap(errkind.Delivery, se.Temporary(), p.op(step), replyError{se})
	}
	var ke *errkind.Error
	if errors.As(err, &ke) {
		return errkind.Wrap(errkind.Delivery, ke.Temp, p.op(step), err)
	}
	return errkind.WrapTemporary(errkind.Delivery, p.op(step), err)
}

// cancelled reports a step cut short because ctx ended (the close that
// unblocked the read was the cancel's): temporary, naming the cause, with
// what the connection said as detail. Never permanent, whatever go-smtp
// made of a partial line.
func (p *pool) cancelled(ctx context.Context, step string, err error) error {
	return errkind.WrapTemporary(errkind.Delivery, p.op(step), fmt.Errorf("%w (%v)", context.Cause(ctx), err))
}

// dial opens a session ready for MAIL.
func (p *pool) dial(ctx context.Context) (*session, error) {
	var raw net.Conn
	var err error
	if p.dialer != nil {
		raw, err = p.dialer(ctx)
	} else {
		d := net.Dialer{Timeout: p.timeout}
		raw, err = d.DialContext(ctx, p.network, p.addr)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, errkind.WrapTemporary(errkind.Delivery, p.op("connect"), context.Cause(ctx))
		}
		hint := "is the local MTA running and listening there?"
		return nil, errkind.WrapTemporary(errkind.Delivery, p.op("connect"), fmt.Errorf("%w (%s)", err, hint))
	}
	stop := netconn.CloseOnDone(ctx, raw)
	// go-smtp sets its own deadlines of minutes per command and none while
	// the message is written; the idle wrapper replaces them with an
	// inactivity deadline on every read and write. The guard above it
	// bounds what the server may send per request and tells a cut reply
	// line from a reply.
	g := newReplyGuard(netconn.Idle(raw, p.timeout))
	conn := net.Conn(g)
	var c *smtp.Client
	switch {
	case p.proto == "LMTP":
		c = smtp.NewClientLMTP(conn)
	case p.startTLS:
		cfg := netconn.TLSConfig(p.tlsConfig, p.addr)
		// NewClientStartTLS greets with EHLO localhost before STARTTLS;
		// our own name follows in the EHLO after the handshake. A server
		// without STARTTLS is an error, never a plaintext fallback
		// (DESIGN.md "Secure by default").
		c, err = smtp.NewClientStartTLS(conn, cfg)
		if err != nil {
			stop()
			raw.Close()
			if ctx.Err() != nil {
				return nil, p.cancelled(ctx, "greeting, EHLO and STARTTLS", err)
			}
			if f := g.fault(err); f != nil {
				return nil, p.fail("greeting, EHLO and STARTTLS", f)
			}
			if strings.Contains(err.Error(), "support STARTTLS") {
				return nil, errkind.WrapPermanent(errkind.Delivery, p.op("STARTTLS"),
					fmt.Errorf("%w (the server does not offer STARTTLS: enable it there, or deliver over loopback without TLS)", err))
			}
			return nil, p.fail("STARTTLS", err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	hello := "EHLO"
	if p.proto == "LMTP" {
		hello = "LHLO"
	}
	if err := g.check(c.Hello(p.localName)); err != nil {
		stop()
		c.Close()
		if ctx.Err() != nil {
			// The close that ended the read was the cancel's: name the
			// cause, not "use of closed network connection".
			return nil, p.cancelled(ctx, "greeting and "+hello, err)
		}
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			return nil, errkind.WrapPermanent(errkind.Delivery, p.op("TLS handshake"), err)
		}
		return nil, p.fail("greeting and "+hello, err)
	}
	if !stop() {
		c.Close()
		return nil, errkind.WrapTemporary(errkind.Delivery, p.op("connect"), context.Cause(ctx))
	}
	p.log.Debug("delivery session opened", "proto", p.proto, "addr", p.addr)
	return &session{raw: raw, g: g, c: c}, nil
}

// get returns an idle session, or a new one; reused says which.
func (p *pool) get(ctx context.Context) (s *session, reused bool, err error) {
	select {
	case s := <-p.idle:
		return s, true, nil
	default:
	}
	s, err = p.dial(ctx)
	return s, false, err
}

// put returns a healthy session to the pool, or closes it after Close.
func (p *pool) put(s *session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		s.close()
		return
	}
	select {
	case p.idle <- s:
	default: // cannot happen: at most n sessions exist
		s.close()
	}
}

// Deliver implements Target.
func (p *pool) Deliver(ctx context.Context, env Envelope, msg io.Reader) error {
	rcpts := dedup(env.To)
	from := env.From
	if p.domain != "" {
		from = qualify(from, p.domain)
		for i, r := range rcpts {
			rcpts[i] = qualify(r, p.domain)
		}
		rcpts = dedup(rcpts) // "chavez" and "chavez@localhost" are one
	}
	if len(rcpts) == 0 {
		return errkind.Permanent(errkind.Delivery, p.op("RCPT"), "no recipient given: set the account's `to`")
	}
	select {
	case <-p.slots:
	case <-ctx.Done():
		return errkind.WrapTemporary(errkind.Delivery, p.op("waiting for a free session"), context.Cause(ctx))
	}
	defer func() { p.slots <- struct{}{} }()
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return errkind.Permanent(errkind.Internal, p.op("deliver"), "target already closed")
	}

	for attempt := 0; ; attempt++ {
		s, reused, err := p.get(ctx)
		if err != nil {
			return err
		}
		stop := netconn.CloseOnDone(ctx, s.raw)
		step, err := p.transact(ctx, s, from, rcpts, msg)
		cancelled := !stop()
		if err == nil && !cancelled {
			p.put(s)
			return nil
		}
		if cancelled {
			s.close()
			if err == nil {
				// A whole 250 (transact checked its line end) arrived
				// as the context ended: the MTA has the message, and
				// that is what counts.
				return nil
			}
			return p.cancelled(ctx, step, err)
		}
		var se *smtp.SMTPError
		isReply := errors.As(err, &se)
		// A pooled session the server has dropped while idle (or is
		// dropping with 421, RFC 5321 section 3.8) fails at MAIL, before
		// any of the message was read: open a fresh one, once.
		if reused && attempt == 0 && step == "MAIL FROM" && (!isReply || se.Code == 421) {
			s.close()
			p.log.Debug("pooled session gone, reconnecting", "proto", p.proto, "addr", p.addr, "err", err)
			continue
		}
		var src *SourceError
		switch {
		case errors.As(err, &src):
			// Already dropped before the final dot.
			s.close()
			return sourceErr(p.op(step), src.Err)
		case isReply && se.Code != 421 || isLMTPReplies(err):
			// The session is in a known state: clear the transaction
			// (RFC 5321 section 4.1.1.5) and keep it.
			if rerr := s.g.check(s.c.Reset()); rerr != nil {
				s.close()
			} else {
				p.put(s)
			}
		default:
			s.close()
		}
		var pe *PartialError
		if errors.As(err, &pe) {
			return errkind.Wrap(errkind.Delivery, pe.Temporary(), p.op(step), err)
		}
		return p.fail(step, err)
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func isLMTPReplies(err error) bool {
	var pe *PartialError
	return errors.As(err, &pe)
}

// qualify appends @domain to a bare name; addresses with a domain, and
// the null sender "", are left alone.
func qualify(addr, domain string) string {
	if addr == "" || strings.Contains(addr, "@") {
		return addr
	}
	return addr + "@" + domain
}

// transact runs one mail transaction and names the step that failed.
func (p *pool) transact(ctx context.Context, s *session, from string, rcpts []string, msg io.Reader) (string, error) {
	var mo *smtp.MailOptions
	if !isASCII(from) || slices.IndexFunc(rcpts, func(r string) bool { return !isASCII(r) }) >= 0 {
		// An address outside ASCII needs SMTPUTF8 (RFC 6531 section
		// 3.4); without it the server would refuse or mangle it.
		if ok, _ := s.c.Extension("SMTPUTF8"); !ok {
			return "SMTPUTF8", errkind.Permanent(errkind.Delivery, "",
				"an address is not ASCII and the server does not offer SMTPUTF8 (enable smtputf8_enable in Postfix)")
		}
		mo = &smtp.MailOptions{UTF8: true}
	}
	// Each reply goes through the guard: a line cut by the end of the
	// connection is no reply, whatever code go-smtp read from it.
	if err := s.g.check(s.c.Mail(from, mo)); err != nil {
		return "MAIL FROM", err
	}
	for _, r := range rcpts {
		if err := s.g.check(s.c.Rcpt(r, nil)); err != nil {
			return "RCPT TO:<" + r + ">", err
		}
	}
	w, err := s.c.Data()
	if err = s.g.check(err); err != nil {
		return "DATA", err
	}
	src := &sourceReader{r: msg}
	if _, err := io.Copy(w, src); err != nil {
		// Never send the final dot after a short read: that would hand a
		// truncated message to the MTA. Dropping the connection makes the
		// server discard the transaction (RFC 5321 section 4.1.1.4).
		s.raw.Close()
		if src.err != nil {
			return "DATA", &SourceError{Err: src.err}
		}
		return "DATA (sending the message)", err
	}
	// The final dot commits the message at the server: wait at the
	// engine's commit gate first (see WithCommitGate). If the wait is
	// given up, drop the connection instead of sending the dot, so the
	// server discards the transaction.
	if err := enterCommit(ctx); err != nil {
		s.raw.Close()
		return "end of DATA (waiting to commit)", err
	}
	if p.proto == "SMTP" {
		_, err := w.CloseWithResponse()
		// A "250 ..." cut before its CRLF does not confirm the delivery:
		// the message stays on the server and is fetched again (a
		// possible duplicate, never a loss).
		if err := s.g.check(err); err != nil {
			return "end of DATA", err
		}
		return "", nil
	}
	_, err = w.CloseWithLMTPResponse()
	if f := s.g.fault(err); f != nil {
		// The last reply read was cut: none of the replies decides
		// (RFC 2033 section 4.2 wants one whole reply per recipient).
		return "end of DATA", f
	}
	if err == nil {
		return "", nil
	}
	var le smtp.LMTPDataError
	if errors.As(err, &le) && len(le) > 0 {
		if !isOnlyLMTP(err) {
			// The connection broke in the middle of the replies: the
			// session is in no known state, and the recipients not yet
			// answered may or may not have the message. Temporary,
			// whatever the replies read so far said (%v drops them
			// from the chain so they cannot decide the class).
			return "end of DATA", fmt.Errorf("connection lost among the per-recipient replies: %v", err)
		}
		pe := &PartialError{Failed: map[string]error{}}
		for _, r := range rcpts {
			if se, ok := le[r]; ok {
				pe.Failed[r] = replyError{se}
			} else {
				pe.Accepted = append(pe.Accepted, r)
			}
		}
		return "end of DATA", pe
	}
	return "end of DATA", err
}

// isOnlyLMTP reports whether err is exactly an LMTPDataError (every
// recipient got a reply), not one joined with a connection error.
func isOnlyLMTP(err error) bool {
	_, ok := err.(smtp.LMTPDataError)
	return ok
}

// Close ends the idle sessions with QUIT.
func (p *pool) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for {
		select {
		case s := <-p.idle:
			// A short bound: a QUIT that hangs must not hold up shutdown.
			t := time.AfterFunc(5*time.Second, func() { s.raw.Close() })
			if err := s.c.Quit(); err != nil {
				s.close()
			}
			t.Stop()
		default:
			return nil
		}
	}
}

func dedup(in []string) []string {
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for _, r := range in {
		if r == "" || seen[r] {
			continue
		}
		seen[r] = true
		out = append(out, r)
	}
	return out
}
