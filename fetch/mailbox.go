package fetch

import (
	"context"
	"io"
)

// Message is one message as a server lists it.
type Message struct {
	// UID is the server's stable identifier for the message: the POP3 UIDL
	// (RFC 1939 section 7) or the IMAP UID as a decimal string. The
	// seen-store is keyed by Mailbox.Key() and UID.
	UID string
	// Num is the protocol's handle for this session: the POP3 message
	// number, or the IMAP UID again. Only the Mailbox interprets it.
	Num uint32
	// Size is the size the server announced (POP3 LIST, IMAP RFC822.SIZE).
	// Servers lie; it is used for limits and progress, never trusted for
	// buffer sizes.
	Size int64
	// Skip says the message is on the server but not to be fetched (IMAP
	// unseen: true, and the message is \Seen). It is still listed so that
	// its seen-store record is kept: dropping it would fetch the message
	// again once it is marked unread. A delivered one is still deleted
	// (or kept) as the account says.
	Skip bool
}

// Mailbox is one logged-in session with one mailbox: a POP3 maildrop or an
// IMAP folder. The fetch engine drives it in this order:
//
//	List -> Retrieve(the unseen) -> [deliver, record durably] -> Delete(the recorded) -> Close(true)
//
// Implementations live beside the protocol clients (source_pop3.go,
// source_imap.go) so that the protocol packages stay independent of fetch.
// A Mailbox is used by one goroutine at a time.
type Mailbox interface {
	// Key identifies the mailbox in the seen-store: protocol, server, user,
	// and for IMAP the folder and its UIDVALIDITY (RFC 3501 section 2.3.1.1),
	// so that a changed UIDVALIDITY starts a fresh set of UIDs.
	Key() string
	// List returns every message in the mailbox in server order.
	List(ctx context.Context) ([]Message, error)
	// Retrieve fetches msgs in the given order, pipelined where the
	// protocol allows, and calls fn once per message, in order, with a
	// reader of the message's bytes: the message as the server stored it,
	// transfer framing removed (POP3 dot-stuffing, IMAP literals), line
	// endings normalised to LF. The reader is valid only until fn returns;
	// fn must consume it or return an error. An error from fn stops the
	// retrieval and is returned. Retrieve never marks anything for deletion
	// and must not set the IMAP \Seen flag (BODY.PEEK).
	Retrieve(ctx context.Context, msgs []Message, fn func(Message, io.Reader) error) error
	// Delete marks msgs for deletion. POP3 commits at QUIT (RFC 1939
	// section 6); IMAP stores \Deleted and expunges at Close.
	Delete(ctx context.Context, msgs []Message) error
	// Close ends the session. With commit, deletions take effect (POP3
	// QUIT, IMAP UID EXPUNGE); without, they are rolled back where the
	// protocol can (POP3: the connection is dropped without QUIT).
	Close(ctx context.Context, commit bool) error
}
