package fetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/linkctl/linkctl/fetch/pop3"
	"github.com/linkctl/linkctl/internal/authmech"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
)

// POP3Source opens POP3 maildrops as Mailboxes: it dials, secures the
// session (implicit TLS, or STLS which must then be offered: no
// downgrade), logs in, and hands the session to the engine.
type POP3Source struct {
	Addr      string          // host:port, resolved by the config (which alone knows the default ports)
	TLS       netconn.TLSMode // "" means starttls: secure by default
	TLSConfig *tls.Config     // nil: system roots, ServerName from Addr
	User      string
	// Password returns the password or OAuth token; it is asked for only
	// when needed, at login.
	Password func(ctx context.Context) (string, error)
	// Auth is how to log in, as the config validated it ("" means auto).
	// auto uses SASL PLAIN when the server lists it, USER/PASS otherwise;
	// APOP only when asked for; external means PreAuth. A value outside
	// authmech.All is an internal error.
	Auth    authmech.Mech
	Timeout time.Duration // inactivity timeout (netconn.DefaultTimeout when 0)
	Window  int           // pipelining window (pop3.DefaultWindow when 0)
	// MaxMessages bounds the maildrop's listing (pop3.DefaultMaxMessages
	// when zero): beyond it, a protocol error naming the server's claim.
	MaxMessages int
	Logger      *slog.Logger
	// Dial, when set, replaces the TCP dial (tests, tunnels, plugins). It
	// returns a plaintext conn; implicit TLS is still done here.
	Dial func(ctx context.Context) (net.Conn, error)
	// PreAuth: the stream starts logged in (a plugin such as `ssh %h
	// dovecot exec pop3` or `doveadm exec pop3 -u USER` runs the server as
	// the user, fetchmail's "auth ssh"), so no USER/PASS/AUTH is sent.
	// POP3 has no PREAUTH greeting (unlike IMAP, RFC 3501 section 7.1.4):
	// the config says so instead, and Dovecot then sends no greeting at
	// all, so none is read (pop3.Options.NoGreeting). Auth external
	// means the same.
	PreAuth bool
}

// preAuth reports whether the stream arrives logged in.
func (s POP3Source) preAuth() bool { return s.PreAuth || s.Auth == authmech.External }

// Key is the seen-store key: "pop3:user@host:port".
func (s POP3Source) Key() string { return "pop3:" + s.User + "@" + s.Addr }

// needPort refuses an address without a port: the config resolves every
// server to host:port (config.DefaultPort, the one place ports are
// defaulted), so a bare host here is a caller's bug, not a network failure
// to retry.
func needPort(proto, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return errkind.Permanent(errkind.Internal, proto+" "+addr, "address without a port reached the %s source (the config resolves host:port): %v", proto, err)
	}
	return nil
}

// Open connects and logs in. The returned Mailbox also implements, for
// progress, interface{ BytesRead() int64 } and interface{ WireBytes()
// (read, written int64) } (octets on the connection, TLS included) and
// interface{ MessageBytes() int64 } (message octets handed to fn).
func (s POP3Source) Open(ctx context.Context) (Mailbox, error) {
	addr := s.Addr
	if err := needPort("pop3", addr); err != nil {
		return nil, err
	}
	mode := s.TLS
	switch mode {
	case "":
		mode = netconn.TLSStartTLS
	case netconn.TLSStartTLS, netconn.TLSImplicit, netconn.TLSNone:
	default:
		// Never fall through to plaintext on a mode nobody checked; the
		// config validated it, so this is a bug.
		return nil, errkind.Permanent(errkind.Internal, "pop3 "+addr, "tls mode %q reached the POP3 source unvalidated (expected starttls, implicit or none)", mode)
	}
	if s.User == "" && !s.preAuth() {
		return nil, errkind.Permanent(errkind.Usage, "pop3 "+addr, "no user configured")
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var conn net.Conn
	var err error
	if s.Dial != nil {
		conn, err = s.Dial(ctx)
		if err != nil {
			return nil, errkind.WrapTemporary(errkind.Network, "pop3 "+addr+": cannot connect", err)
		}
	} else {
		conn, err = netconn.Dial(ctx, addr, netconn.TLSNone, nil, s.Timeout)
		if err != nil {
			return nil, err
		}
	}
	tlsCfg := netconn.TLSConfig(s.TLSConfig, addr)
	if mode == netconn.TLSImplicit {
		tc, err := netconn.Handshake(ctx, conn, tlsCfg, s.Timeout)
		if err != nil {
			return nil, fmt.Errorf("pop3 %s: %w", addr, err)
		}
		conn = tc
	}
	raw := netconn.Idle(conn, s.Timeout)
	stop := netconn.CloseOnDone(ctx, raw)
	defer stop()

	c, err := pop3.New(raw, pop3.Options{Timeout: s.Timeout, Window: s.Window, Server: addr, Logger: log, NoGreeting: s.preAuth(),
		MaxMessages: s.MaxMessages})
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	mb := &pop3Mailbox{c: c, raw: raw, key: s.Key(), addr: addr, log: log}
	if err := s.login(ctx, c, mode, tlsCfg); err != nil {
		c.Close()
		return nil, ctxErr(ctx, err)
	}
	return mb, nil
}

func (s POP3Source) login(ctx context.Context, c *pop3.Client, mode netconn.TLSMode, tlsCfg *tls.Config) error {
	caps, err := c.Capa()
	if err != nil {
		return err
	}
	if mode == netconn.TLSStartTLS {
		// StartTLS refuses, before sending anything, when STLS is not
		// listed (RFC 2595 section 4): no login goes out in plaintext.
		if err := c.StartTLS(tlsCfg); err != nil {
			return err
		}
		// RFC 2595 section 4: capabilities learnt before TLS are void.
		if caps, err = c.Capa(); err != nil {
			return err
		}
	}
	if s.preAuth() {
		return nil // the CAPA above was already the logged-in one
	}
	if s.Password == nil {
		return errkind.Permanent(errkind.Usage, "pop3 "+s.Addr, "no password configured for %s", s.User)
	}
	secret, err := s.Password(ctx)
	if err != nil {
		return fmt.Errorf("pop3 %s: cannot get the password for %s: %w", s.Addr, s.User, err)
	}
	mech := s.Auth
	if mech == "" || mech == authmech.Auto {
		mech = authmech.Password
		if caps.HasSASL("PLAIN") {
			mech = authmech.Plain // one round trip instead of two
		}
	}
	switch mech {
	case authmech.Password:
		err = c.Login(s.User, secret)
	case authmech.APOP:
		err = c.APOP(s.User, secret)
	case authmech.Plain:
		err = c.Auth(pop3.PlainAuth(s.User, secret), true)
	case authmech.Login:
		err = c.Auth(pop3.LoginAuth(s.User, secret), true)
	case authmech.XOAuth2:
		err = c.Auth(pop3.XOAuth2Auth(s.User, secret), true)
	case authmech.OAuthBearer:
		err = c.Auth(pop3.OAuthBearerAuth(s.User, secret), true)
	default:
		// The config parsed auth into authmech.All, and external returned
		// above (preAuth): any other value is a bug, not the user's.
		return errkind.Permanent(errkind.Internal, "pop3 "+s.Addr, "auth %q reached the POP3 login (expected auto, password, apop, plain, login, xoauth2 or oauthbearer)", s.Auth)
	}
	if err != nil {
		return oauthRefused("pop3", s.Addr, s.User, mech, err)
	}
	// RFC 2449 section 5: the capabilities may change after login
	// (PIPELINING, for one, is often announced only then). When the
	// server pipelines already, the CAPA goes out with List's commands.
	return c.RefreshCapa()
}

// ctxErr reports a cancelled context as the cause instead of the "use of
// closed connection" its closing of the conn produced.
func ctxErr(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	return errkind.WrapTemporary(errkind.Network, "pop3", fmt.Errorf("%w (%v)", context.Cause(ctx), err))
}

// pop3Mailbox is an open POP3 session as a fetch.Mailbox.
type pop3Mailbox struct {
	c    *pop3.Client
	raw  net.Conn
	key  string
	addr string
	log  *slog.Logger

	msgBytes atomic.Int64 // message octets handed to the engine
	pending  []uint32     // marked by Delete, sent with the QUIT
	closed   bool
}

func (m *pop3Mailbox) Key() string { return m.key }

// BytesRead returns the octets read from the connection so far.
func (m *pop3Mailbox) BytesRead() int64 { return m.c.BytesRead() }

// WireBytes returns the octets read and written on the connection so far,
// as the IMAP mailbox does.
func (m *pop3Mailbox) WireBytes() (read, written int64) {
	return m.c.BytesRead(), m.c.BytesWritten()
}

// MessageBytes returns the message octets (LF line ends) handed to fn so far.
func (m *pop3Mailbox) MessageBytes() int64 { return m.msgBytes.Load() }

func (m *pop3Mailbox) List(ctx context.Context) ([]Message, error) {
	stop := netconn.CloseOnDone(ctx, m.raw)
	defer stop()
	msgs, err := m.c.Scan()
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	out := make([]Message, len(msgs))
	for i, x := range msgs {
		out[i] = Message{UID: x.UID, Num: x.Num, Size: x.Size}
	}
	return out, nil
}

func (m *pop3Mailbox) Retrieve(ctx context.Context, msgs []Message, fn func(Message, io.Reader) error) error {
	stop := netconn.CloseOnDone(ctx, m.raw)
	defer stop()
	nums := make([]uint32, len(msgs))
	limits := make([]int64, len(msgs))
	for i, x := range msgs {
		nums[i] = x.Num
		limits[i] = retrLimit(x.Size)
	}
	err := m.c.RetrLimited(nums, limits, func(i int, r io.Reader) error {
		return fn(msgs[i], countReader{r, &m.msgBytes})
	})
	return ctxErr(ctx, err)
}

// retrLimit is the most octets accepted for a message LIST called size
// octets long. LF conversion only shrinks a message, but some servers give
// approximate sizes, so the ceiling is generous: it is there to stop a
// server that streams without end, not to police small discrepancies.
func retrLimit(size int64) int64 {
	const slack = 1 << 20
	if size < 0 || size > 1<<40 {
		return 0 // no sane ceiling to derive
	}
	return 2*size + slack
}

type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Delete only records msgs: a POP3 DELE takes effect at QUIT and nowhere
// else (RFC 1939 section 6), so the DELEs wait for Close(commit) and go
// out pipelined with the QUIT, saving the link a round trip. Without
// commit they are never sent at all.
func (m *pop3Mailbox) Delete(ctx context.Context, msgs []Message) error {
	if err := m.c.Err(); err != nil {
		return err
	}
	for _, x := range msgs {
		m.pending = append(m.pending, x.Num)
	}
	return nil
}

// Close with commit sends the DELEs and QUIT, which makes them take effect
// (RFC 1939 section 6); without, it drops the connection and nothing is
// deleted. A session that already broke cannot commit: the error says so.
func (m *pop3Mailbox) Close(ctx context.Context, commit bool) error {
	if m.closed {
		return nil
	}
	m.closed = true
	if !commit {
		m.c.Close()
		return nil
	}
	if err := m.c.Err(); err != nil {
		m.c.Close()
		return fmt.Errorf("pop3 %s: deletions not committed, the session had failed: %w", m.addr, err)
	}
	stop := netconn.CloseOnDone(ctx, m.raw)
	defer stop()
	err := m.c.DeleQuit(m.pending)
	if err != nil {
		var se *pop3.ServerError
		if errors.As(err, &se) {
			// RFC 1939 section 6: -ERR at QUIT means some marked
			// messages were not removed; they stay and are seen again.
			return fmt.Errorf("pop3 %s: some deletions failed: %w", m.addr, err)
		}
	}
	return ctxErr(ctx, err)
}
