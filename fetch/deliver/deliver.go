// Package deliver hands fetched messages to the local mail system: an SMTP
// or LMTP server (through go-smtp's client), an MDA command, or a Maildir.
// A delivery succeeds only when the local side has taken responsibility for
// the message (SMTP 250 after DATA, LMTP 250 for every recipient, MDA exit
// 0, Maildir file fsynced and renamed into new/); only then may the fetch
// engine record it and delete it from the server (DESIGN.md "No mail is
// lost").
package deliver

import (
	"context"
	"io"
)

// Envelope is the SMTP envelope of one delivery.
type Envelope struct {
	From string   // reverse path without brackets; "" for the null sender <>
	To   []string // local recipients, at least one
}

// Target delivers messages. Implementations are safe for concurrent use
// (the fetch engine delivers on several sessions at once) and classify their
// errors with package errkind: temporary (4xx, MDA exit 75, disk full) or
// permanent (5xx, other exit codes), kind errkind.Delivery.
//
// The message reader yields the message with LF line endings; a target
// converts to what its protocol needs (CRLF and dot-stuffing for SMTP).
type Target interface {
	Deliver(ctx context.Context, env Envelope, msg io.Reader) error
	// Close ends pooled sessions.
	Close() error
}
