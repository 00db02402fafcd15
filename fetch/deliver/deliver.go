// Package deliver hands fetched messages to the local mail system: an SMTP
// or LMTP server (through go-smtp's client), an MDA command, or a Maildir.
// A delivery succeeds only when the local side has taken responsibility for
// the message (SMTP 250 after DATA, LMTP 250 for every recipient, MDA exit
// 0, Maildir file fsynced and renamed into new/); only then may the fetch
// engine record it and delete it from the server (DESIGN.md "No mail is
// lost").
//
// The fetch engine builds one Target from the config ([NewSMTP],
// [NewLMTP], [NewMDA] or [NewMaildir]), calls Deliver for each message
// from as many goroutines as it likes, and Close at the end. A message
// goes through in a stream, never whole in memory:
//
//   - SMTP/LMTP: a pool of sessions kept open across messages; MAIL, RCPT
//     for each recipient, DATA with CRLF and dot-stuffing, delivered on the
//     250 after the final dot (for LMTP: a 250 for every recipient). A
//     guard under go-smtp bounds what the server may send per request
//     (64 KiB: an endless reply fails, memory never follows the server)
//     and discards a reply line cut before its CRLF, so that a cut "250"
//     never confirms a delivery and a cut "550" never refuses one.
//   - MDA: the command's stdin, once per message or once per recipient
//     ("%T"); exit 0 delivers. A run that outlives its timeout (or a
//     cancel) is killed with its process group, and a write to its stdin
//     blocked on it then fails, whatever still holds the pipe.
//   - Maildir: tmp/, fsync, rename into new/, fsync of new/; a full disk
//     is a temporary error naming the Maildir, the tmp/ file removed.
//
// Errors carry errkind.Delivery and say whether a retry may help. Two
// error types tell the engine more: a *SourceError when the message could
// not be read (the mailbox connection broke mid-message; the target made
// sure nothing truncated was delivered), and a *PartialError when some
// recipients took the message and others did not (not delivered: a retry
// duplicates it for the former; linkctl prefers a duplicate to a loss).
// The trace header (Received:) is the fetch engine's to add: it knows the
// server and the account.
//
// The commit point: a context made with [WithCommitGate] carries a gate
// that Deliver calls just before the point past which the local side has
// the message (before the final dot, the rename into new/, the close of
// an MDA's stdin), once per message. The fetch engine uses it to bound
// how many deliveries of an account may be past that point and not yet
// recorded (fetch.ack_window), so that a kill -9 duplicates at most that
// many; everything before the gate still runs in parallel.
//
// SMTP delivery to an MTA that is not on loopback uses STARTTLS (RFC
// 3207), required, with the server's tls_pin and ca_file when set
// (SMTPOptions.TLSConfig).
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
