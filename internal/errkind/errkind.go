// Package errkind classifies linkctl's errors so that every layer can answer
// the two questions a caller asks of a failure: "will trying again later
// help?" (Temporary) and "which exit status does a connection script see?"
// (Kind, numbered as the exit statuses of package internal/exitcode, which
// keep fetchmail's numbers where the meanings overlap).
//
// A protocol client or stage wraps the error it returns with [Wrap] (or
// builds one with [New]) at the point where it knows what went wrong. Code
// further up only adds context with fmt.Errorf("...: %w", err); the kind and
// the temporary flag survive the wrapping and are read back with [KindOf],
// [IsTemporary] and [ExitCode].
//
// Errors that were never classified are classified by their type: a
// *net.DNSError is DNS, other net.Error and io.ErrUnexpectedEOF are Network
// and temporary, context.DeadlineExceeded is a temporary Network error.
package errkind

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/linkctl/linkctl/internal/exitcode"
)

// Kind says what kind of failure an error is. Its numeric value is the
// process exit status that reports it, from the one table in package
// internal/exitcode.
type Kind int

// The kinds, numbered as the exit statuses of internal/exitcode.
const (
	OK         Kind = exitcode.OK         // not an error
	NoMail     Kind = exitcode.NoMail     // nothing to do: no mail was waiting
	Network    Kind = exitcode.Network    // network or socket error, timeouts
	Auth       Kind = exitcode.Auth       // authentication failed
	Protocol   Kind = exitcode.Protocol   // the peer broke the protocol or answered nonsense
	Usage      Kind = exitcode.Usage      // usage or config syntax error
	Permission Kind = exitcode.Permission // config file permissions
	Refused    Kind = exitcode.Refused    // a server refused the request (ETRN 458/459, ...)
	Locked     Kind = exitcode.Locked     // another run holds the lock
	Delivery   Kind = exitcode.Delivery   // local delivery failed
	DNS        Kind = exitcode.DNS        // DNS lookup failed
	FetchLimit Kind = exitcode.FetchLimit // not an error: the fetch stopped at fetchlimit
	Partial    Kind = exitcode.Partial    // some stages failed, others succeeded
	Deferred   Kind = exitcode.Deferred   // outbound mail still deferred after the flush
	Internal   Kind = exitcode.Internal   // a bug or an unexpected local failure
)

var kindNames = map[Kind]string{
	OK: "ok", NoMail: "no mail", Network: "network", Auth: "authentication",
	Protocol: "protocol", Usage: "usage", Permission: "permission", Refused: "refused",
	Locked: "locked", Delivery: "delivery", DNS: "dns", FetchLimit: "fetch limit", Partial: "partial",
	Deferred: "deferred", Internal: "internal",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is a classified error. Op names what was being done ("pop3 RETR 17",
// "etrn mail.example.net"); Err is the cause.
type Error struct {
	Kind Kind
	Temp bool
	Op   string
	Err  error
}

func (e *Error) Error() string {
	switch {
	case e.Op == "":
		return e.Err.Error()
	case e.Err == nil:
		return e.Op
	}
	return e.Op + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed.
func (e *Error) Temporary() bool { return e.Temp }

// Temporary returns an error of kind that may go away by itself (a cut
// link, a 4xx reply, a busy server): the next run tries again.
func Temporary(kind Kind, op, format string, args ...any) error {
	return New(kind, true, op, format, args...)
}

// Permanent returns an error of kind that stays until someone acts (a
// refused password, a config error, a 5xx reply).
func Permanent(kind Kind, op, format string, args ...any) error {
	return New(kind, false, op, format, args...)
}

// WrapTemporary classifies err as a temporary error of kind. A nil err
// stays nil.
func WrapTemporary(kind Kind, op string, err error) error { return Wrap(kind, true, op, err) }

// WrapPermanent classifies err as a permanent error of kind. A nil err
// stays nil.
func WrapPermanent(kind Kind, op string, err error) error { return Wrap(kind, false, op, err) }

// New returns a classified error with a message, temporary or not as temp
// says: for a classification computed at the call (a reply's class, an
// exit status); with a constant, Temporary and Permanent read better.
func New(kind Kind, temp bool, op, format string, args ...any) error {
	return &Error{Kind: kind, Temp: temp, Op: op, Err: fmt.Errorf(format, args...)}
}

// Wrap classifies err, temporary or not as temp says (see New). A nil
// err stays nil.
func Wrap(kind Kind, temp bool, op string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: kind, Temp: temp, Op: op, Err: err}
}

// KindOf returns the kind of the outermost classified error in err's chain,
// or a kind derived from the error's type.
func KindOf(err error) Kind {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return DNS
	}
	if isNetwork(err) {
		return Network
	}
	if errors.Is(err, os.ErrPermission) {
		return Permission
	}
	return Internal
}

// IsTemporary reports whether err is worth retrying later. A classified
// error answers with its own flag (the outermost wins); then an error type
// with a Temporary() bool method that is not a net.Error (go-smtp's
// *SMTPError: 4xx) answers for itself; a DNS NXDOMAIN is permanent, any
// other network trouble temporary; anything else permanent.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Temp
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return !dns.IsNotFound
	}
	if isNetwork(err) {
		return true
	}
	var t interface{ Temporary() bool }
	if errors.As(err, &t) {
		return t.Temporary()
	}
	return false
}

func isNetwork(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}

// ExitCode is the process exit status for err (0 for nil).
func ExitCode(err error) int {
	return int(KindOf(err))
}
