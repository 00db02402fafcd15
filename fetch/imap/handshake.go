package imap

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/linkctl/linkctl/internal/authmech"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/logx"
	"github.com/linkctl/linkctl/internal/netconn"
)

// handshake runs the not-authenticated state of RFC 3501 section 3 by
// itself, on the connection below go-imap: greeting, CAPABILITY, STARTTLS,
// LOGIN or AUTHENTICATE, and COMPRESS DEFLATE. See the package doc for why.
type handshake struct {
	opts   *Options
	log    *slog.Logger
	wire   *wireConn
	conn   net.Conn // wire, or TLS over wire
	br     *bufio.Reader
	tagNum int
	caps   []string
	tls    bool
	// untagged counts the untagged responses since the last command: a
	// server that never stops sending them would keep the login going
	// for ever (the inactivity timeout never fires on a talkative peer).
	untagged int
}

// result of a successful handshake.
type handshakeResult struct {
	conn       net.Conn
	br         *bufio.Reader
	caps       []string
	compressed bool
}

func (h *handshake) has(c string) bool { return slices.Contains(h.caps, strings.ToUpper(c)) }

// run drives the handshake on h.wire. The caller arms the wire and closes
// it on failure.
func (h *handshake) run(ctx context.Context) (*handshakeResult, error) {
	o := h.opts
	h.conn = h.wire
	switch o.TLS {
	case netconn.TLSImplicit, netconn.TLSStartTLS, netconn.TLSNone:
	default:
		return nil, errkind.Permanent(errkind.Internal, h.op("connect"), "tls mode %q reached the IMAP client unvalidated (expected implicit, starttls or none)", o.TLS)
	}
	if o.TLS == netconn.TLSImplicit {
		tc, err := netconn.Handshake(ctx, h.wire, netconn.TLSConfig(o.TLSConfig, o.Addr), o.timeout())
		if err != nil {
			return nil, err
		}
		h.conn, h.tls = tc, true
	}
	h.br = bufio.NewReaderSize(h.conn, 4096)

	greet, err := h.readResponse()
	if err != nil {
		return nil, h.ioErr("reading the greeting", err)
	}
	preauth := false
	switch {
	case greet.tag != "*":
		return nil, errkind.Permanent(errkind.Protocol, h.op("greeting"), "expected an untagged greeting, got %q", clip(greet.tag+" "+greet.kind))
	case greet.kind == "BYE":
		// RFC 3501 section 7.1.5: the server refuses this connection
		// (overloaded, blocked): worth trying again later.
		return nil, errkind.Temporary(errkind.Refused, h.op("greeting"), "server refused the connection: %s", clip(greet.text))
	case greet.kind == "PREAUTH":
		preauth = true
	case greet.kind != "OK":
		return nil, errkind.Permanent(errkind.Protocol, h.op("greeting"), "unexpected greeting %q", clip(greet.kind))
	}
	if greet.code == "CAPABILITY" {
		if h.caps, err = parseCaps(greet.arg); err != nil {
			return nil, errkind.WrapPermanent(errkind.Protocol, h.op("greeting"), err)
		}
	}

	if o.TLS == netconn.TLSStartTLS {
		if preauth {
			// RFC 3501 section 6.2.1 allows STARTTLS only before
			// authentication: a PREAUTH greeting on a plaintext connection
			// leaves no way to secure it, and going on would send every
			// message in the clear (go-imap's NewStartTLS refuses it too).
			return nil, errkind.Permanent(errkind.Network, h.op("STARTTLS"),
				"server sent PREAUTH on a plaintext connection, so TLS cannot be started: refusing to continue (use tls: implicit, or tls: none if this is really wanted)")
		}
		if err := h.startTLS(ctx); err != nil {
			return nil, err
		}
	}

	if !preauth && o.Auth == authmech.External {
		return nil, errkind.Permanent(errkind.Auth, h.op("login"),
			"auth: external expects a pre-authenticated session (a PREAUTH greeting), but the server asks for a login")
	}
	if !preauth {
		if err := h.authenticate(ctx); err != nil {
			return nil, err
		}
	}
	if len(h.caps) == 0 {
		if err := h.capability(); err != nil {
			return nil, err
		}
	}

	compressed, err := h.compress()
	if err != nil {
		return nil, err
	}
	return &handshakeResult{conn: h.conn, br: h.br, caps: h.caps, compressed: compressed}, nil
}

func (h *handshake) op(what string) string {
	return "imap " + h.opts.Addr + " " + what
}

// ioErr classifies a failure to read or write during the handshake.
func (h *handshake) ioErr(what string, err error) error {
	var ek *errkind.Error
	if errors.As(err, &ek) {
		return err
	}
	if errors.Is(err, errProto) {
		return errkind.WrapPermanent(errkind.Protocol, h.op(what), err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errkind.WrapTemporary(errkind.Network, h.op(what),
			fmt.Errorf("no answer within %v: %w", h.opts.timeout(), err))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errkind.WrapTemporary(errkind.Network, h.op(what), fmt.Errorf("connection closed by the server or the link: %w", err))
	}
	return errkind.WrapTemporary(errkind.Network, h.op(what), err)
}

// readLine reads one CRLF-terminated line of at most maxLine octets.
func (h *handshake) readLine() (string, error) {
	var line []byte
	for {
		frag, err := h.br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > maxLine {
			return "", fmt.Errorf("%w: response line longer than %d octets", errProto, maxLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		break
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r")
	return s, nil
}

// readResponse reads one response, skipping the contents of any literal it
// carries (the handshake never needs one), and logs it.
func (h *handshake) readResponse() (response, error) {
	line, err := h.readLine()
	if err != nil {
		return response{}, err
	}
	full := line
	for {
		n, ok, err := literalSize(line)
		if err != nil {
			return response{}, err
		}
		if !ok {
			break
		}
		if n > maxHandshakeLiteral {
			return response{}, fmt.Errorf("%w: literal of %d octets in a handshake response", errProto, n)
		}
		if _, err := io.CopyN(io.Discard, h.br, n); err != nil {
			return response{}, err
		}
		if line, err = h.readLine(); err != nil {
			return response{}, err
		}
		full += " ... " + line
	}
	h.log.Log(context.Background(), logx.LevelTrace, "imap S: "+clip(full), "server", h.opts.Addr)
	r, err := parseResponse(full)
	if err != nil {
		return r, err
	}
	if r.code == "ALERT" {
		// RFC 3501 section 7.1: the text MUST be presented to the user.
		h.log.Warn("IMAP server alert: "+clip(r.text), "server", h.opts.Addr)
	}
	if r.tag == "*" {
		if h.untagged++; h.untagged > DefaultMaxUnsolicited {
			return r, errkind.Temporary(errkind.Protocol, h.op("login"),
				"server flooded the session: more than %d untagged responses before its answer (the last %q)", DefaultMaxUnsolicited, clip(full))
		}
	}
	return r, nil
}

// write sends raw octets; shown is what the transcript says instead
// (secrets replaced by ***).
func (h *handshake) write(s, shown string) error {
	h.log.Log(context.Background(), logx.LevelTrace, "imap C: "+shown, "server", h.opts.Addr)
	h.untagged = 0
	_, err := io.WriteString(h.conn, s)
	return err
}

func (h *handshake) nextTag() string {
	h.tagNum++
	return "L" + strconv.Itoa(h.tagNum)
}

// command sends "TAG line" and reads responses up to the tagged one,
// collecting untagged CAPABILITY data on the way. A BYE ends the session.
func (h *handshake) command(line, shown string) (response, error) {
	tag := h.nextTag()
	if err := h.write(tag+" "+line+"\r\n", tag+" "+shown); err != nil {
		return response{}, h.ioErr(firstWord(shown), err)
	}
	return h.await(tag, firstWord(shown))
}

func (h *handshake) await(tag, what string) (response, error) {
	for {
		r, err := h.readResponse()
		if err != nil {
			return r, h.ioErr(what, err)
		}
		switch {
		case r.tag == tag:
			if r.code == "CAPABILITY" {
				if h.caps, err = parseCaps(r.arg); err != nil {
					return r, h.ioErr(what, err)
				}
			}
			return r, nil
		case r.tag == "*" && r.kind == "CAPABILITY":
			if h.caps, err = parseCaps(r.text); err != nil {
				return r, h.ioErr(what, err)
			}
		case r.tag == "*" && r.kind == "BYE":
			return r, errkind.Temporary(errkind.Network, h.op(what), "server closed the session: %s", clip(r.text))
		case r.tag == "*":
			// Other untagged data (OK with ALERT, ENABLED, ...): nothing
			// the handshake needs.
		case r.tag == "+":
			return r, errkind.Permanent(errkind.Protocol, h.op(what), "unexpected continuation request")
		default:
			return r, errkind.Permanent(errkind.Protocol, h.op(what), "response with unknown tag %q", clip(r.tag))
		}
	}
}

func firstWord(s string) string {
	w, _, _ := strings.Cut(s, " ")
	return w
}

// statusErr turns a tagged NO or BAD into a classified error.
func (h *handshake) statusErr(what string, r response, kind errkind.Kind) error {
	if r.kind == "OK" {
		return nil
	}
	temp := false
	switch r.code {
	case "UNAVAILABLE", "INUSE", "SERVERBUG", "LIMIT", "OVERQUOTA":
		temp = true // RFC 5530: a condition that may pass
	}
	if r.kind == "BAD" {
		kind = errkind.Protocol
	}
	msg := r.kind
	if r.code != "" {
		msg += " [" + r.code + "]"
	}
	return errkind.New(kind, temp, h.op(what), "server answered %s: %s", msg, clip(r.text))
}

func (h *handshake) capability() error {
	r, err := h.command("CAPABILITY", "CAPABILITY")
	if err != nil {
		return err
	}
	return h.statusErr("CAPABILITY", r, errkind.Protocol)
}

// startTLS upgrades the connection (RFC 3501 section 6.2.1, RFC 2595).
func (h *handshake) startTLS(ctx context.Context) error {
	if len(h.caps) == 0 {
		if err := h.capability(); err != nil {
			return err
		}
	}
	if !h.has("STARTTLS") {
		return errkind.Permanent(errkind.Network, h.op("STARTTLS"),
			"server does not offer STARTTLS and TLS is required: use tls: implicit (port 993) or, only on a trusted network, tls: none")
	}
	r, err := h.command("STARTTLS", "STARTTLS")
	if err != nil {
		return err
	}
	if err := h.statusErr("STARTTLS", r, errkind.Network); err != nil {
		return err
	}
	if h.br.Buffered() > 0 {
		// Octets after the tagged OK and before the handshake were sent in
		// the clear and could be an attacker's (CVE-2011-0411 class).
		return errkind.Permanent(errkind.Protocol, h.op("STARTTLS"), "server sent data after its STARTTLS answer, before TLS")
	}
	tc, err := netconn.Handshake(ctx, h.wire, netconn.TLSConfig(h.opts.TLSConfig, h.opts.Addr), h.opts.timeout())
	if err != nil {
		return err
	}
	h.conn, h.tls = tc, true
	h.br = bufio.NewReaderSize(tc, 4096)
	// RFC 3501 section 6.2.1: capabilities learnt before TLS are discarded.
	h.caps = nil
	return h.capability()
}

// authenticate logs in by the configured method.
func (h *handshake) authenticate(ctx context.Context) error {
	o := h.opts
	if len(h.caps) == 0 {
		if err := h.capability(); err != nil {
			return err
		}
	}
	method := o.Auth
	switch method {
	case "", authmech.Auto:
		// LOGIN works everywhere it is allowed; RFC 3501 section 6.2.3
		// LOGINDISABLED means the server wants AUTHENTICATE instead.
		method = authmech.Login
		if h.has("LOGINDISABLED") {
			if !h.has("AUTH=PLAIN") {
				return errkind.Permanent(errkind.Auth, h.op("LOGIN"),
					"server refuses LOGIN (LOGINDISABLED) and offers no AUTH=PLAIN: it may require TLS (tls: starttls or implicit) or another auth method")
			}
			method = authmech.Plain
		}
	case authmech.Password:
		method = authmech.Login
	}
	if o.Password == nil {
		return errkind.Permanent(errkind.Usage, h.op("LOGIN"), "no password or token configured for %s", o.User)
	}
	secret, err := o.Password(ctx)
	if err != nil {
		return errkind.WrapPermanent(errkind.Auth, h.op("password for "+o.User), err)
	}
	switch method {
	case authmech.Login:
		if h.has("LOGINDISABLED") {
			return errkind.Permanent(errkind.Auth, h.op("LOGIN"), "server refuses LOGIN (LOGINDISABLED): use auth: plain, or TLS")
		}
		return h.login(o.User, secret)
	case authmech.Plain:
		return h.sasl("PLAIN", sasl.NewPlainClient("", o.User, secret))
	case authmech.XOAuth2:
		return h.sasl("XOAUTH2", xoauth2Client{user: o.User, token: secret})
	case authmech.OAuthBearer:
		host, port := o.Addr, 0
		if hs, ps, err := net.SplitHostPort(o.Addr); err == nil {
			host = hs
			port, _ = strconv.Atoi(ps)
		}
		return h.sasl("OAUTHBEARER", sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: o.User, Token: secret, Host: host, Port: port}))
	}
	// Options.validate let no other value through, and external logs in
	// before this (PREAUTH) or fails above.
	return errkind.Permanent(errkind.Internal, h.op("login"), "auth %q reached the IMAP login (expected auto, password, login, plain, xoauth2 or oauthbearer)", o.Auth)
}

// login sends LOGIN (RFC 3501 section 6.2.3), quoting each argument or, when
// it cannot be quoted, sending it as a synchronizing literal.
func (h *handshake) login(user, pass string) error {
	tag := h.nextTag()
	args := []string{user, pass}
	line := tag + " LOGIN"
	shown := line
	for i, a := range args {
		show := func(s string) string {
			if i == 1 {
				return "***"
			}
			return s
		}
		if q, ok := quote(a); ok {
			line += " " + q
			shown += " " + show(q)
			continue
		}
		// Literal: announce, wait for the continuation, send the octets.
		ann := " {" + strconv.Itoa(len(a)) + "}"
		if err := h.write(line+ann+"\r\n", shown+ann); err != nil {
			return h.ioErr("LOGIN", err)
		}
		r, err := h.readResponse()
		if err != nil {
			return h.ioErr("LOGIN", err)
		}
		if r.tag != "+" {
			if r.tag == tag {
				return h.statusErr("LOGIN", r, errkind.Auth)
			}
			return errkind.Permanent(errkind.Protocol, h.op("LOGIN"), "expected a continuation request for a literal, got %q", clip(r.tag+" "+r.kind))
		}
		line, shown = a, show(a)
	}
	if err := h.write(line+"\r\n", shown); err != nil {
		return h.ioErr("LOGIN", err)
	}
	r, err := h.await(tag, "LOGIN")
	if err != nil {
		return err
	}
	if err := h.statusErr("LOGIN", r, errkind.Auth); err != nil {
		return err
	}
	if r.code != "CAPABILITY" {
		h.caps = nil // RFC 3501 section 6.2.3 note: they may change after login
	}
	return nil
}

// sasl runs AUTHENTICATE (RFC 3501 section 6.2.2), with the initial
// response inline when the server offers SASL-IR (RFC 4959).
func (h *handshake) sasl(mech string, c sasl.Client) error {
	_, ir, err := c.Start()
	if err != nil {
		return errkind.WrapPermanent(errkind.Auth, h.op("AUTHENTICATE "+mech), err)
	}
	tag := h.nextTag()
	line := tag + " AUTHENTICATE " + mech
	pending := ir
	if h.has("SASL-IR") && ir != nil {
		enc := base64.StdEncoding.EncodeToString(ir)
		if enc == "" {
			enc = "=" // RFC 4959 section 3: an empty initial response
		}
		if err := h.write(line+" "+enc+"\r\n", line+" ***"); err != nil {
			return h.ioErr("AUTHENTICATE", err)
		}
		pending = nil
	} else if err := h.write(line+"\r\n", line); err != nil {
		return h.ioErr("AUTHENTICATE", err)
	}
	for rounds := 0; ; rounds++ {
		r, err := h.readResponse()
		if err != nil {
			return h.ioErr("AUTHENTICATE", err)
		}
		switch {
		case r.tag == tag:
			if err := h.statusErr("AUTHENTICATE "+mech, r, errkind.Auth); err != nil {
				return err
			}
			if r.code == "CAPABILITY" {
				h.caps, _ = parseCaps(r.arg)
			} else {
				h.caps = nil
			}
			return nil
		case r.tag == "*":
			if r.kind == "CAPABILITY" {
				h.caps, _ = parseCaps(r.text)
			}
			continue
		case r.tag != "+":
			return errkind.Permanent(errkind.Protocol, h.op("AUTHENTICATE"), "response with unknown tag %q", clip(r.tag))
		case rounds > 10:
			return errkind.Permanent(errkind.Protocol, h.op("AUTHENTICATE"), "too many SASL challenges")
		}
		var resp []byte
		if pending != nil {
			resp, pending = pending, nil
		} else {
			chal, err := base64.StdEncoding.DecodeString(r.text)
			if err != nil {
				return errkind.Permanent(errkind.Protocol, h.op("AUTHENTICATE"), "challenge is not base64")
			}
			if resp, err = c.Next(chal); err != nil {
				// RFC 3501 section 6.2.2: "*" cancels the exchange.
				h.write("*\r\n", "*")
				return errkind.WrapPermanent(errkind.Auth, h.op("AUTHENTICATE "+mech), err)
			}
		}
		if err := h.write(base64.StdEncoding.EncodeToString(resp)+"\r\n", "***"); err != nil {
			return h.ioErr("AUTHENTICATE", err)
		}
	}
}

// xoauth2Client is Google's and Microsoft's XOAUTH2 SASL mechanism: one
// message with the user and a bearer token; on failure the server sends a
// JSON error as a challenge, which is answered with an empty response.
type xoauth2Client struct{ user, token string }

func (c xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + c.user + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
}

func (c xoauth2Client) Next([]byte) ([]byte, error) { return []byte{}, nil }

// compress negotiates COMPRESS=DEFLATE (RFC 4978) after authentication.
func (h *handshake) compress() (bool, error) {
	mode := strings.ToLower(h.opts.Compress)
	if mode == "off" {
		return false, nil
	}
	if !h.has("COMPRESS=DEFLATE") {
		if mode == "on" {
			return false, errkind.Permanent(errkind.Protocol, h.op("COMPRESS"),
				"server does not offer COMPRESS=DEFLATE and compress: on requires it (use compress: auto)")
		}
		return false, nil
	}
	r, err := h.command("COMPRESS DEFLATE", "COMPRESS DEFLATE")
	if err != nil {
		return false, err
	}
	if r.kind != "OK" {
		if mode == "on" {
			return false, h.statusErr("COMPRESS", r, errkind.Protocol)
		}
		// RFC 4978 section 3: NO when compression is already active or
		// not available now: carry on uncompressed.
		h.log.Warn("IMAP server refused COMPRESS DEFLATE; continuing uncompressed", "server", h.opts.Addr, "reply", clip(r.text))
		return false, nil
	}
	return true, nil
}
