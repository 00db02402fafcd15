// Package imap is linkctl's IMAP client for pulling mail over a slow or
// flaky link: a small interface of ours (Dial, Client, Watch) on
// github.com/emersion/go-imap/v2 (pinned at v2.0.0-beta.8 in go.mod).
//
// A pull runs like this (fetch.IMAPSource drives it):
//
//	cl, err := imap.Dial(ctx, opts)          // TCP, TLS, login, COMPRESS (our handshake)
//	sel, list, err := cl.SelectList(ctx, "INBOX")   // SELECT + UID FETCH 1:* (UID RFC822.SIZE FLAGS), one round trip
//	cl.Fetch(ctx, uids, fn)                  // UID FETCH uids (UID BODY.PEEK[]), each message streamed to fn
//	cl.Commit(ctx, imap.Commit{Delete: uids}) // UID STORE +FLAGS.SILENT (\Deleted), UID EXPUNGE
//	                                         // (only with UIDPLUS, RFC 4315), LOGOUT: pipelined, one round trip
//
// # Why the login is ours
//
// COMPRESS=DEFLATE (RFC 4978) is the biggest saving a slow link can get,
// and servers offer it only after login. go-imap v2 cannot layer it: it
// reads the connection ahead from a goroutine of its own, so once it owns
// the connection there is no moment at which the stream could be swapped
// for a compressed one, and it has no way to send COMPRESS at all. So the
// not-authenticated state is done here, below the library, on the raw
// connection: read the greeting, CAPABILITY, STARTTLS (RFC 3501 section
// 6.2.1: then a new reader on the TLS conn, nothing buffered before the
// handshake kept, capabilities asked again), LOGIN or AUTHENTICATE (PLAIN,
// XOAUTH2, OAUTHBEARER through go-sasl, with SASL-IR when offered), and,
// when the server offers it after login, COMPRESS DEFLATE. Then the
// connection is handed to imapclient.New through a wrapper that
//
//   - first yields a synthetic greeting, "* PREAUTH [CAPABILITY ...]",
//     carrying the capabilities the server announced after login, so that
//     the library starts in the authenticated state and sends nothing of
//     its own;
//   - then yields the server's stream, starting with whatever octets the
//     handshake had already buffered, through a raw-deflate (RFC 1951)
//     reader when COMPRESS is on;
//   - writes through a raw-deflate writer that is flushed (a sync flush)
//     after every write, so that each command reaches the server whole,
//     as RFC 4978 section 4 asks. This interoperates with Dovecot's
//     imap_zlib, which does the same on its side.
//
// The handshake's parser (parse.go) reads only single lines of bounded
// length, skips small literals, and is fuzzed.
//
// # Deadlines
//
// go-imap sets fixed deadlines of its own (30 s per response, 5 minutes
// per literal: a 2 MB message at 56 kbit/s would fail) and none while a
// reply has not started. They never reach the socket: the conn it gets
// ignores SetDeadline. Instead the conn right on the TCP connection (below
// TLS and deflate, so it also counts the octets that really cross the
// link) gives every write, and every read while an answer is due, an
// inactivity deadline (Options.Timeout): a transfer that keeps moving is
// never cut, a silent server is noticed after Timeout, and the session is
// then closed at once (go-imap would retry the timed-out read several
// times). Between commands, during IDLE, and while the caller's callback
// delivers a message locally, reads wait without a deadline, because the
// library always has a read pending and the server owes nothing; the
// callback's own reads of the message are bounded. When the context of an
// operation ends (cancelled, or past the deadline the fetch engine sets on
// a session) the connection is closed at once, which unblocks everything.
//
// # Bounds on what a server says
//
// Memory follows linkctl's bounds, never a server's claims. A listing
// (UID FETCH 1:*) stops at Options.MaxMessages responses
// (DefaultMaxMessages) with a protocol error naming the EXISTS the server
// announced; nothing is allocated ahead by that count. A tap on the
// decompressed stream after login (tap.go) counts the untagged responses
// of each operation: beyond those it asked for plus DefaultMaxUnsolicited
// the session is dropped with a temporary protocol error naming the
// flood, since a server that never stops talking never trips the
// inactivity timeout. The login counts the same way. The tap also bounds a
// response line (maxResponseLine) and the literals in one response.
//
// go-imap reads a literal through a LimitReader: a connection cut in the
// middle of a message looks like the message's normal end. Fetch checks
// every literal against its announced size, so a truncated message fails
// (io.ErrUnexpectedEOF) instead of being delivered and then deleted.
// FetchLimited adds a ceiling per UID (the fetch engine derives it from
// the listed RFC822.SIZE, generously): a literal announced above it is
// refused before an octet of it is read and the session dropped, so a
// server cannot make a budget-admitted message cost gigabytes.
//
// # Aborting
//
// go-imap's reader hands each FETCH response out and waits until it has
// been consumed (its literal read, its items taken); imapclient's Close
// waits for the reader. So a response handed to a goroutine of ours that
// nobody serves wedges the whole session, Close and cancellation included
// (issue 15: two UID-less bodies did it). The rule here: no goroutine of
// ours waits to hand a response over once its Fetch has stopped or the
// session is being torn down; each selects on a stop channel (closed when
// Fetch stops taking messages) and on the client's abort channel (closed
// by Close and when an operation's context ends), and then discards what
// it holds itself. An abort closes the wire first (every read fails once
// what go-imap buffered is consumed), then the client. The one wait for
// go-imap's reader left, after a literal read failed, is bounded by
// abortGrace.
//
// # Fetching
//
// UID FETCH asks for UID and BODY.PEEK[] (PEEK: \Seen stays unset) of up to
// a batch of messages in one command. go-imap routes a FETCH response to
// the command only when the UID precedes the literal; a server may send
// BODY[] first, and go-imap then passes the response to the unilateral
// handler, which passes Fetch only responses that carry a body (at most
// one is ever pending: the reader waits for its literal) and drops the
// rest (flag updates); Fetch spools the body until the UID arrives. Each
// body is delivered only under a UID that was asked for. Bodies are
// streamed with CRLF turned into LF.
//
// # Watching
//
// Watch keeps a connection per folder in IDLE (RFC 2177), restarted before
// 29 minutes, or polls with NOOP when IDLE is not offered, and calls back
// when EXISTS says the folder grew. It reconnects with backoff after any
// failure, and returns when its context ends.
//
// Errors are classified with errkind: a refused login is errkind.Auth
// (exit 3); a lost or silent link is a temporary errkind.Network error;
// a server that answers nonsense is errkind.Protocol; NO answers are
// errkind.Refused, temporary for the RFC 5530 codes that say so.
// Transcripts of the whole session go to Options.Logger at logx.LevelTrace:
// the login with the password and SASL data replaced by ***, then every
// command and response after it (the tap), with each literal shown as
// "{n octets}", never its contents. An [ALERT] response code is logged at
// Warn, at login and after (RFC 3501 section 7.1: it must reach the user).
package imap
