// Package tlsprobe fetches the certificate a mail server presents, for
// `linkctl pin`: users pin a server (tls_pin) or find out why it is not
// trusted without openssl s_client.
//
// The flow of [Probe]: dial TCP; for implicit TLS shake hands at once; for
// STARTTLS speak just enough of the protocol to ask for TLS (POP3: greeting,
// CAPA, STLS with the POP3 client; SMTP and ETRN: greeting, EHLO, STARTTLS
// with the ESMTP client; IMAP: greeting, STARTTLS, written here in a few
// lines as RFC 3501 section 6.2.1 describes it); then the handshake, which
// accepts any certificate so that an untrusted one can still be shown. Its
// chain is then verified apart, against the system roots or a given pool,
// and the outcome reported, never enforced. Nothing is ever sent after the
// handshake: no login, no password.
package tlsprobe

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/linkctl/linkctl/fetch/pop3"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/esmtp"
	"github.com/linkctl/linkctl/internal/netconn"
)

// Options says which server to probe and how.
type Options struct {
	Addr       string          // host:port
	Proto      string          // pop3 | imap | smtp | etrn (etrn is smtp)
	TLS        netconn.TLSMode // implicit or starttls
	ServerName string          // SNI and the name verified; default: the host of Addr
	Roots      *x509.CertPool  // verify against these (a ca_file); nil: system roots
	Helo       string          // EHLO name for smtp/etrn (default "localhost")
	Timeout    time.Duration   // per read/write and the dial (0: netconn.DefaultTimeout)
}

// Result is what the server presented.
type Result struct {
	Addr    string
	Chain   []*x509.Certificate // the leaf first, as sent
	Pin     netconn.Pin         // of the leaf's public key
	Version uint16              // TLS version negotiated
	// VerifyErr is nil when the chain verifies (roots, name, validity)
	// against Options.Roots or the system roots.
	VerifyErr error
}

// Probe connects to the server and returns its certificate chain.
func Probe(ctx context.Context, o Options) (*Result, error) {
	if o.Timeout <= 0 {
		o.Timeout = netconn.DefaultTimeout
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, errkind.WrapPermanent(errkind.Usage, "", fmt.Errorf("server %q: %w", o.Addr, err))
	}
	if o.ServerName == "" {
		o.ServerName = host
	}
	var state tls.ConnectionState
	seen := false
	cfg := &tls.Config{
		ServerName: o.ServerName, MinVersion: tls.VersionTLS12,
		// Accept whatever is presented so that it can be shown; the chain
		// is verified below, for the report only.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			state, seen = cs, true
			return nil
		},
	}
	raw, err := netconn.Dial(ctx, o.Addr, netconn.TLSNone, nil, o.Timeout)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	stop := netconn.CloseOnDone(ctx, raw)
	defer stop()
	conn := netconn.Idle(raw, o.Timeout)

	switch o.TLS {
	case netconn.TLSImplicit:
		_, err = netconn.Handshake(ctx, conn, cfg, o.Timeout)
	case netconn.TLSStartTLS:
		err = startTLS(ctx, conn, o, cfg)
	default:
		return nil, errkind.Permanent(errkind.Usage, "", "tls %q: expected implicit or starttls (a plaintext server has no certificate)", o.TLS)
	}
	if err != nil {
		return nil, err
	}
	if !seen || len(state.PeerCertificates) == 0 {
		return nil, errkind.Permanent(errkind.Protocol, o.Addr, "the server presented no certificate")
	}
	r := &Result{Addr: o.Addr, Chain: state.PeerCertificates, Pin: netconn.PinOf(state.PeerCertificates[0]), Version: state.Version}
	inter := x509.NewCertPool()
	for _, c := range state.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, r.VerifyErr = state.PeerCertificates[0].Verify(x509.VerifyOptions{
		DNSName: o.ServerName, Roots: o.Roots, Intermediates: inter,
	})
	return r, nil
}

// startTLS speaks the protocol up to the TLS handshake.
func startTLS(ctx context.Context, conn net.Conn, o Options, cfg *tls.Config) error {
	switch o.Proto {
	case "pop3":
		c, err := pop3.New(conn, pop3.Options{Timeout: o.Timeout, Server: o.Addr})
		if err != nil {
			return err
		}
		if _, err := c.Capa(); err != nil {
			return err
		}
		// RFC 2595 section 4: STLS, then the handshake.
		return c.StartTLS(cfg)
	case "smtp", "etrn":
		c, err := esmtp.NewClient(conn, esmtp.ClientOptions{Name: o.Proto, Server: o.Addr, Timeout: o.Timeout})
		if err != nil {
			return err
		}
		helo := o.Helo
		if helo == "" {
			helo = "localhost"
		}
		if err := c.Hello(helo); err != nil {
			return err
		}
		// RFC 3207 section 4.
		return c.StartTLS(ctx, cfg)
	case "imap":
		return imapStartTLS(ctx, conn, o, cfg)
	}
	return errkind.Permanent(errkind.Usage, "", "proto %q: expected pop3, imap, smtp or etrn", o.Proto)
}

// maxIMAPLines bounds what a server may send before its STARTTLS answer.
const maxIMAPLines = 100

// imapStartTLS reads the greeting, sends STARTTLS and waits for its tagged
// OK (RFC 3501 section 6.2.1), reading at most maxIMAPLines lines of at
// most 8 KiB each; then the handshake, on the bare connection: bytes the
// server sent after the OK are refused, as in the IMAP client.
func imapStartTLS(ctx context.Context, conn net.Conn, o Options, cfg *tls.Config) error {
	br := bufio.NewReaderSize(conn, 8192)
	line := func() (string, error) {
		l, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", errkind.Permanent(errkind.Protocol, "imap "+o.Addr, "line longer than 8 KiB")
		}
		if err != nil {
			return "", errkind.WrapTemporary(errkind.Network, "imap "+o.Addr, err)
		}
		return strings.TrimRight(string(l), "\r\n"), nil
	}
	greet, err := line()
	if err != nil {
		return err
	}
	if !strings.HasPrefix(strings.ToUpper(greet), "* OK") {
		return errkind.Permanent(errkind.Protocol, "imap "+o.Addr, "greeting %q (expected * OK)", clip(greet))
	}
	if _, err := conn.Write([]byte("P1 STARTTLS\r\n")); err != nil {
		return errkind.WrapTemporary(errkind.Network, "imap "+o.Addr, err)
	}
	for i := 0; ; i++ {
		if i == maxIMAPLines {
			return errkind.Permanent(errkind.Protocol, "imap "+o.Addr, "no answer to STARTTLS after %d lines", maxIMAPLines)
		}
		l, err := line()
		if err != nil {
			return err
		}
		tag, rest, _ := strings.Cut(l, " ")
		if tag != "P1" {
			continue // untagged data
		}
		if !strings.HasPrefix(strings.ToUpper(rest), "OK") {
			return errkind.Permanent(errkind.Protocol, "imap "+o.Addr, "STARTTLS refused: %q", clip(l))
		}
		break
	}
	if br.Buffered() > 0 {
		return errkind.Permanent(errkind.Protocol, "imap "+o.Addr, "server sent data after its STARTTLS OK, before the handshake")
	}
	_, err = netconn.Handshake(ctx, conn, cfg, o.Timeout)
	return err
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
