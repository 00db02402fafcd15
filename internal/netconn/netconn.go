// Package netconn holds what every linkctl protocol client needs around a
// net.Conn and none should write again: dialing with a timeout, the TLS
// policy (implicit, STARTTLS or none; verified certificates; no plaintext to
// a non-loopback server unless the config says so), an inactivity deadline
// on every read and write, and closing the connection when the context ends,
// which is how cancellation reaches a blocked read.
//
// Protocol clients take a net.Conn; stages dial with [Dial], wrap with
// [Idle], and tie the conn to the context with [CloseOnDone]. A server's
// own trust (a tls_pin, a ca_file, pin-only) is a [Trust], whose Config is
// the *tls.Config every dialer takes: the pin is checked inside the
// handshake, before any protocol byte (and so any password) is sent.
package netconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
)

// TLSMode says how a connection is secured.
type TLSMode string

// TLS modes, as written in the config's `tls:` keys.
const (
	TLSStartTLS TLSMode = "starttls" // plaintext, then STARTTLS/STLS; required
	TLSImplicit TLSMode = "implicit" // TLS from the first byte
	TLSNone     TLSMode = "none"     // no TLS: only when written out
)

// ParseTLSMode parses a config or flag value.
func ParseTLSMode(s string) (TLSMode, error) {
	switch m := TLSMode(strings.ToLower(s)); m {
	case TLSStartTLS, TLSImplicit, TLSNone:
		return m, nil
	}
	return "", fmt.Errorf("unknown tls mode %q (expected starttls, implicit or none)", s)
}

// DefaultTimeout is the inactivity timeout when none is configured: long
// enough for a congested modem, short enough that a dead peer is noticed
// within the link window.
const DefaultTimeout = 60 * time.Second

// Dial connects to addr ("host:port") over TCP within timeout (0 means
// DefaultTimeout) and, for TLSImplicit, completes a verified TLS handshake
// with serverName (the host part of addr when empty). Errors are classified:
// DNS failures as errkind.DNS, the rest as temporary errkind.Network, a
// certificate problem as permanent errkind.Network.
func Dial(ctx context.Context, addr string, mode TLSMode, cfg *tls.Config, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, classifyDial(addr, err)
	}
	if mode != TLSImplicit {
		return conn, nil
	}
	tc, err := Handshake(ctx, conn, TLSConfig(cfg, addr), timeout)
	if err != nil {
		return nil, err
	}
	return tc, nil
}

func classifyDial(addr string, err error) error {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return errkind.Wrap(errkind.DNS, !dns.IsNotFound, "cannot resolve "+addr, err)
	}
	return errkind.WrapTemporary(errkind.Network, "cannot connect to "+addr, err)
}

// TLSConfig returns a copy of cfg (or a fresh config) with ServerName set
// from addr when empty and TLS 1.2 as the floor. Certificates are always
// verified unless the caller set InsecureSkipVerify itself.
func TLSConfig(cfg *tls.Config, addr string) *tls.Config {
	var c *tls.Config
	if cfg != nil {
		c = cfg.Clone()
	} else {
		c = &tls.Config{}
	}
	if c.ServerName == "" {
		host := addr
		if h, _, err := net.SplitHostPort(addr); err == nil {
			host = h
		}
		c.ServerName = host
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// Handshake runs a TLS client handshake over conn within timeout. A failed
// certificate check (chain, name or pin) is a permanent error: retrying
// will not fix it.
func Handshake(ctx context.Context, conn net.Conn, cfg *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tc := tls.Client(conn, cfg)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		var cv *tls.CertificateVerificationError
		var rec tls.RecordHeaderError
		var pe *PinError
		if errors.As(err, &pe) {
			// The pin error names the server and both keys already.
			return nil, errkind.WrapPermanent(errkind.Network, "", err)
		}
		if errors.As(err, &cv) || errors.As(err, &rec) {
			return nil, errkind.WrapPermanent(errkind.Network, "TLS handshake with "+cfg.ServerName, err)
		}
		return nil, errkind.WrapTemporary(errkind.Network, "TLS handshake with "+cfg.ServerName, err)
	}
	return tc, nil
}

// IsLoopback reports whether host (a name or an address, without port) is
// the local machine: "localhost", 127.0.0.0/8 or ::1. Plaintext is allowed
// by default only to such hosts (DESIGN.md "Secure by default").
func IsLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// HostPort adds defPort to addr when it has none; IPv6 literals may be
// written with or without brackets.
func HostPort(addr string, defPort int) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), strconv.Itoa(defPort))
}

// CloseOnDone closes c when ctx is done, which unblocks any read or write in
// progress. The returned stop function detaches it (true if it had not fired).
func CloseOnDone(ctx context.Context, c net.Conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() { c.Close() })
}

// IdleConn is a net.Conn that gives every Read and Write its own deadline,
// now plus the idle timeout, and ignores the deadlines that libraries set
// themselves (go-imap's fixed five minutes per literal would fail a 2 MB
// message at modem speed; a slow transfer that keeps moving is fine, a
// stalled one is not).
type IdleConn struct {
	net.Conn
	timeout time.Duration
	read    atomic.Int64 // bytes read, for progress and benchmarks
	written atomic.Int64
}

// Idle wraps c with an inactivity timeout (0 means DefaultTimeout).
func Idle(c net.Conn, timeout time.Duration) *IdleConn {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &IdleConn{Conn: c, timeout: timeout}
}

func (c *IdleConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c *IdleConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// SetDeadline is ignored: the idle timeout governs.
func (c *IdleConn) SetDeadline(time.Time) error { return nil }

// SetReadDeadline is ignored: the idle timeout governs.
func (c *IdleConn) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline is ignored: the idle timeout governs.
func (c *IdleConn) SetWriteDeadline(time.Time) error { return nil }

// BytesRead returns the bytes read so far.
func (c *IdleConn) BytesRead() int64 { return c.read.Load() }

// BytesWritten returns the bytes written so far.
func (c *IdleConn) BytesWritten() int64 { return c.written.Load() }
