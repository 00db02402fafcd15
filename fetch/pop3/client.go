// Package pop3 is a POP3 client (RFC 1939) on a net.Conn, built for slow
// and flaky links: it pipelines (RFC 2449) when the server allows, streams
// every message, bounds every line and listing, and gives every read an
// inactivity deadline.
//
// A session runs like this:
//
//	c, err := pop3.NewContext(ctx, conn, pop3.Options{Timeout: time.Minute}) // reads the greeting
//	c.Capa()                     // RFC 2449: what the server offers now
//	c.StartTLS(tlsConfig)        // RFC 2595 STLS; caps are dropped, CAPA again
//	c.Capa()
//	c.Login(user, pass)          // or c.APOP, or c.Auth(pop3.PlainAuth(..), true)
//	c.RefreshCapa()              // capabilities may change after login
//	msgs, _ := c.Scan()          // (CAPA +) STAT + UIDL + LIST, pipelined
//	c.RetrAll(nums, fn)          // RETR, pipelined, each message streamed to fn
//	c.DeleQuit(nums)             // DELEs and QUIT in one batch: the deletions
//	                             // take effect (RFC 1939 section 6)
//
// Dropping the connection without QUIT (Close) makes the server roll the
// deletions back, which is how a caller that could not record its progress
// keeps mail on the server.
//
// Bounds: every read has an inactivity deadline (Options.Timeout); with
// NewContext the context ends the session in any state (a cancel, or the
// caller's session deadline against a server that never stops talking);
// each response line is at most MaxLine octets, a CAPA at most 200 lines,
// a SASL exchange at most 8 challenges, and a UIDL or LIST listing at most
// Options.MaxMessages entries whatever the server's STAT claims; with
// RetrLimited each message at most a ceiling (the fetch engine derives it
// from the LIST size, generously), past which the session is broken with
// a protocol error rather than read on forever. Nothing is allocated in
// proportion to a number the server announces.
//
// Pipelining (RFC 2449 section 6.6): a writer goroutine sends up to
// Options.Window commands ahead while the caller's goroutine reads the
// responses in order, so neither side can stall on a full buffer; when the
// server does not announce PIPELINING the same code runs with a window of
// one, in lock step. Responses are matched to commands by position alone,
// which is why any doubt about the framing breaks the session.
//
// Errors: a -ERR answer is a *ServerError wrapped in an errkind error
// classified by its RFC 2449/3206 response code; any I/O error, timeout or
// malformed response breaks the session (the connection is closed and every
// later call returns the same error), because after one the client no
// longer knows which response belongs to which command.
//
// Transcripts go to Options.Logger at logx.LevelTrace with passwords and SASL
// data replaced by ***; message contents are not logged.
package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/logx"
	"github.com/linkctl/linkctl/internal/netconn"
)

// DefaultWindow is the number of pipelined commands allowed in flight.
// Each RETR or DELE is a few octets, so a window this size keeps the
// server's output busy across a round trip of any link while bounding
// what must be read and thrown away when the caller stops early.
const DefaultWindow = 16

// DefaultMaxMessages is the most messages a maildrop's listing may hold
// when Options.MaxMessages is zero. It bounds what a session can make
// linkctl hold in memory (a few tens of megabytes at worst), whatever the
// server's STAT claims; real maildrops fetched over a dial-up link are far
// smaller.
const DefaultMaxMessages = 100000

// maxAuthSteps bounds the challenges of one SASL exchange: every mechanism
// linkctl speaks finishes in two; a server that keeps challenging is
// stalling.
const maxAuthSteps = 8

// bufSize is the read buffer: large enough that streaming a message is
// not syscall-bound on loopback; it also bounds how much of an overlong
// line is read before it is rejected.
const bufSize = 32 << 10

// Options configures a Client. The zero value works.
type Options struct {
	// Timeout is the inactivity timeout of every read and write
	// (netconn.DefaultTimeout when zero). A transfer that keeps moving
	// never times out; a silent server does after Timeout.
	Timeout time.Duration
	// Window is the most pipelined commands in flight when the server
	// announces PIPELINING (DefaultWindow when zero). 1 forces lock step.
	Window int
	// Server names the server in error messages ("pop.example.net:995").
	Server string
	// Logger receives transcripts at logx.LevelTrace (nil: discarded).
	Logger *slog.Logger
	// NoGreeting: the stream starts in the TRANSACTION state without a
	// greeting, as Dovecot's pop3 does when run pre-authenticated (a
	// plugin: `doveadm exec pop3 -u USER`, `ssh HOST dovecot exec pop3`).
	// New then reads nothing; the first command's reply comes first.
	NoGreeting bool
	// MaxMessages is the most entries a UIDL or LIST listing may hold
	// (DefaultMaxMessages when zero). The bound is linkctl's own: the
	// server's STAT count only lowers it, so a server that claims 10^8
	// messages and lists without end gets a protocol error after
	// MaxMessages lines instead of filling memory.
	MaxMessages int
}

// Client is one POP3 session. It is not safe for concurrent use.
type Client struct {
	opts Options
	log  *slog.Logger

	raw  *netconn.IdleConn // the plaintext transport, with inactivity deadlines
	conn net.Conn          // raw, or TLS over raw after STLS
	r    *textproto.Reader
	w    *bufio.Writer

	greeting  string
	timestamp string // APOP timestamp from the greeting, "" if none
	caps      Caps
	tls       bool
	count     int // messages as of STAT, -1 before STAT
	// capaPending: a CAPA is to go out with the next Scan (RefreshCapa).
	capaPending bool
	broken      error
	// ended is context.Cause of NewContext's ctx once it ended and closed
	// the connection (set from the AfterFunc goroutine).
	ended  atomic.Pointer[error]
	unbind func() bool // detaches NewContext's ctx; nil for New
}

// New starts a session on conn: it reads the greeting (RFC 1939 section 4)
// within the inactivity timeout. conn may already be TLS (implicit TLS);
// reads and writes get an inactivity deadline either way. On error conn is
// closed.
func New(conn net.Conn, opts Options) (*Client, error) {
	return newClient(nil, conn, opts)
}

// NewContext is New with the whole session tied to ctx, greeting included:
// when ctx ends (a cancel, or a session deadline the caller set) the
// connection is closed, which ends the read or write in progress at once in
// any state, and the error of the call it interrupts is a temporary one
// that names context.Cause(ctx) instead of a closed connection. This is
// what bounds a server that never stops talking: every read has an
// inactivity deadline, but a flood is never inactive.
func NewContext(ctx context.Context, conn net.Conn, opts Options) (*Client, error) {
	return newClient(ctx, conn, opts)
}

func newClient(ctx context.Context, conn net.Conn, opts Options) (*Client, error) {
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.MaxMessages <= 0 {
		opts.MaxMessages = DefaultMaxMessages
	}
	raw, ok := conn.(*netconn.IdleConn)
	if !ok {
		raw = netconn.Idle(conn, opts.Timeout)
	}
	c := &Client{opts: opts, log: opts.Logger, raw: raw, conn: raw, count: -1}
	if ctx != nil {
		c.unbind = context.AfterFunc(ctx, func() {
			cause := context.Cause(ctx)
			c.ended.Store(&cause)
			raw.Close()
		})
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if _, isTLS := raw.Conn.(*tls.Conn); isTLS {
		c.tls = true
	}
	c.setTransport(raw)
	if opts.NoGreeting {
		return c, nil
	}
	line, err := c.readLine(MaxLine)
	if err != nil {
		return nil, c.fail(c.netErr("greeting", err))
	}
	c.trace("S: " + line)
	ok, text, err := parseStatus(line)
	if err != nil {
		return nil, c.fail(errkind.WrapPermanent(errkind.Protocol, c.op("greeting"), err))
	}
	if !ok {
		se := &ServerError{Command: "greeting", Code: responseCode(text), Text: text}
		kind, temp := classify(se, false)
		if se.Code == "" {
			// A server that refuses at the greeting is usually busy or
			// shutting down: try again later.
			temp = true
		}
		return nil, c.fail(errkind.Wrap(kind, temp, c.op("greeting"), se))
	}
	c.greeting = text
	c.timestamp = apopTimestamp(text)
	return c, nil
}

func (c *Client) setTransport(conn net.Conn) {
	c.conn = conn
	c.r = textproto.NewReader(bufio.NewReaderSize(conn, bufSize))
	c.w = bufio.NewWriterSize(conn, 4096)
}

// Greeting returns the text of the server's +OK greeting.
func (c *Client) Greeting() string { return c.greeting }

// HasAPOP reports whether the greeting carried an APOP timestamp.
func (c *Client) HasAPOP() bool { return c.timestamp != "" }

// Caps returns the capabilities of the last Capa (nil before, or after
// STLS until Capa is called again).
func (c *Client) Caps() Caps { return c.caps }

// TLS reports whether the session is encrypted.
func (c *Client) TLS() bool { return c.tls }

// Count returns the message count of the last STAT, or -1.
func (c *Client) Count() int { return c.count }

// BytesRead and BytesWritten count the octets moved on the connection,
// TLS overhead included: for progress and benchmarks.
func (c *Client) BytesRead() int64    { return c.raw.BytesRead() }
func (c *Client) BytesWritten() int64 { return c.raw.BytesWritten() }

// Err returns the error that broke the session, or nil.
func (c *Client) Err() error { return c.broken }

// Close drops the connection without QUIT: the server rolls back every
// DELE of the session (RFC 1939 section 6).
func (c *Client) Close() error {
	if c.broken == nil {
		c.broken = errkind.Permanent(errkind.Internal, c.op("session"), "used after Close")
	}
	return c.close()
}

// close closes the connection and detaches the context: the session is over.
func (c *Client) close() error {
	if c.unbind != nil {
		c.unbind()
	}
	return c.raw.Close()
}

func (c *Client) op(what string) string {
	if c.opts.Server != "" {
		return "pop3 " + c.opts.Server + ": " + what
	}
	return "pop3 " + what
}

func (c *Client) trace(msg string) {
	if c.log.Enabled(context.Background(), logx.LevelTrace) {
		c.log.Log(context.Background(), logx.LevelTrace, msg)
	}
}

// fail breaks the session with err, closes the connection, and returns err.
func (c *Client) fail(err error) error {
	if c.broken == nil {
		c.broken = err
	}
	c.close()
	return err
}

// netErr classifies an I/O error: a timeout or a dropped connection is a
// temporary network problem; an overlong line is the server's fault.
func (c *Client) netErr(what string, err error) error {
	if cause := c.ended.Load(); cause != nil {
		// The context closed the connection under this read or write:
		// its cause is what happened, not the closed connection.
		return errkind.WrapTemporary(errkind.Network, c.op(what), fmt.Errorf("session ended: %w (%v)", *cause, err))
	}
	if errors.Is(err, errProto) {
		return errkind.WrapPermanent(errkind.Protocol, c.op(what), err)
	}
	switch {
	case errors.Is(err, io.EOF):
		err = fmt.Errorf("server closed the connection: %w", io.ErrUnexpectedEOF)
	case errors.Is(err, io.ErrUnexpectedEOF):
		// In the middle of a message (the dot reader's): say who ended
		// it, keeping what the transport said (a plugin's stderr).
		err = fmt.Errorf("server closed the connection: %w", err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t := c.opts.Timeout
		if t <= 0 {
			t = netconn.DefaultTimeout
		}
		err = fmt.Errorf("no data from the server for %v (raise the timeout for a slow link): %w", t, err)
	}
	return errkind.WrapTemporary(errkind.Network, c.op(what), err)
}

// readLine reads one CRLF (or bare LF) terminated line of at most limit
// octets, terminator included, without the terminator.
func (c *Client) readLine(limit int) (string, error) {
	line, err := c.r.R.ReadSlice('\n')
	if len(line) > limit || errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("%w: response line longer than %d octets (RFC 2449 section 4)", errProto, limit)
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return string(line), nil
}

// readStatus reads the status line answering cmd (its redacted form). A
// -ERR is returned as a classified *ServerError and leaves the session
// usable; anything else that goes wrong breaks it.
func (c *Client) readStatus(cmd string, authPhase bool) (string, error) {
	line, err := c.readLine(MaxLine)
	if err != nil {
		return "", c.fail(c.netErr(cmd, err))
	}
	c.trace("S: " + line)
	ok, text, err := parseStatus(line)
	if err != nil {
		return "", c.fail(errkind.WrapPermanent(errkind.Protocol, c.op(cmd), err))
	}
	if !ok {
		se := &ServerError{Command: cmd, Code: responseCode(text), Text: text}
		return "", c.serverErr(se, authPhase)
	}
	return text, nil
}

// serverErr classifies a -ERR and adds what the user can do about it.
func (c *Client) serverErr(se *ServerError, authPhase bool) error {
	kind, temp := classify(se, authPhase)
	var err error = se
	switch {
	case kind == errkind.Auth:
		err = fmt.Errorf("%w (check the user name, password and auth method)", se)
	case se.Code == "IN-USE":
		err = fmt.Errorf("%w (another client has the maildrop open; will retry)", se)
	case se.Code == "LOGIN-DELAY":
		err = fmt.Errorf("%w (the server limits how often one may log in; fetch less often)", se)
	}
	return errkind.Wrap(kind, temp, c.op(se.Command), err)
}

// readListing reads the lines of a dot-terminated listing (UIDL, LIST,
// CAPA), undoing dot-stuffing, with each line bounded by MaxLine and the
// number of lines by maxLines: a server that never ends a listing gets a
// clean error instead of filling memory. tooMany words that error.
func (c *Client) readListing(cmd string, maxLines int, tooMany func() string, each func(string) error) error {
	for n := 0; ; n++ {
		line, err := c.readLine(MaxLine)
		if err != nil {
			return c.fail(c.netErr(cmd, err))
		}
		if line == "." {
			return nil
		}
		if n >= maxLines {
			return c.fail(errkind.Permanent(errkind.Protocol, c.op(cmd), "%v: %s", errProto, tooMany()))
		}
		line = strings.TrimPrefix(line, ".") // RFC 1939 section 3 byte-stuffing
		if each != nil {
			if err := each(line); err != nil {
				return c.fail(errkind.WrapPermanent(errkind.Protocol, c.op(cmd), err))
			}
		}
	}
}

// capaTooMany words an endless CAPA listing.
func capaTooMany() string {
	return fmt.Sprintf("CAPA listing has more than %d lines", maxCapaLines)
}

// check refuses a command argument that could smuggle a second command:
// CR, LF or NUL in a user name or password would end the line early.
func checkArg(what, s string) error {
	if strings.ContainsAny(s, "\r\n\x00") {
		return errkind.Permanent(errkind.Usage, "pop3 "+what, "contains a line break or NUL; refusing to send it")
	}
	return nil
}

// send writes one command line. shown is what the transcript shows.
func (c *Client) send(line, shown string) error {
	c.trace("C: " + shown)
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return c.fail(c.netErr(shown, err))
	}
	return nil
}

// cmd sends one command in lock step and reads its status line.
func (c *Client) cmd(line, shown string, authPhase bool) (string, error) {
	if c.broken != nil {
		return "", c.broken
	}
	if err := c.send(line, shown); err != nil {
		return "", err
	}
	return c.readStatus(shown, authPhase)
}

// Capa asks for the capabilities (RFC 2449 section 5). A server without
// CAPA answers -ERR: that is not an error, the result is then empty and
// every optional feature (PIPELINING, STLS, SASL) counts as absent.
func (c *Client) Capa() (Caps, error) {
	_, err := c.cmd("CAPA", "CAPA", false)
	caps := Caps{}
	if err != nil {
		var se *ServerError
		if errors.As(err, &se) {
			c.caps = caps
			return caps, nil
		}
		return nil, err
	}
	if err := c.readListing("CAPA", maxCapaLines, capaTooMany, func(l string) error { caps.add(l); return nil }); err != nil {
		return nil, err
	}
	c.caps = caps
	return caps, nil
}

// RefreshCapa re-learns the capabilities after login, which may differ
// from those before (RFC 2449 section 5). When the server already
// announced PIPELINING the CAPA is sent with the next Scan, in the same
// round trip; otherwise it is sent now. Until then Caps returns the
// capabilities from before login.
func (c *Client) RefreshCapa() error {
	if c.broken != nil {
		return c.broken
	}
	if c.caps.Has("PIPELINING") {
		c.capaPending = true
		return nil
	}
	_, err := c.Capa()
	return err
}

// StartTLS upgrades the session with STLS (RFC 2595 section 4). It fails
// without sending anything when the last Capa did not list STLS, so that a
// stripped capability can never make the caller fall back to plaintext.
// After the handshake the cached capabilities are forgotten (call Capa
// again) and a fresh reader is put on the TLS connection: octets the
// server sent after its +OK but before the handshake are refused, never
// read as if they came over TLS.
func (c *Client) StartTLS(cfg *tls.Config) error {
	if c.broken != nil {
		return c.broken
	}
	if c.tls {
		return errkind.Permanent(errkind.Internal, c.op("STLS"), "session is already encrypted")
	}
	if cfg == nil || cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		return errkind.Permanent(errkind.Internal, c.op("STLS"), "no TLS config with a ServerName to verify the certificate against")
	}
	if !c.caps.Has("STLS") {
		return c.fail(errkind.Permanent(errkind.Protocol, c.op("STLS"),
			"the server does not offer STLS and TLS is required; set tls: implicit if it speaks TLS on another port, or tls: none only for a trusted network"))
	}
	if _, err := c.cmd("STLS", "STLS", false); err != nil {
		var se *ServerError
		if errors.As(err, &se) {
			return c.fail(err) // no downgrade: the session must not go on in plaintext
		}
		return err
	}
	if n := c.r.R.Buffered(); n > 0 {
		return c.fail(errkind.Permanent(errkind.Protocol, c.op("STLS"),
			"server sent %d octets after +OK before the TLS handshake (RFC 2595 section 4; possible injection)", n))
	}
	tc := tls.Client(c.raw, cfg)
	// The raw conn's inactivity deadline bounds each handshake read.
	if err := tc.Handshake(); err != nil {
		// A certificate that does not verify will not verify tomorrow
		// either: permanent, so the user gets told rather than retried.
		var cv *tls.CertificateVerificationError
		temp := !errors.As(err, &cv)
		if c.ended.Load() != nil {
			return c.fail(c.netErr("TLS handshake after STLS", err))
		}
		return c.fail(errkind.Wrap(errkind.Network, temp, c.op("TLS handshake after STLS"), err))
	}
	c.tls = true
	c.caps = nil
	c.setTransport(tc)
	return nil
}

// Login authenticates with USER and PASS (RFC 1939 section 7).
func (c *Client) Login(user, pass string) error {
	if err := checkArg("user name", user); err != nil {
		return err
	}
	if err := checkArg("password", pass); err != nil {
		return err
	}
	// With PIPELINING (RFC 2449 section 6.6) USER and PASS go together:
	// one round trip instead of two.
	cmds := []pcmd{{line: "USER " + user}, {line: "PASS " + pass, shown: "PASS ***"}}
	return c.pipe(cmds, func(i int) error {
		_, err := c.readStatus(cmds[i].name(), true)
		return err
	})
}

// APOP authenticates with the greeting's timestamp and the shared secret
// (RFC 1939 section 7). It fails without sending anything when the
// greeting had no timestamp.
func (c *Client) APOP(user, secret string) error {
	if err := checkArg("user name", user); err != nil {
		return err
	}
	if c.timestamp == "" {
		return errkind.Permanent(errkind.Auth, c.op("APOP"), "the greeting has no APOP timestamp; the server does not offer APOP (use auth: password)")
	}
	_, err := c.cmd("APOP "+user+" "+apopDigest(c.timestamp, secret), "APOP "+user+" ***", true)
	return err
}

var b64 = base64.StdEncoding

// maxCmdLine is the longest command line, CRLF included (RFC 2449 section 4).
const maxCmdLine = 255

// Auth authenticates with a SASL mechanism (RFC 5034). With
// initialResponse the first response goes on the AUTH line, saving a round
// trip, unless that line would pass the 255-octet command limit (RFC 5034
// section 4), as OAuth tokens do; then, or without initialResponse, the
// two-step form is used: "AUTH MECH", a "+ " challenge, the response.
func (c *Client) Auth(m SASL, initialResponse bool) error {
	if c.broken != nil {
		return c.broken
	}
	mech, ir, err := m.Start()
	if err != nil {
		return errkind.WrapPermanent(errkind.Auth, c.op("AUTH"), err)
	}
	shown := "AUTH " + mech
	line := shown
	if initialResponse && ir != nil {
		enc := "="
		if len(ir) > 0 {
			enc = b64.EncodeToString(ir)
		}
		if len(line)+1+len(enc)+2 <= maxCmdLine {
			line += " " + enc
			shown += " ***"
			ir = nil
		}
	}
	if err := c.send(line, shown); err != nil {
		return err
	}
	for step := 0; ; step++ {
		l, err := c.readLine(MaxLine)
		if err != nil {
			return c.fail(c.netErr(shown, err))
		}
		if !strings.HasPrefix(l, "+ ") && l != "+" {
			c.trace("S: " + l)
			ok, text, err := parseStatus(l)
			if err != nil {
				return c.fail(errkind.WrapPermanent(errkind.Protocol, c.op(shown), err))
			}
			if !ok {
				se := &ServerError{Command: shown, Code: responseCode(text), Text: text}
				return c.serverErr(se, true)
			}
			return nil
		}
		c.trace("S: + ***") // challenges can echo account data
		if step == maxAuthSteps {
			return c.fail(errkind.Permanent(errkind.Protocol, c.op(shown),
				"%v: more than %d SASL challenges; the exchange does not end", errProto, maxAuthSteps))
		}
		chal, err := b64.DecodeString(strings.TrimSpace(strings.TrimPrefix(l, "+")))
		if err != nil {
			c.send("*", "*") // RFC 5034 section 4: cancel the exchange
			c.readStatus("AUTH cancel", true)
			return c.fail(errkind.Permanent(errkind.Protocol, c.op(shown), "server challenge is not base64"))
		}
		var resp []byte
		if ir != nil && len(chal) == 0 {
			resp, ir = ir, nil // two-step form: the initial response now
		} else if resp, err = m.Next(chal); err != nil {
			if serr := c.send("*", "*"); serr != nil {
				return serr
			}
			c.readStatus("AUTH cancel", true)
			return errkind.WrapPermanent(errkind.Auth, c.op(shown), err)
		}
		if err := c.send(b64.EncodeToString(resp), "***"); err != nil {
			return err
		}
	}
}

// Noop sends NOOP: it keeps an idle session alive and checks it answers.
func (c *Client) Noop() error {
	_, err := c.cmd("NOOP", "NOOP", false)
	return err
}

// Rset unmarks every message marked for deletion (RFC 1939 section 5).
func (c *Client) Rset() error {
	_, err := c.cmd("RSET", "RSET", false)
	return err
}

// Stat returns the message count and total size of the maildrop.
func (c *Client) Stat() (int, int64, error) {
	text, err := c.cmd("STAT", "STAT", false)
	if err != nil {
		return 0, 0, err
	}
	n, size, err := parseStat(text)
	if err != nil {
		return 0, 0, c.fail(errkind.WrapPermanent(errkind.Protocol, c.op("STAT"), err))
	}
	c.count = n
	return n, size, nil
}

// listLimit bounds a listing: linkctl's own ceiling (Options.MaxMessages),
// lowered to the STAT count when that is known (every message is listed at
// once). Nothing is ever allocated in proportion to the STAT count: it is
// only the server's claim.
func (c *Client) listLimit() int {
	if c.count >= 0 && c.count < c.opts.MaxMessages {
		return c.count
	}
	return c.opts.MaxMessages
}

// listTooMany words a listing longer than listLimit allows, naming the
// server's claim and linkctl's ceiling.
func (c *Client) listTooMany() string {
	if c.count >= 0 && c.count < c.opts.MaxMessages {
		return fmt.Sprintf("server listed more than the %d messages STAT said", c.count)
	}
	s := fmt.Sprintf("server listed more than %d messages", c.opts.MaxMessages)
	if c.count >= 0 {
		s += fmt.Sprintf(" (STAT said %d)", c.count)
	}
	return s + "; linkctl lists at most that many per mailbox (raise the account's max_messages if the maildrop really holds more)"
}

// UIDL lists the unique-ids (RFC 1939 section 7), checked: each id 1-70
// octets of 0x21-0x7E, no message number or id twice, no message number
// beyond the STAT count.
func (c *Client) UIDL() ([]UIDEntry, error) {
	if _, err := c.cmd("UIDL", "UIDL", false); err != nil {
		return nil, err
	}
	return c.readUIDL()
}

func (c *Client) readUIDL() ([]UIDEntry, error) {
	var out []UIDEntry
	nums := map[uint32]struct{}{}
	uids := map[string]struct{}{}
	err := c.readListing("UIDL", c.listLimit(), c.listTooMany, func(l string) error {
		e, err := parseUIDLine(l)
		if err != nil {
			return err
		}
		if c.count >= 0 && int64(e.Num) > int64(c.count) {
			return fmt.Errorf("%w: UIDL lists message %d of %d", errProto, e.Num, c.count)
		}
		if _, dup := nums[e.Num]; dup {
			return fmt.Errorf("%w: UIDL lists message %d twice", errProto, e.Num)
		}
		if _, dup := uids[e.UID]; dup {
			// Two messages with one id would make the seen-store skip
			// (and later delete) one of them unread.
			return fmt.Errorf("%w: UIDL gives unique-id %q to two messages", errProto, e.UID)
		}
		// The id is kept apart from its line: a 512-octet line padded
		// with zeros in front of a short id must not pin 512 octets.
		e.UID = strings.Clone(e.UID)
		nums[e.Num], uids[e.UID] = struct{}{}, struct{}{}
		out = append(out, e)
		return nil
	})
	return out, err
}

// List lists the message sizes (RFC 1939 section 5).
func (c *Client) List() ([]SizeEntry, error) {
	if _, err := c.cmd("LIST", "LIST", false); err != nil {
		return nil, err
	}
	return c.readList()
}

func (c *Client) readList() ([]SizeEntry, error) {
	var out []SizeEntry
	nums := map[uint32]struct{}{}
	err := c.readListing("LIST", c.listLimit(), c.listTooMany, func(l string) error {
		e, err := parseListLine(l)
		if err != nil {
			return err
		}
		if c.count >= 0 && int64(e.Num) > int64(c.count) {
			return fmt.Errorf("%w: LIST lists message %d of %d", errProto, e.Num, c.count)
		}
		if _, dup := nums[e.Num]; dup {
			return fmt.Errorf("%w: LIST lists message %d twice", errProto, e.Num)
		}
		nums[e.Num] = struct{}{}
		out = append(out, e)
		return nil
	})
	return out, err
}

// Msg is a message of the maildrop as Scan reports it.
type Msg struct {
	Num  uint32
	UID  string
	Size int64
}

// Scan lists the maildrop: STAT (for the count that bounds the listings),
// UIDL and LIST, sent together when the server pipelines. Every message
// must have both a unique-id and a size; a server without UIDL is an error
// because without ids nothing can be tracked safely across sessions.
func (c *Client) Scan() ([]Msg, error) {
	var uids []UIDEntry
	var sizes []SizeEntry
	cmds := []pcmd{{line: "STAT"}, {line: "UIDL", multi: true}, {line: "LIST", multi: true}}
	first := 0
	if c.capaPending {
		c.capaPending = false
		cmds = append([]pcmd{{line: "CAPA", multi: true}}, cmds...)
		first = 1
	}
	err := c.pipe(cmds, func(i int) error {
		text, err := c.readStatus(cmds[i].line, false)
		if err != nil {
			var se *ServerError
			if cmds[i].line == "CAPA" && errors.As(err, &se) {
				c.caps = Caps{} // no CAPA: no capabilities, not an error
				return nil
			}
			return err
		}
		switch i - first {
		case -1:
			caps := Caps{}
			err = c.readListing("CAPA", maxCapaLines, capaTooMany, func(l string) error { caps.add(l); return nil })
			c.caps = caps
		case 0:
			n, _, err := parseStat(text)
			if err != nil {
				return c.fail(errkind.WrapPermanent(errkind.Protocol, c.op("STAT"), err))
			}
			c.count = n
		case 1:
			uids, err = c.readUIDL()
		case 2:
			sizes, err = c.readList()
		}
		return err
	})
	if err != nil {
		var se *ServerError
		if errors.As(err, &se) && se.Command == "UIDL" {
			return nil, errkind.WrapPermanent(errkind.Protocol, c.op("UIDL"),
				fmt.Errorf("the server does not support UIDL, which linkctl needs to know what it already fetched: %w", se))
		}
		return nil, err
	}
	size := make(map[uint32]int64, len(sizes))
	for _, s := range sizes {
		size[s.Num] = s.Size
	}
	if len(uids) != len(sizes) {
		return nil, c.fail(errkind.Permanent(errkind.Protocol, c.op("UIDL/LIST"),
			"%v: UIDL lists %d messages, LIST %d", errProto, len(uids), len(sizes)))
	}
	out := make([]Msg, 0, len(uids))
	for _, u := range uids {
		s, ok := size[u.Num]
		if !ok {
			return nil, c.fail(errkind.Permanent(errkind.Protocol, c.op("UIDL/LIST"),
				"%v: message %d is in UIDL but not in LIST", errProto, u.Num))
		}
		out = append(out, Msg{Num: u.Num, UID: u.UID, Size: s})
	}
	return out, nil
}

// RetrAll retrieves messages nums in order, pipelined when the server
// announced PIPELINING, and calls fn(i, r) for nums[i] with a reader of
// the message: dot-stuffing removed, CRLF turned into LF, streamed from
// the connection (never held in memory). r is valid until fn returns; what
// fn leaves unread is read and discarded. When fn returns an error, no more
// RETR is sent, the messages already asked for are read and discarded so
// that the session stays usable (for DELE and QUIT), and the error is
// returned.
func (c *Client) RetrAll(nums []uint32, fn func(i int, r io.Reader) error) error {
	return c.RetrLimited(nums, nil, fn)
}

// RetrLimited is RetrAll with a ceiling on each message's length (limits[i]
// octets after LF conversion; 0 or a short slice: none). A message that
// passes its ceiling breaks the session with a protocol error: a server
// that streams without end is cut off instead of read on forever.
func (c *Client) RetrLimited(nums []uint32, limits []int64, fn func(i int, r io.Reader) error) error {
	cmds := make([]pcmd, len(nums))
	for i, n := range nums {
		cmds[i] = pcmd{line: "RETR " + strconv.FormatUint(uint64(n), 10), multi: true, body: true}
		if i < len(limits) {
			cmds[i].limit = limits[i]
		}
	}
	return c.pipe(cmds, func(i int) error {
		if _, err := c.readStatus(cmds[i].line, false); err != nil {
			return err
		}
		body := newDotReader(c.r.R, cmds[i].limit)
		ferr := fn(i, body)
		if body.err == nil {
			io.Copy(io.Discard, body)
		}
		if body.err != nil {
			return c.fail(c.netErr(cmds[i].line, body.err))
		}
		return ferr
	})
}

// Retr retrieves one message; see RetrAll.
func (c *Client) Retr(num uint32, fn func(r io.Reader) error) error {
	return c.RetrAll([]uint32{num}, func(_ int, r io.Reader) error { return fn(r) })
}

// DeleAll marks messages nums for deletion, pipelined when allowed. The
// deletions take effect at Quit (RFC 1939 section 6). It stops at the
// first -ERR and returns it; the DELEs answered +OK before stay marked.
func (c *Client) DeleAll(nums []uint32) error {
	cmds := make([]pcmd, len(nums))
	for i, n := range nums {
		cmds[i] = pcmd{line: "DELE " + strconv.FormatUint(uint64(n), 10)}
	}
	return c.pipe(cmds, func(i int) error {
		_, err := c.readStatus(cmds[i].line, false)
		return err
	})
}

// Dele marks one message for deletion.
func (c *Client) Dele(num uint32) error { return c.DeleAll([]uint32{num}) }

// DeleQuit marks nums for deletion and ends the session with QUIT, all in
// one pipelined batch when the server allows: the deletions then cost one
// round trip in all. A DELE answered -ERR does not stop the others or the
// QUIT (the caller asked for every one of them to be committed); the first
// such error is returned after the QUIT.
func (c *Client) DeleQuit(nums []uint32) error {
	cmds := make([]pcmd, 0, len(nums)+1)
	for _, n := range nums {
		cmds = append(cmds, pcmd{line: "DELE " + strconv.FormatUint(uint64(n), 10)})
	}
	cmds = append(cmds, pcmd{line: "QUIT"})
	var deleErr error
	err := c.pipe(cmds, func(i int) error {
		_, err := c.readStatus(cmds[i].line, false)
		var se *ServerError
		if i < len(nums) && errors.As(err, &se) {
			if deleErr == nil {
				deleErr = err
			}
			return nil
		}
		return err
	})
	c.close()
	if c.broken == nil {
		c.broken = errkind.Permanent(errkind.Internal, c.op("session"), "used after QUIT")
	}
	if err != nil {
		return err
	}
	return deleErr
}

// Quit ends the session: the server enters the UPDATE state and removes
// the messages marked for deletion (RFC 1939 section 6). A -ERR here means
// some of them were not removed.
func (c *Client) Quit() error {
	_, err := c.cmd("QUIT", "QUIT", false)
	c.close()
	if c.broken == nil {
		c.broken = errkind.Permanent(errkind.Internal, c.op("session"), "used after QUIT")
	}
	return err
}

// pcmd is one command of a pipelined batch.
type pcmd struct {
	line  string
	shown string // for transcripts and errors when line holds a secret
	multi bool   // +OK is followed by a dot-terminated body
	body  bool   // the body is message content (unbounded), not a listing
	limit int64  // most octets of a body (0: no limit)
}

func (p pcmd) name() string {
	if p.shown != "" {
		return p.shown
	}
	return p.line
}

// pipe sends cmds, at most Window in flight when the server pipelines
// (RFC 2449 section 6.6) and one at a time otherwise, from a writer
// goroutine, while this goroutine reads the responses in order and hands
// each to handle. Reading while writing is what keeps either side from
// blocking on a full buffer: the server may stop reading commands while
// its output is not being read.
//
// When handle returns an error that leaves the session usable (a -ERR, or
// the caller's own), no further command is sent and the responses to the
// commands already sent are read and thrown away, so the session stays in
// step. An error that broke the session ends everything at once.
func (c *Client) pipe(cmds []pcmd, handle func(i int) error) error {
	if c.broken != nil {
		return c.broken
	}
	if len(cmds) == 0 {
		return nil
	}
	window := 1
	if c.caps.Has("PIPELINING") {
		window = c.opts.Window
	}
	slots := make(chan struct{}, window)
	issued := make(chan int, window)
	stop := make(chan struct{})
	var werr error
	go func() {
		defer close(issued)
		flush := func() bool {
			if err := c.w.Flush(); err != nil {
				werr = err
				c.raw.Close() // unblock the reader
				return false
			}
			return true
		}
		for i := range cmds {
			select {
			case slots <- struct{}{}:
			default:
				// The window is full: send what is buffered, then wait.
				if !flush() {
					return
				}
				select {
				case slots <- struct{}{}:
				case <-stop:
					return
				}
			}
			// The reader halts before it frees a slot, so a stop is
			// seen here before a command too many goes out.
			select {
			case <-stop:
				flush()
				return
			default:
			}
			// Announce before writing: the reader must be ready to read
			// the answer before the command can reach the server.
			issued <- i
			c.trace("C: " + cmds[i].name())
			c.w.WriteString(cmds[i].line)
			c.w.WriteString("\r\n")
		}
		flush()
	}()

	var first error
	var once sync.Once
	halt := func() { once.Do(func() { close(stop) }) }
	for i := range issued {
		var err error
		if first == nil {
			err = handle(i)
		} else {
			err = c.discard(cmds[i])
		}
		if err != nil {
			halt()
		}
		<-slots
		if err == nil {
			continue
		}
		if first == nil {
			first = err
		}
		if c.broken != nil {
			c.raw.Close()
			for range issued {
			}
			break
		}
	}
	halt()
	if werr != nil && !isClosed(werr) && (c.broken == nil || isClosed(c.broken)) {
		// The write failed first and closed the conn under the reader:
		// report the cause, not the read error it provoked.
		err := c.netErr(cmds[0].name(), werr)
		c.broken = err
		c.close()
		return err
	}
	if first == nil && werr != nil {
		return c.fail(c.netErr(cmds[0].name(), werr))
	}
	return first
}

// isClosed reports an error that only says the conn was closed here.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe)
}

// discard reads and drops the response to a command whose answer is no
// longer wanted.
func (c *Client) discard(cmd pcmd) error {
	if _, err := c.readStatus(cmd.name(), false); err != nil {
		if c.broken != nil {
			return err
		}
		return nil // a -ERR ends the response
	}
	if !cmd.multi {
		return nil
	}
	if cmd.body {
		body := newDotReader(c.r.R, cmd.limit)
		if _, err := io.Copy(io.Discard, body); err != nil {
			return c.fail(c.netErr(cmd.name(), err))
		}
		return nil
	}
	return c.readListing(cmd.name(), c.listLimit()+maxCapaLines, c.listTooMany, nil)
}
