package esmtp

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/logx"
	"github.com/linkctl/linkctl/internal/netconn"
)

// ClientOptions configure a Client. The zero value works.
type ClientOptions struct {
	// Name prefixes errors ("etrn", "odmr"; default "smtp").
	Name string
	// Server names the peer in errors ("mail.example.net:25").
	Server string
	// Timeout bounds every write and every reply read (0:
	// netconn.DefaultTimeout).
	Timeout time.Duration
	// Trace, when set, receives the transcript one line at a time,
	// prefixed "C: " or "S: ", with AUTH secrets replaced by "***".
	Trace func(line string)
	// Logger receives the transcript at logx.LevelTrace (nil: discard).
	Logger *slog.Logger
}

// Client is an SMTP client for the commands go-smtp's client cannot send:
// greeting, EHLO, STARTTLS, AUTH, then ETRN (RFC 1985) or ATRN (RFC 2645),
// QUIT. After an accepted ATRN, Hijack hands over the connection for the
// turned-around session. It takes a connected
// net.Conn; dialing and implicit TLS are the caller's.
type Client struct {
	conn     net.Conn
	text     *textproto.Conn
	opts     ClientOptions
	ext      map[string]string // EHLO keywords (upper case) -> parameters
	tls      bool
	greeting Reply
}

// NewClient reads the server's greeting on conn. A conn that is a
// *tls.Conn (implicit TLS) counts as secure for AUTH.
func NewClient(conn net.Conn, opts ClientOptions) (*Client, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = netconn.DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{conn: conn, text: textproto.NewConn(conn), opts: opts}
	_, c.tls = conn.(*tls.Conn)
	r, err := c.read("greeting")
	if err != nil {
		return nil, err
	}
	c.greeting = r
	// RFC 5321 section 3.1: 220 opens the session; 554 (or any failure)
	// means the server will not talk to us.
	if r.Code != 220 {
		return nil, c.replyErr(errkind.Refused, "greeting", r)
	}
	return c, nil
}

// Greeting returns the server's 220 reply.
func (c *Client) Greeting() Reply { return c.greeting }

// TLS reports whether the session is encrypted.
func (c *Client) TLS() bool { return c.tls }

// Extension reports whether the last EHLO reply listed keyword, with its
// parameters.
func (c *Client) Extension(keyword string) (bool, string) {
	p, ok := c.ext[strings.ToUpper(keyword)]
	return ok, p
}

func (c *Client) op(what string) string {
	name := c.opts.Name
	if name == "" {
		name = "smtp"
	}
	if c.opts.Server == "" {
		return name + ": " + what
	}
	return name + " " + c.opts.Server + ": " + what
}

func (c *Client) trace(line string) {
	if c.opts.Trace != nil {
		c.opts.Trace(line)
	}
	c.opts.Logger.Log(context.Background(), logx.LevelTrace, "smtp", "server", c.opts.Server, "line", line)
}

// read reads one reply within the timeout.
func (c *Client) read(what string) (Reply, error) {
	c.conn.SetReadDeadline(time.Now().Add(c.opts.Timeout))
	r, err := ReadReply(c.text.R, func(l string) { c.trace("S: " + l) })
	if err != nil {
		return r, protocolError(c.op(what), err)
	}
	return r, nil
}

// cmd sends one command line (shown in the transcript as shown) and reads
// the reply.
func (c *Client) cmd(line, shown string) (Reply, error) {
	verb, _, _ := strings.Cut(shown, " ")
	c.trace("C: " + shown)
	c.conn.SetWriteDeadline(time.Now().Add(c.opts.Timeout))
	if err := c.text.PrintfLine("%s", line); err != nil {
		return Reply{}, protocolError(c.op(verb), err)
	}
	return c.read(verb)
}

// replyErr turns an unexpected reply into a classified error: 4xx
// temporary, 5xx permanent.
func (c *Client) replyErr(kind errkind.Kind, what string, r Reply) error {
	return errkind.New(kind, r.Class() == 4, c.op(what), "server replied %q", r.String())
}

// Hello sends EHLO name and records the extensions. A server that rejects
// EHLO with 500/502 (RFC 5321 section 3.2) gets HELO; it then offers no
// extensions, so no ETRN, STARTTLS or AUTH either.
func (c *Client) Hello(name string) error {
	if name == "" || strings.ContainsAny(name, " \r\n\t") {
		return errkind.Permanent(errkind.Usage, c.op("EHLO"), "bad HELO name %q", name)
	}
	r, err := c.cmd("EHLO "+name, "EHLO "+name)
	if err != nil {
		return err
	}
	c.ext = map[string]string{}
	if r.Code == 500 || r.Code == 502 {
		if r, err = c.cmd("HELO "+name, "HELO "+name); err != nil {
			return err
		}
		if r.Code != 250 {
			return c.replyErr(errkind.Refused, "HELO", r)
		}
		return nil
	}
	if r.Code != 250 {
		return c.replyErr(errkind.Refused, "EHLO", r)
	}
	// RFC 5321 section 4.1.1.1: the first line is the greeting, each
	// further line an extension keyword with optional parameters.
	for _, l := range r.Lines[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		if k != "" {
			c.ext[strings.ToUpper(k)] = v
		}
	}
	return nil
}

// StartTLS upgrades the session (RFC 3207). The server must have offered
// STARTTLS: a missing offer is an error, never a silent fall back to
// plaintext. Bytes the server sent after its 220 and before the handshake
// are an attack (command injection, CVE-2011-0411 style) and end the
// session. After the handshake the caller must say EHLO again (RFC 3207
// section 4.2: the client discards what it knew).
func (c *Client) StartTLS(ctx context.Context, cfg *tls.Config) error {
	if ok, _ := c.Extension("STARTTLS"); !ok {
		return errkind.Permanent(errkind.Protocol, c.op("STARTTLS"),
			"server does not offer STARTTLS; not continuing in plaintext (use tls: none / --tls none only for a trusted path)")
	}
	r, err := c.cmd("STARTTLS", "STARTTLS")
	if err != nil {
		return err
	}
	if r.Code != 220 {
		return c.replyErr(errkind.Protocol, "STARTTLS", r)
	}
	if n := c.text.R.Buffered(); n > 0 {
		return errkind.Permanent(errkind.Protocol, c.op("STARTTLS"),
			"server sent %d bytes before the TLS handshake; refusing them (possible injection)", n)
	}
	c.conn.SetDeadline(time.Time{})
	tc, err := netconn.Handshake(ctx, c.conn, netconn.TLSConfig(cfg, c.opts.Server), c.opts.Timeout)
	if err != nil {
		return fmt.Errorf("%s: %w", c.op("STARTTLS"), err)
	}
	// A fresh reader over the TLS conn: nothing read before the handshake
	// survives, and the extensions must be learnt again.
	c.conn = tc
	c.text = textproto.NewConn(tc)
	c.ext = nil
	c.tls = true
	return nil
}

// AuthOptions configure Auth.
type AuthOptions struct {
	User     string
	Password string
	// AllowPlaintext permits AUTH over an unencrypted session: only when
	// the user wrote `tls: none` for this server.
	AllowPlaintext bool
}

// Auth authenticates with the best mechanism both sides know: PLAIN,
// then LOGIN, then CRAM-MD5 over TLS; CRAM-MD5 first without TLS, since
// it does not put the password on the wire. Failures are errkind.Auth,
// temporary for 4xx (RFC 4954 section 6: 454 temporary failure).
func (c *Client) Auth(a AuthOptions) error {
	if !c.tls && !a.AllowPlaintext {
		return errkind.Permanent(errkind.Auth, c.op("AUTH"),
			"refusing to send credentials over an unencrypted connection (use TLS, or tls: none to allow it)")
	}
	ok, params := c.Extension("AUTH")
	if !ok {
		return errkind.Permanent(errkind.Auth, c.op("AUTH"), "server does not offer AUTH")
	}
	offered := strings.Fields(strings.ToUpper(params))
	prefs := []string{"PLAIN", "LOGIN", "CRAM-MD5"}
	if !c.tls {
		prefs = []string{"CRAM-MD5", "PLAIN", "LOGIN"}
	}
	var mech string
	for _, m := range prefs {
		if slices.Contains(offered, m) {
			mech = m
			break
		}
	}
	var r Reply
	var err error
	switch mech {
	case "PLAIN":
		// RFC 4616: authzid NUL authcid NUL passwd, as the initial
		// response (RFC 4954 section 4).
		blob := base64.StdEncoding.EncodeToString([]byte("\x00" + a.User + "\x00" + a.Password))
		r, err = c.cmd("AUTH PLAIN "+blob, "AUTH PLAIN ***")
	case "LOGIN":
		if r, err = c.cmd("AUTH LOGIN", "AUTH LOGIN"); err == nil && r.Code == 334 {
			if r, err = c.cmd(b64(a.User), "***"); err == nil && r.Code == 334 {
				r, err = c.cmd(b64(a.Password), "***")
			}
		}
	case "CRAM-MD5":
		// RFC 2195: the response is user SP hex(HMAC-MD5(password, challenge)).
		if r, err = c.cmd("AUTH CRAM-MD5", "AUTH CRAM-MD5"); err == nil && r.Code == 334 {
			chal, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(r.Text()))
			if derr != nil {
				c.cmd("*", "*") // RFC 4954 section 4: cancel the exchange
				return errkind.Permanent(errkind.Protocol, c.op("AUTH CRAM-MD5"), "challenge is not base64: %v", derr)
			}
			h := hmac.New(md5.New, []byte(a.Password))
			h.Write(chal)
			r, err = c.cmd(b64(a.User+" "+hex.EncodeToString(h.Sum(nil))), "***")
		}
	default:
		return errkind.Permanent(errkind.Auth, c.op("AUTH"),
			"server offers no mechanism linkctl knows (offered: %s; linkctl knows PLAIN, LOGIN, CRAM-MD5)", params)
	}
	if err != nil {
		return err
	}
	if r.Code != 235 {
		return errkind.New(errkind.Auth, r.Class() == 4, c.op("AUTH "+mech),
			"authentication as %q failed: server replied %q; check the user name and password", a.User, r.String())
	}
	return nil
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// ErrBadArgument is returned by ETRN for an argument that cannot be sent.
var ErrBadArgument = errors.New("bad ETRN argument")

// ETRN sends one ETRN command (RFC 1985 section 4) and returns the reply,
// whatever its code: the caller reads it with [Classify] and [Reading].
// arg is a node name ("example.org"), "@example.org" (the domain and its
// subdomains) or "#queue" (a server-specific queue name).
func (c *Client) ETRN(arg string) (Reply, error) {
	if err := checkArg(arg); err != nil {
		return Reply{}, errkind.WrapPermanent(errkind.Usage, c.op("ETRN"), err)
	}
	return c.cmd("ETRN "+arg, "ETRN "+arg)
}

func checkArg(arg string) error {
	body := strings.TrimPrefix(strings.TrimPrefix(arg, "@"), "#")
	if body == "" || len(arg) > 255 {
		return fmt.Errorf("%w %q: want node, @domain or #queue", ErrBadArgument, arg)
	}
	for _, r := range arg {
		if r <= ' ' || r >= 0x7f {
			return fmt.Errorf("%w %q: spaces and control characters are not allowed", ErrBadArgument, arg)
		}
	}
	return nil
}

// quitWait bounds the wait for the reply to QUIT: nothing depends on it,
// and a server that stalls there must not hold the link for a whole
// inactivity timeout.
var quitWait = 5 * time.Second

// Quit ends the session politely (RFC 5321 section 4.1.1.10) and closes
// the connection. Its reply does not matter: ETRN has already been
// answered, so it is waited for at most quitWait.
func (c *Client) Quit() error {
	c.opts.Timeout = min(c.opts.Timeout, quitWait)
	_, err := c.cmd("QUIT", "QUIT")
	c.conn.Close()
	return err
}

// Close closes the connection without QUIT.
func (c *Client) Close() error { return c.conn.Close() }

// Cmd sends one command line and reads its reply, whatever its code.
// shown is what the transcript shows instead of line (secrets as ***).
func (c *Client) Cmd(line, shown string) (Reply, error) { return c.cmd(line, shown) }

// ATRN asks an ODMR relay to turn the connection around and deliver the
// mail it holds for domains (RFC 2645 section 4.2). The reply is returned
// whatever its code: 250 means the roles are reversed now, 453 that there
// is no mail, 450 and 5xx refusals.
func (c *Client) ATRN(domains []string) (Reply, error) {
	for _, d := range domains {
		if err := checkArg(d); err != nil || strings.ContainsAny(d, ",@#") {
			return Reply{}, errkind.Permanent(errkind.Usage, c.op("ATRN"), "bad domain %q for ATRN", d)
		}
	}
	arg := strings.Join(domains, ",")
	return c.cmd("ATRN "+arg, "ATRN "+arg)
}

// Hijack gives up the connection after an accepted ATRN: the caller now
// owns conn, and buffered holds the bytes already read past the reply
// (the relay may pipeline its greeting-less EHLO right behind it).
func (c *Client) Hijack() (conn net.Conn, buffered []byte) {
	n := c.text.R.Buffered()
	buffered, _ = c.text.R.Peek(n)
	buffered = append([]byte(nil), buffered...)
	conn = c.conn
	c.conn, c.text = nil, nil
	return conn, buffered
}
