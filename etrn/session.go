package etrn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
)

// Server is one relay that holds mail for us, and what to ask it.
type Server struct {
	Name      string          // shown in events ("" means Addr as dialled)
	Addr      string          // host:port, resolved by the config (which alone knows the default ports)
	Domains   []string        // ETRN arguments: node, @domain or #queue
	TLS       netconn.TLSMode // "" means starttls
	TLSConfig *tls.Config     // roots, ServerName; nil: system roots, host of Addr
	Helo      string          // EHLO name; "" means our FQDN
	User      string          // AUTH user; "" means no AUTH
	// Password returns the AUTH password when it is needed (read from a
	// file or a command by the caller); never logged.
	Password func(ctx context.Context) (string, error)
	Timeout  time.Duration // per read/write and for the dial (0: netconn.DefaultTimeout)
	// Force sends ETRN even when EHLO does not list it.
	Force bool
}

// label names the relay in events: its Name, else the address dialled.
func (s Server) label() string {
	if s.Name != "" {
		return s.Name
	}
	return s.Addr
}

// DomainResult is the relay's answer for one ETRN argument.
type DomainResult struct {
	Domain  string
	Sent    bool    // ETRN was sent (false: the session failed first, or ETRN not offered)
	Reply   Reply   // the reply, when Sent
	Outcome Outcome // meaningful when Sent
	Reading string  // the reply in plain words
	Err     error   // nil when accepted
}

// ServerResult is what one relay answered.
type ServerResult struct {
	Server  string
	Domains []DomainResult
	Err     error // nil when every domain was accepted
}

// Accepted counts the accepted domains; waiting those with mail started.
func (r ServerResult) Accepted() (accepted, started int) {
	for _, d := range r.Domains {
		if d.Sent && d.Outcome.Accepted() {
			accepted++
			if d.Outcome == Started {
				started++
			}
		}
	}
	return accepted, started
}

// Ask dials srv, asks it to release the mail for each of its domains and
// says goodbye. The connection is closed when ctx ends. trace receives the
// transcript (AUTH redacted); logger may be nil.
func Ask(ctx context.Context, srv Server, trace func(string), logger *slog.Logger) ServerResult {
	addr := srv.Addr
	if _, _, err := net.SplitHostPort(addr); err != nil {
		// The config resolves every relay to host:port (config.DefaultPort,
		// the one place ports are defaulted): a bare host is a caller's bug,
		// not a network failure to retry.
		return failAll(addr, srv, errkind.Permanent(errkind.Internal, "etrn "+addr, "address without a port reached the ETRN stage (the config resolves host:port): %v", err))
	}
	conn, err := netconn.Dial(ctx, addr, tlsMode(srv.TLS), netconn.TLSConfig(srv.TLSConfig, addr), srv.Timeout)
	if err != nil {
		return failAll(addr, srv, err)
	}
	defer conn.Close()
	stop := netconn.CloseOnDone(ctx, conn)
	defer stop()
	res := AskConn(ctx, conn, srv, trace, logger)
	if ctx.Err() != nil && res.Err != nil {
		res.Err = errkind.WrapTemporary(errkind.Network, "etrn "+addr, fmt.Errorf("%w (%v)", context.Cause(ctx), res.Err))
	}
	return res
}

func tlsMode(m netconn.TLSMode) netconn.TLSMode {
	if m == "" {
		return netconn.TLSStartTLS
	}
	return m
}

// AskConn runs the ETRN session on an established connection: greeting,
// EHLO, STARTTLS (unless srv.TLS is implicit or none), EHLO again, AUTH
// when a user is set, one ETRN per domain, QUIT.
func AskConn(ctx context.Context, conn net.Conn, srv Server, trace func(string), logger *slog.Logger) ServerResult {
	addr := srv.Addr
	c, err := NewClient(conn, ClientOptions{Server: addr, Timeout: srv.Timeout, Trace: trace, Logger: logger})
	if err != nil {
		return failAll(addr, srv, err)
	}
	helo := srv.Helo
	if helo == "" {
		helo = FQDN()
	}
	if err := c.Hello(helo); err != nil {
		c.Close()
		return failAll(addr, srv, err)
	}
	mode := tlsMode(srv.TLS)
	if mode == netconn.TLSStartTLS {
		cfg := netconn.TLSConfig(srv.TLSConfig, addr)
		if err := c.StartTLS(ctx, cfg); err != nil {
			c.Close()
			return failAll(addr, srv, err)
		}
		if err := c.Hello(helo); err != nil {
			c.Close()
			return failAll(addr, srv, err)
		}
	}
	if srv.User != "" {
		var pass string
		if srv.Password != nil {
			if pass, err = srv.Password(ctx); err != nil {
				c.Close()
				return failAll(addr, srv, errkind.WrapPermanent(errkind.Auth, "etrn "+addr+": password for "+srv.User, err))
			}
		}
		if err := c.Auth(AuthOptions{User: srv.User, Password: pass, AllowPlaintext: mode == netconn.TLSNone}); err != nil {
			c.Quit()
			return failAll(addr, srv, err)
		}
	}
	// RFC 1985 section 3: a server that supports ETRN lists it in its EHLO
	// reply. Without it, ETRN would at best be answered 500/502.
	if ok, _ := c.Extension("ETRN"); !ok && !srv.Force {
		c.Quit()
		return failAll(addr, srv, errkind.Permanent(errkind.Refused, "etrn "+addr,
			"the server does not offer ETRN (not in its EHLO reply); ETRN not sent (--force sends it anyway)"))
	}
	res := ServerResult{Server: addr}
	var firstErr error
	refused := 0
	for i, d := range srv.Domains {
		r, err := c.ETRN(d)
		if err != nil {
			// The session broke: this domain and the rest were not asked.
			for _, rest := range srv.Domains[i:] {
				res.Domains = append(res.Domains, DomainResult{Domain: rest, Err: err})
			}
			c.Close()
			res.Err = err
			return res
		}
		fam := FamilyOf(c.Greeting().Text(), r)
		out, cerr := ClassifyFor(fam, addr, d, r)
		res.Domains = append(res.Domains, DomainResult{Domain: d, Sent: true, Reply: r, Outcome: out, Reading: fam.Reading(d, r), Err: cerr})
		if cerr != nil {
			refused++
			if firstErr == nil {
				firstErr = cerr
			}
		}
	}
	c.Quit()
	if firstErr != nil {
		res.Err = fmt.Errorf("%d of %d ETRN requests not accepted: %w", refused, len(srv.Domains), firstErr)
	}
	return res
}

func failAll(addr string, srv Server, err error) ServerResult {
	res := ServerResult{Server: addr, Err: err}
	for _, d := range srv.Domains {
		res.Domains = append(res.Domains, DomainResult{Domain: d, Err: err})
	}
	return res
}

// FQDN returns this host's fully qualified name for EHLO (RFC 5321 section
// 4.1.1.1): the host name when it has a dot, else the first dotted alias
// of it in /etc/hosts (what `hostname -f` finds on most systems), else the
// short name. It never asks DNS: the link may not be up yet.
func FQDN() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "localhost"
	}
	if strings.Contains(host, ".") {
		return host
	}
	b, _ := os.ReadFile("/etc/hosts")
	for _, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 2 || !slices.Contains(f[1:], host) {
			continue
		}
		for _, name := range f[1:] {
			if strings.HasPrefix(name, host+".") {
				return name
			}
		}
	}
	return host
}

// IsRefused reports whether err is a refusal by the relay (exit 7).
func IsRefused(err error) bool {
	var e *errkind.Error
	return errors.As(err, &e) && e.Kind == errkind.Refused
}
