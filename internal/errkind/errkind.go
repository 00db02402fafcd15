// Package errkind classifies linkctl's errors so that every layer can answer
// the two questions a caller asks of a failure: "will trying again later
// help?" (Temporary) and "which exit status does a connection script see?"
// (Kind, mapped to the numbers of DESIGN.md, which reuse fetchmail's where
// the meanings overlap).
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
)

// Kind says what kind of failure an error is. Its numeric value is the
// process exit status that reports it (DESIGN.md "Exit status").
type Kind int

// The kinds, numbered as the exit statuses of DESIGN.md.
const (
	OK         Kind = 0  // not an error
	NoMail     Kind = 1  // nothing to do: no mail was waiting
	Network    Kind = 2  // network or socket error, timeouts
	Auth       Kind = 3  // authentication failed
	Protocol   Kind = 4  // the peer broke the protocol or answered nonsense
	Usage      Kind = 5  // usage or config syntax error
	Permission Kind = 6  // config file permissions
	Refused    Kind = 7  // a server refused the request (ETRN 458/459, ...)
	Locked     Kind = 8  // another run holds the lock
	Delivery   Kind = 10 // local delivery failed
	DNS        Kind = 11 // DNS lookup failed
	Partial    Kind = 12 // some stages failed, others succeeded
	Internal   Kind = 13 // a bug or an unexpected local failure
	// Deferred: the flush's queue run is over and outbound mail is still
	// deferred (the MTA retries it; a connection script may want to keep
	// the link or dial again). Not a failure of the run's other stages.
	Deferred Kind = 21
)

var kindNames = map[Kind]string{
	OK: "ok", NoMail: "no mail", Network: "network", Auth: "authentication",
	Protocol: "protocol", Usage: "usage", Permission: "permission", Refused: "refused",
	Locked: "locked", Delivery: "delivery", DNS: "dns", Partial: "partial", Internal: "internal",
	Deferred: "deferred",
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

// New returns a classified error with a message.
func New(kind Kind, temp bool, op, format string, args ...any) error {
	return &Error{Kind: kind, Temp: temp, Op: op, Err: fmt.Errorf(format, args...)}
}

// Wrap classifies err. A nil err stays nil.
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
