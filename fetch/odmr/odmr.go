package odmr

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/linkctl/linkctl/fetch/deliver"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/esmtp"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/internal/netconn"
)

// Options configure one ODMR pull.
type Options struct {
	Addr      string // relay host:port (366 by default)
	TLS       netconn.TLSMode
	TLSConfig *tls.Config
	Helo      string // our name for EHLO and the reversed greeting
	User      string
	Password  func(ctx context.Context) (string, error)
	Domains   []string // ATRN arguments
	Target    deliver.Target
	Timeout   time.Duration
	Logger    *slog.Logger
	Account   string // name in events
	// Dial overrides the TCP dial (tests, plugins).
	Dial func(ctx context.Context) (net.Conn, error)
}

// Run connects to the relay, authenticates, sends ATRN, and serves the
// reversed session until the relay is done. No mail waiting (453) is not an
// error: the result has NoMail set.
func Run(ctx context.Context, opts Options, sink event.Sink) (Result, error) {
	var conn net.Conn
	var err error
	if opts.Dial != nil {
		conn, err = opts.Dial(ctx)
	} else {
		conn, err = netconn.Dial(ctx, opts.Addr, opts.TLS, opts.TLSConfig, opts.Timeout)
	}
	if err != nil {
		return Result{}, err
	}
	defer conn.Close()
	stop := netconn.CloseOnDone(ctx, conn)
	defer stop()
	return RunConn(ctx, conn, opts, sink)
}

// Result is how an ODMR pull ended.
type Result struct {
	ServeResult
	NoMail bool // the relay answered 453: nothing held for us
}

// RunConn is Run on a connection the caller made.
func RunConn(ctx context.Context, conn net.Conn, opts Options, sink event.Sink) (Result, error) {
	helo := opts.Helo
	if helo == "" {
		helo = "localhost"
	}
	c, err := esmtp.NewClient(conn, esmtp.ClientOptions{Name: "odmr", Server: opts.Addr, Timeout: opts.Timeout, Logger: opts.Logger})
	if err != nil {
		return Result{}, err
	}
	if err := c.Hello(helo); err != nil {
		return Result{}, err
	}
	if opts.TLS == netconn.TLSStartTLS {
		if err := c.StartTLS(ctx, opts.TLSConfig); err != nil {
			return Result{}, err
		}
		if err := c.Hello(helo); err != nil {
			return Result{}, err
		}
	}
	// RFC 2645 section 4.1: the relay must know who we are before it
	// hands over anyone's mail, so AUTH is not optional here.
	if opts.Password == nil || opts.User == "" {
		return Result{}, errkind.Permanent(errkind.Usage, "odmr "+opts.Addr, "ODMR needs a user and a password (RFC 2645 requires AUTH before ATRN)")
	}
	pw, err := opts.Password(ctx)
	if err != nil {
		return Result{}, err
	}
	if err := c.Auth(esmtp.AuthOptions{User: opts.User, Password: pw, AllowPlaintext: opts.TLS == netconn.TLSNone}); err != nil {
		return Result{}, err
	}
	if ok, _ := c.Extension("ATRN"); !ok {
		return Result{}, errkind.Permanent(errkind.Protocol, "odmr "+opts.Addr, "the relay does not offer ATRN (is this its ODMR port, usually 366?)")
	}
	var r esmtp.Reply
	if len(opts.Domains) == 0 {
		// Section 4.2: without an argument the relay releases the mail of
		// every domain the authenticated user may collect.
		r, err = c.Cmd("ATRN", "ATRN")
	} else {
		r, err = c.ATRN(opts.Domains)
	}
	if err != nil {
		return Result{}, err
	}
	switch {
	case r.Code == 453:
		// Section 4.2: "453 You have no mail". Say goodbye normally.
		c.Quit()
		return Result{NoMail: true}, nil
	case r.Code == 450:
		c.Quit()
		return Result{}, errkind.Temporary(errkind.Refused, "odmr "+opts.Addr, "ATRN refused for now: %s", r.String())
	case r.Code != 250:
		c.Quit()
		return Result{}, errkind.New(errkind.Refused, r.Class() == 4, "odmr "+opts.Addr, "ATRN refused: %s", r.String())
	}
	raw, buffered := c.Hijack()
	res, err := Serve(ctx, raw, buffered, ServeOptions{
		Hostname: helo, Target: opts.Target, Timeout: opts.Timeout, Logger: opts.Logger, Sink: sink, Account: opts.Account,
	})
	return Result{ServeResult: res}, err
}
