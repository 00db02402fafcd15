// Package fetch pulls mailboxes (POP3 maildrops, IMAP folders) into the
// local mail system without ever losing a message.
//
// [Run] starts every account at once. For each account the flow of one
// session is:
//
//	Open -> List -> classify against the seen-store -> [retrieval slot]
//	     -> Retrieve (pipelined) -> spool each message
//	     -> deliver on several workers at once
//	     -> record the UID (written at once, fsynced soon after) -> Delete -> Close(commit)
//
// The pool: connecting, logging in and listing need no slot, so a server
// that accepts and then stalls holds none and a slow or failing account
// never holds up the others, whatever Options.Parallel is. Only a session
// with something to retrieve waits for one of the Parallel retrieval
// slots (waiters are served in account order); one that has waited
// Options.SlotWait is closed unused, before a server's idle logout, and
// opened again. Push accounts (below) take no slot.
//
// Deadlines: every read of a source has an inactivity timeout, which ends
// a silent server; the session and run deadlines end one that never stops
// talking. A session gets Options.SessionFloor to connect, log in and
// list; once it holds its slot its deadline is set again, to SessionFloor
// + the bytes the server announced for what it will retrieve at
// MinRate/Parallel bytes a second + PerMessage per message, so that an
// honest transfer over a link as slow as MinRate is never cut. The whole
// fetch stage gets RunTimeout, pushed out to the deadline of any
// retrieval that began before it. An expired session or run ends with a
// temporary error naming the account, the deadline and the phase
// (docs/deadlines.md).
//
// Classification: a UID the seen-store has as delivered is not downloaded
// again; unless the account keeps its mail it is deleted now (that
// finishes a run cut after the delivery but before POP3 QUIT committed the
// DELE, RFC 1939 section 6). With keep and keep_days a kept message is
// deleted keep_days after it was first fetched. A message bigger than
// limit stays on the server and is reported; one whose delivery failed
// MaxFailures times is skipped and reported instead of wedging the
// account; fetchlimit caps the messages per run.
//
// Retrieval streams: each message goes into a spool (in memory up to 256
// KiB, an unlinked temp file in the state directory beyond), so memory
// stays flat in message size, and the Mailbox callback returns as soon as
// the bytes are spooled. Workers deliver the spooled messages concurrently
// (deliver.Target is safe for that): a local MTA that fsyncs every message
// then no longer sets the pace of the pull. A message counts as fetched
// only after the target accepted it and its UID was committed to the
// seen-store; only then, after the retrieval is over, are DELEs sent. A
// failed delivery leaves the message on the server for the next run.
//
// Kill -9: a delivery past its commit point (the final dot, the rename
// into new/, the end of an MDA's stdin) is in the local side whatever
// happens to linkctl; until its record is written, a kill duplicates it.
// At most Options.AckWindow deliveries per account (default 1) may be
// between that point and their record at once (deliver.WithCommitGate):
// everything before it still runs on all workers, and the record is one
// write, its fsync shared by the workers and at most Options.RecordSync
// later (recordSync). So a kill
// duplicates at most AckWindow messages per account, whatever the
// number of sessions. A target with work left after its commit point
// that cannot undo it (a Maildir's fsync of new/ after the rename) says
// when the point is passed (deliver.WithCommitted): the record is written
// and the gate released then, so that work runs on all workers; should
// the delivery fail after all, the record is voided (seen.Log.Undo) and
// the message delivered again next run.
//
// UIDs that cannot be trusted: every delivered message is also recorded
// by a digest of its Message-ID and size (messageDigest), taken from the
// header as it was spooled. After an IMAP UIDVALIDITY change the old
// folder's digests are kept as orphans; a POP3 UIDL the server no longer
// lists, or one it now lists with another size (a reused UIDL), leaves
// its digest as an orphan too. A message whose digest the seen-store
// knows (for POP3 also any digest still in use: POP3 has no UIDVALIDITY
// to say the UIDs were renumbered) is recorded as delivered and not
// delivered again; it is counted in AccountResult.Duplicates and logged.
//
// The batch: of what classification leaves, selectBatch picks what one
// session retrieves, in server order or, on a metered link, smallest
// first (Options.Order), at most fetchlimit's remainder and commit_every,
// each message admitted by Options.Admit (the meter's budgets, package
// meter) from its listed size before any byte of it moves, so a budget
// never cuts a message in the middle. A refused message stays on the
// server for another link (AccountResult.Held; Result.AtBudget), and the
// next, bigger one is still asked. The classification and the batch are
// one code path; [Plan] calls it too, on a listing made the same way, so
// that `linkctl plan` says what a run would do without retrieving or
// changing anything (plan.go).
//
// Bytes: AccountResult.Bytes is the size of what was delivered;
// BytesDown and BytesUp are the octets of the account's sessions with its
// server (Mailbox WireBytes), what the account cost the link.
//
// commit_every N ends the session with QUIT after N messages and opens a
// new one, so that a flaky link loses at most N messages' worth of DELEs.
//
// Multidrop (see [Multidrop]): the recipients of each message come from
// the topmost envelope header instead of Account.To; a message naming no
// local recipient, with no default, stays on the server and is reported.
//
// Push accounts (ODMR) have no Mailbox: the relay pushes into the target
// over the turned-around connection; they share the fan-out, results and
// events with the others.
//
// Events: one event.Message per delivered message (Count and Bytes so far
// for the account), event.Note for skipped or failed messages.
package fetch

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/linkctl/linkctl/fetch/deliver"
	"github.com/linkctl/linkctl/fetch/seen"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/internal/spool"
)

// MaxFailures is how many failed deliveries of one message make the
// engine skip it (and report it) instead of trying again every run.
const MaxFailures = 3

// DefaultAckWindow is how many deliveries of one account may be past the
// commit point and not yet recorded at once: what one kill -9 can
// duplicate at most.
const DefaultAckWindow = 1

// maxConsecutiveFailures stops an account's retrieval when the local side
// refuses message after message: downloading the rest over a slow link
// would only waste it.
const maxConsecutiveFailures = 3

// Options configure Run.
type Options struct {
	Accounts []Account
	Parallel int // accounts fetched at once (default 2)
	// StateDir holds the seen-store (StateDir/seen) and the spool files of
	// large messages. Required unless Store and SpoolDir are both set.
	StateDir string
	Store    *seen.Store // an open store; opened from StateDir (and closed) when nil
	SpoolDir string      // default StateDir
	Received bool        // prepend a Received: line to each message
	Hostname string      // the "by" of the Received: line (default os.Hostname)
	Workers  int         // deliveries in flight per account (default 8)
	// RecordSync is how long the record of a delivered message may wait
	// for its fsync while deliveries go on (default DefaultRecordSync;
	// negative: an fsync after every message). The record itself is
	// written at once, so this matters only to a crash of the machine,
	// which may duplicate the messages of the last RecordSync; the
	// records are always fsynced before any DELE.
	RecordSync time.Duration
	// AckWindow is how many deliveries per account may be past their
	// commit point and not yet recorded at once (default DefaultAckWindow):
	// the most one kill -9 duplicates. More lets a local MTA commit
	// several messages at once.
	AckWindow int
	// OrphanDigests is how many digests of delivered messages whose UIDs
	// no longer count each mailbox's record keeps (default
	// seen.DefaultOrphanDigests); set on the Store, also a given one.
	OrphanDigests int
	Logger        *slog.Logger
	Now           func() time.Time // for tests (default time.Now)

	// Deadlines (see the package doc; zero means the default). A session
	// gets SessionFloor to connect, log in and list; once it holds a
	// retrieval slot, SessionFloor + its announced bytes at
	// MinRate/Parallel bytes a second + PerMessage per message. The fetch
	// stage ends after RunTimeout, or later if a retrieval that began
	// before then has a later deadline.
	SessionFloor time.Duration // DefaultSessionFloor
	MinRate      int64         // bytes a second, DefaultMinRate
	PerMessage   time.Duration // DefaultPerMessage
	RunTimeout   time.Duration // DefaultRunTimeout
	// SlotWait is how long a logged-in session waits for a retrieval slot
	// before it is closed unused and opened again (DefaultSlotWait).
	SlotWait time.Duration

	// Order is the order in which a session retrieves its messages
	// (default ServerOrder). A metered link takes SmallestFirst, so that
	// a budget lets through as many messages as it can.
	Order Order
	// Admit, when set, is asked before each message is retrieved, with
	// the size the server listed, in Order: ok takes the message (and
	// counts its size as spent: a budget never cuts a message in the
	// middle); !ok leaves it on the server for a later run on another
	// link, and why says so ("the run budget has 1.2 MB left"). It is
	// shared by all accounts, so it must be safe for concurrent use (the
	// meter's Run.Admit is). Nil admits everything.
	Admit func(size int64) (ok bool, why string)
}

// Order is the order of retrieval within a session.
type Order int

// Orders.
const (
	ServerOrder   Order = iota // as the server lists them
	SmallestFirst              // by listed size, smallest first (ties in server order)
)

// Account is one mailbox to pull.
//
// Several users on one server are several Accounts with the same Server
// and different logins, each with its own To: POP3 (RFC 1939) and IMAP
// (RFC 3501) authenticate one user per connection, so each needs its own
// connection; the engine runs them side by side (Options.Parallel), and
// each has its own seen-store record (the Mailbox key holds the user).
type Account struct {
	Name   string
	Proto  string // "pop3", "imap" or "odmr": the "with" of the Received: line
	Server string // the "from" of the Received: line
	// Open connects and logs in; see POP3Source.Open and IMAPSource.Open.
	Open func(ctx context.Context) (Mailbox, error)
	// Push, instead of Open, is an account whose server pushes its mail
	// into Target itself (ODMR, RFC 2645): the engine runs it in the same
	// fan-out and reports its figures; the seen-store, limits and keep do
	// not apply (the relay deletes what was answered 250).
	Push   func(ctx context.Context, sink event.Sink) (PushResult, error)
	Target deliver.Target
	// To are the envelope recipients. With Multidrop, "*" passes every
	// local recipient of the envelope header through and the other
	// entries are the default recipients (see Multidrop).
	To []string
	// Multidrop, when set, sorts the mailbox among local users by an
	// envelope header.
	Multidrop *Multidrop
	// Keep leaves fetched mail on the server (seen UIDs are skipped);
	// KeepDays > 0 with Keep deletes it that many days after the first fetch.
	Keep     bool
	KeepDays int
	// FetchAll ignores the seen-store when choosing what to download.
	FetchAll bool
	// Limit (bytes, 0 none): bigger messages stay on the server, reported.
	Limit int64
	// FetchLimit (0 none): at most this many messages per run.
	FetchLimit int
	// CommitEvery (0 never): QUIT and reconnect after this many messages.
	CommitEvery int
	Workers     int // overrides Options.Workers
}

// PushResult is what a Push account delivered.
type PushResult struct {
	Messages int   // accepted by the local side
	Bytes    int64 // their size
	Failed   int   // refused by the local side (the server keeps or bounces them)
}

// AccountResult is what happened to one account.
type AccountResult struct {
	Account string
	Fetched int   // delivered and recorded this run
	Bytes   int64 // their size
	// BytesDown and BytesUp are the octets received from and sent to the
	// server over all of this run's sessions (the protocol's octets:
	// greeting, listing, messages, everything but TLS framing) when the
	// source counts them (POP3, IMAP); else BytesDown is the size of
	// what was delivered. This is what the account cost the link.
	BytesDown int64
	BytesUp   int64
	Deleted   int // deletions sent and committed with QUIT/expunge
	Kept      int // already fetched, left on the server (keep)
	Failed    int // delivery attempts that failed this run
	Left      int // left for a later run by fetchlimit or an early stop
	// Duplicates were delivered before under another UID (a UIDVALIDITY
	// change, a reused or renumbered UIDL): recorded, not delivered again.
	Duplicates int
	// AtFetchLimit says fetchlimit stopped the run with mail left on the
	// server (fetchmail's exit 13).
	AtFetchLimit bool
	// Held are the messages Options.Admit refused: left on the server,
	// never deleted, for a run on an unmetered link; HeldWhy is the
	// reason given for the first of them.
	Held     []Message
	HeldWhy  string
	TooBig   []Message
	Poison   []Message // skipped after MaxFailures failed deliveries
	Sessions int
	Err      error
}

// Result is the outcome of a Run, one entry per account in the given order.
type Result struct {
	Accounts []AccountResult
}

// sum adds a figure of every account.
func (r Result) sum(f func(AccountResult) int64) int64 {
	var n int64
	for _, a := range r.Accounts {
		n += f(a)
	}
	return n
}

// anyAccount reports whether f holds for an account.
func (r Result) anyAccount(f func(AccountResult) bool) bool {
	for _, a := range r.Accounts {
		if f(a) {
			return true
		}
	}
	return false
}

// Fetched is the number of messages delivered in all.
func (r Result) Fetched() int {
	return int(r.sum(func(a AccountResult) int64 { return int64(a.Fetched) }))
}

// Bytes is the size of the messages delivered in all.
func (r Result) Bytes() int64 { return r.sum(func(a AccountResult) int64 { return a.Bytes }) }

// NoMail reports a run that went fine and found nothing to fetch
// (exit status 1, errkind.NoMail).
func (r Result) NoMail() bool {
	return !r.anyAccount(func(a AccountResult) bool { return a.Err != nil || a.Fetched > 0 || a.Deleted > 0 })
}

// AtFetchLimit reports whether an account stopped at its fetchlimit with
// mail left on the server.
func (r Result) AtFetchLimit() bool {
	return r.anyAccount(func(a AccountResult) bool { return a.AtFetchLimit })
}

// AtBudget reports whether an account left messages on the server because
// Options.Admit refused them (a budget or the largest message of the link).
func (r Result) AtBudget() bool {
	return r.anyAccount(func(a AccountResult) bool { return len(a.Held) > 0 })
}

// Counts are the figures for metrics.
func (r Result) Counts() map[string]int64 {
	c := map[string]int64{"messages": int64(r.Fetched()), "bytes": r.Bytes()}
	for _, a := range r.Accounts {
		if len(a.Held) > 0 {
			c["held_for_link"] += int64(len(a.Held))
		}
		c["bytes_down"] += a.BytesDown
		c["bytes_up"] += a.BytesUp
		c["deleted"] += int64(a.Deleted)
		c["failed"] += int64(a.Failed)
		c["duplicates_skipped"] += int64(a.Duplicates)
		c["too_big"] += int64(len(a.TooBig))
		c["poison"] += int64(len(a.Poison))
		if a.AtFetchLimit {
			c["fetchlimit_reached"]++
		}
		if a.Err != nil {
			c["account_errors"]++
		}
	}
	return c
}

// AccountCounts are the figures of each account (pipeline.Report.Accounts):
// messages, bytes, bytes_down, bytes_up.
func (r Result) AccountCounts() map[string]map[string]int64 {
	m := make(map[string]map[string]int64, len(r.Accounts))
	for _, a := range r.Accounts {
		c := m[a.Account]
		if c == nil {
			c = map[string]int64{}
			m[a.Account] = c
		}
		c["messages"] += int64(a.Fetched)
		c["bytes"] += a.Bytes
		c["bytes_down"] += a.BytesDown
		c["bytes_up"] += a.BytesUp
	}
	return m
}

// Summary is one line per account: "isp: 3 messages, 41 kB; 1 too big
// (limit) left on the server".
func (r Result) Summary() string {
	var lines []string
	for _, a := range r.Accounts {
		lines = append(lines, a.Summary())
	}
	return strings.Join(lines, "\n")
}

// Summary is one line for the account.
func (a AccountResult) Summary() string {
	var b strings.Builder
	b.WriteString(a.Account + ": ")
	if a.Fetched == 0 {
		b.WriteString("no new mail")
	} else {
		fmt.Fprintf(&b, "%d message%s, %s", a.Fetched, plural(a.Fetched), humanBytes(a.Bytes))
	}
	if a.Deleted > 0 {
		fmt.Fprintf(&b, "; %d deleted", a.Deleted)
	}
	if a.Kept > 0 {
		fmt.Fprintf(&b, "; %d kept", a.Kept)
	}
	if a.Duplicates > 0 {
		fmt.Fprintf(&b, "; %d already delivered under another UID, not delivered again", a.Duplicates)
	}
	if a.Failed > 0 {
		fmt.Fprintf(&b, "; %d deliver%s failed (left on the server)", a.Failed, map[bool]string{true: "y", false: "ies"}[a.Failed == 1])
	}
	if n := len(a.TooBig); n > 0 {
		fmt.Fprintf(&b, "; %d too big, left on the server", n)
	}
	if n := len(a.Held); n > 0 {
		var size int64
		for _, m := range a.Held {
			size += m.Size
		}
		fmt.Fprintf(&b, "; left %d message%s (%s) for an unmetered link: %s", n, plural(n), humanBytes(size), a.HeldWhy)
	}
	if n := len(a.Poison); n > 0 {
		fmt.Fprintf(&b, "; %d skipped after %d failed deliveries (UID %s)", n, MaxFailures, uidList(a.Poison))
	}
	switch {
	case a.AtFetchLimit && a.Err == nil:
		fmt.Fprintf(&b, "; stopped at fetchlimit, %d left for the next run", a.Left)
	case a.Left > 0:
		fmt.Fprintf(&b, "; %d left for the next run", a.Left)
	}
	if a.Err != nil {
		fmt.Fprintf(&b, "; error: %v", a.Err)
	}
	return b.String()
}

func sizeOf(ms []Message) int64 {
	var n int64
	for _, m := range ms {
		n += m.Size
	}
	return n
}

func uidList(ms []Message) string {
	var u []string
	for i, m := range ms {
		if i == 5 {
			u = append(u, "...")
			break
		}
		u = append(u, m.UID)
	}
	return strings.Join(u, ", ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func humanBytes(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%d MB", n/1e6)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%d kB", n/1e3)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Run fetches every account and returns per-account results. The error
// is nil when every account succeeded (check Result.NoMail for "nothing to
// fetch"); otherwise it joins the accounts' errors, classified with the
// kind of the first (authentication, network, delivery...).
func Run(ctx context.Context, opts Options, sink event.Sink) (Result, error) {
	e, err := newEngine(opts)
	if err != nil {
		return Result{}, err
	}
	defer e.close()
	res := Result{Accounts: make([]AccountResult, len(opts.Accounts))}
	// Every account starts at once: connecting, logging in and listing
	// need no slot (see pool), so a stalled server delays nobody.
	e.run = newDeadline(ctx, e.lim.runTimeout, func() error {
		return errkind.Temporary(errkind.Network, "fetch", "run deadline %v exceeded", e.lim.runTimeout)
	})
	defer e.run.stop()
	var wg sync.WaitGroup
	for i, a := range opts.Accounts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.Accounts[i] = e.account(e.run.ctx, i, a, sink.With("", a.Name))
		}()
	}
	wg.Wait()
	return res, res.Err()
}

// Err joins the accounts' errors (nil if none), classified with the kind
// of the first and temporary only if all are.
func (r Result) Err() error {
	var errs []error
	temp := true
	for _, a := range r.Accounts {
		if a.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.Account, a.Err))
			temp = temp && errkind.IsTemporary(a.Err)
		}
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errkind.Wrap(errkind.KindOf(errs[0]), temp, "fetch", errors.Join(errs...))
}

// memSpoolMax is how much of a message is held in memory between its
// retrieval and its delivery; the rest goes to an unlinked file in the
// state directory (internal/spool), so memory stays flat however big a
// message is.
const memSpoolMax = 256 << 10

// headMax bounds the header bytes read for Return-Path, Message-ID and
// the multidrop envelope header.
const headMax = 64 << 10

type engine struct {
	opts     Options
	store    *seen.Store
	ownStore bool
	spoolDir string
	host     string
	log      *slog.Logger
	now      func() time.Time
	lim      limits
	pool     *pool     // the Parallel retrieval slots
	run      *deadline // the fetch stage's deadline
}

func newEngine(opts Options) (*engine, error) {
	e := &engine{opts: opts, store: opts.Store, spoolDir: opts.SpoolDir, host: opts.Hostname, log: opts.Logger, now: opts.Now, lim: newLimits(opts)}
	e.pool = newPool(e.lim.parallel)
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.host == "" {
		e.host, _ = os.Hostname()
	}
	if e.spoolDir == "" {
		e.spoolDir = opts.StateDir
	}
	if e.store == nil {
		if opts.StateDir == "" {
			return nil, errkind.Permanent(errkind.Usage, "fetch", "no state_dir for the seen-store")
		}
		st, err := seen.Open(opts.StateDir)
		if err != nil {
			return nil, err
		}
		e.store, e.ownStore = st, true
	}
	if e.spoolDir == "" {
		e.spoolDir = filepath.Dir(e.store.Dir())
	}
	if opts.OrphanDigests > 0 {
		e.store.SetOrphanLimit(opts.OrphanDigests)
	}
	return e, nil
}

func (e *engine) close() {
	if e.ownStore {
		if err := e.store.Close(); err != nil {
			e.log.Error("seen-store close", "err", err)
		}
	}
}

// accountRun is the state of one account across its sessions.
type accountRun struct {
	a       Account
	index   int // in Options.Accounts: the order of service for slots
	clock   *sessionClock
	res     AccountResult
	sink    event.Sink
	log     *slog.Logger
	budget  int             // messages still allowed by fetchlimit (-1: no limit)
	tried   map[string]bool // UIDs handled in an earlier session of this run
	noted   map[string]bool // UIDs already reported as too big or poison
	lastErr error           // the last delivery failure
}

func (e *engine) account(ctx context.Context, index int, a Account, sink event.Sink) AccountResult {
	r := &accountRun{a: a, index: index, res: AccountResult{Account: a.Name}, sink: sink,
		log: e.log.With("account", a.Name), budget: -1, tried: map[string]bool{}, noted: map[string]bool{}}
	if a.FetchLimit > 0 {
		r.budget = a.FetchLimit
	}
	if a.Push != nil {
		e.push(ctx, r)
		return r.res
	}
	for {
		r.clock = e.newSessionClock(ctx, r)
		more, err := e.session(r.clock.dl.ctx, r)
		r.clock.end()
		switch {
		case errors.Is(err, errReopen):
			continue
		case err != nil && r.clock.dl.expired():
			// Whatever the source made of its cancellation, the deadline
			// is what happened.
			r.log.Debug("session deadline", "source err", err)
			err = r.clock.err()
		case err != nil && e.run.expired():
			r.log.Debug("run deadline", "source err", err)
			err = errkind.WrapTemporary(errkind.Network, "account "+a.Name, context.Cause(ctx))
		}
		if err != nil && ctx.Err() != nil && errkind.KindOf(err) == errkind.Internal {
			// A source that did not classify its cancellation.
			err = errkind.WrapTemporary(errkind.Network, "fetch "+a.Name+" interrupted", fmt.Errorf("%w (%v)", context.Cause(ctx), err))
		}
		if err != nil {
			r.res.Err = err
			r.log.Warn("fetch failed", "err", err)
			break
		}
		if !more {
			break
		}
	}
	return r.res
}

// push runs a Push account (ODMR): one session, the server drives it.
func (e *engine) push(ctx context.Context, r *accountRun) {
	pr, err := r.a.Push(ctx, r.sink)
	r.res.Sessions = 1
	r.res.Fetched, r.res.Bytes, r.res.Failed = pr.Messages, pr.Bytes, pr.Failed
	r.res.BytesDown = pr.Bytes // the relay's SMTP transfer: at least the messages
	if err != nil && ctx.Err() != nil && errkind.KindOf(err) == errkind.Internal {
		err = errkind.WrapTemporary(errkind.Network, "fetch "+r.a.Name+" interrupted", fmt.Errorf("%w (%v)", context.Cause(ctx), err))
	}
	if err != nil {
		r.res.Err = err
		r.log.Warn("fetch failed", "err", err)
	}
}

// session runs one login-to-logout session; more says another session
// should follow (commit_every).
func (e *engine) session(ctx context.Context, r *accountRun) (more bool, err error) {
	a := r.a
	if a.Multidrop == nil && slices.Contains(a.To, "*") {
		return false, errkind.Permanent(errkind.Usage, "fetch "+a.Name, `to: "*" needs multidrop (an envelope header and localdomains)`)
	}
	if a.Open == nil || a.Target == nil {
		return false, errkind.Permanent(errkind.Usage, "fetch "+a.Name, "account has no source or no delivery target")
	}
	mb, err := a.Open(ctx)
	if err != nil {
		return false, err
	}
	r.res.Sessions++
	// Registered before the close below, so it runs after it: the QUIT
	// or LOGOUT counts too.
	defer r.countWire(mb)
	closed := false
	defer func() {
		if !closed {
			mb.Close(context.WithoutCancel(ctx), false)
		}
	}()
	list, err := mb.List(ctx)
	if err != nil {
		return false, err
	}
	log, err := e.store.Mailbox(mb.Key())
	if err != nil {
		return false, err
	}
	_, _, isIMAP := ParseIMAPKey(mb.Key())
	if r.res.Sessions == 1 && isIMAP {
		if err := e.uidValidityChanged(r, mb.Key(), log); err != nil {
			return false, err
		}
	}
	uids := make([]string, len(list))
	for i, m := range list {
		uids[i] = m.UID
	}
	// The server no longer has what it does not list: forget it, so the
	// record stays the size of the mailbox. An empty listing forgets
	// nothing: a server that shows an empty maildrop by mistake (a lock
	// held elsewhere) must not make kept mail look new next time.
	if len(uids) > 0 {
		log.Retain(uids)
	}

	now := e.now()
	var toDelete, candidates []Message
	for _, m := range list {
		ent := log.Get(m.UID)
		v, reused := classify(a, m, ent, isIMAP, r.tried[m.UID], now)
		if reused {
			r.log.Warn("POP3 UIDL reused by the server for another message", "uid", m.UID, "size", m.Size, "recorded_size", ent.Size)
			log.Reused(m.UID)
		}
		switch v {
		case verdictDelete:
			toDelete = append(toDelete, m)
		case verdictKept:
			if !r.noted[m.UID] {
				r.noted[m.UID] = true
				r.res.Kept++
			}
		case verdictPoison:
			if !r.noted[m.UID] {
				r.noted[m.UID] = true
				r.res.Poison = append(r.res.Poison, m)
				r.sink.Emit(event.Event{Type: event.Note, Text: fmt.Sprintf("message UID %s skipped: its delivery failed %d times; it stays on the server", m.UID, ent.Failures)})
			}
		case verdictTooBig:
			if !r.noted[m.UID] {
				r.noted[m.UID] = true
				r.res.TooBig = append(r.res.TooBig, m)
				r.sink.Emit(event.Event{Type: event.Note, Text: fmt.Sprintf("message UID %s (%s) is over the limit of %s; it stays on the server", m.UID, humanBytes(m.Size), humanBytes(a.Limit))})
			}
		case verdictFetch:
			candidates = append(candidates, m)
		}
	}
	batch, held, why, cut := selectBatch(candidates, e.opts.Order, r.budget, a.CommitEvery, e.opts.Admit)
	if cut {
		r.res.AtFetchLimit = true
	}
	for _, m := range held {
		r.tried[m.UID] = true // not asked again in a later session of this run
		r.log.Info("message left on the server for an unmetered link", "uid", m.UID, "size", m.Size, "why", why)
	}
	r.res.Held = append(r.res.Held, held...)
	if r.res.HeldWhy == "" {
		r.res.HeldWhy = why
	}
	if len(held) > 0 {
		r.sink.Emit(event.Event{Type: event.Note, Text: fmt.Sprintf("left %d message%s (%s) on the server for an unmetered link: %s",
			len(r.res.Held), plural(len(r.res.Held)), humanBytes(sizeOf(r.res.Held)), r.res.HeldWhy)})
	}
	// What the session will retrieve is known: wait for a retrieval slot
	// and set the deadline from the announced sizes (see deadline.go).
	if err := r.clock.transfer(ctx, batch); err != nil {
		return false, err
	}
	for _, m := range batch {
		r.tried[m.UID] = true
	}
	r.res.Left = len(candidates) - len(batch) - len(held)

	delivered, pullErr := e.pull(ctx, r, mb, log, batch)
	if r.budget >= 0 {
		r.budget -= len(batch)
	}
	// Whatever happened, make the record of what was delivered durable
	// before any DELE for it can be sent.
	if err := log.Commit(); err != nil {
		return false, err
	}
	if pullErr != nil {
		// The session may be broken mid-pipeline: drop it without QUIT so
		// nothing is deleted now. What was delivered is recorded; the next
		// run deletes it without downloading it again.
		return false, pullErr
	}
	dels := toDelete
	if !a.Keep {
		dels = append(dels, delivered...)
	}
	if len(dels) > 0 {
		sort.Slice(dels, func(i, j int) bool { return dels[i].Num < dels[j].Num })
		if err := mb.Delete(ctx, dels); err != nil {
			return false, err
		}
	}
	closed = true
	if err := mb.Close(ctx, true); err != nil {
		return false, err
	}
	r.res.Deleted += len(dels)
	more = a.CommitEvery > 0 && r.res.Left > 0 && len(delivered) > 0 && r.budget != 0
	if !more && r.res.Failed > 0 && r.res.Err == nil {
		return false, r.lastDeliveryErr()
	}
	return more, nil
}

// verdict is what a run does with one listed message.
type verdict int

const (
	verdictFetch  verdict = iota // new: retrieve, deliver, record
	verdictDelete                // delivered before: delete without downloading
	verdictKept                  // delivered before: left on the server (keep)
	verdictSkip                  // not to fetch (unseen: true and \Seen), or handled earlier this run
	verdictPoison                // its delivery failed MaxFailures times
	verdictTooBig                // over the account's limit
)

// classify is the one decision of what a run does with a listed message,
// given its seen-store entry: the run (session) and `linkctl plan`
// (Plan) both call it, so that a plan says what a run would do. tried
// says an earlier session of this run handled the UID. reused reports a
// POP3 UIDL recorded as delivered that now names a message of another
// size: the caller records that (the run) or only counts it (the plan).
func classify(a Account, m Message, ent seen.Entry, isIMAP, tried bool, now time.Time) (v verdict, reused bool) {
	if !isIMAP && ent.Delivered && ent.Size > 0 && m.Size > 0 && ent.Size != m.Size && !tried {
		// A POP3 UIDL we delivered now names a message of another
		// size: the server reused it (RFC 1939 section 7 forbids
		// that, servers do it). Deleting it unseen could lose mail:
		// fetch it; its digest tells whether it is the old one.
		reused = true
		ent = seen.Entry{}
	}
	switch {
	case tried:
		return verdictSkip, reused
	case ent.Delivered && !a.FetchAll:
		if !a.Keep || (a.KeepDays > 0 && now.Sub(ent.FirstFetched) >= time.Duration(a.KeepDays)*24*time.Hour) {
			return verdictDelete, reused
		}
		return verdictKept, reused
	case m.Skip:
		return verdictSkip, reused
	case ent.Failures >= MaxFailures:
		return verdictPoison, reused
	case a.Limit > 0 && m.Size > a.Limit:
		return verdictTooBig, reused
	}
	return verdictFetch, reused
}

// selectBatch is the part of candidates a session retrieves: in server
// order or smallest first (Options.Order), at most limit messages
// (fetchlimit's remainder, -1: none) and commitEvery (0: all), each
// admitted by admit (nil: all) from its listed size before any byte of it
// is retrieved. A refused message is held on the server for another link,
// with the first reason given; the next (bigger, smallest first) is still
// asked: admit decides, not the order. cut says fetchlimit left messages
// for a later run. Plan applies the same selection.
func selectBatch(candidates []Message, order Order, limit, commitEvery int, admit func(size int64) (bool, string)) (batch, held []Message, why string, cut bool) {
	if order == SmallestFirst {
		candidates = slices.Clone(candidates)
		slices.SortStableFunc(candidates, func(x, y Message) int { return cmp.Compare(x.Size, y.Size) })
	}
	batch = make([]Message, 0, len(candidates))
	for _, m := range candidates {
		if limit >= 0 && len(batch) == limit {
			return batch, held, why, true
		}
		if commitEvery > 0 && len(batch) == commitEvery {
			break
		}
		if admit != nil {
			if ok, w := admit(m.Size); !ok {
				held = append(held, m)
				if why == "" {
					why = w
				}
				continue
			}
		}
		batch = append(batch, m)
	}
	return batch, held, why, false
}

// uidValidityChanged notices an IMAP folder whose UIDVALIDITY is not the
// one recorded before: the server renumbered its messages (RFC 3501
// section 2.3.1.1), so the old UIDs mean nothing now. The digests of what
// was delivered under them are carried into the new record as orphans
// (durably, before the old record is removed), so that the messages still
// in the folder are recognised and not delivered again; the user is told.
func (e *engine) uidValidityChanged(r *accountRun, key string, log *seen.Log) error {
	prefix, now, ok := ParseIMAPKey(key)
	if !ok {
		return nil
	}
	keys, err := e.store.Keys(prefix)
	if err != nil {
		r.log.Warn("seen-store", "err", err)
		return nil
	}
	for _, k := range keys {
		if k == key {
			continue
		}
		_, old, _ := ParseIMAPKey(k)
		oldLog, err := e.store.Mailbox(k)
		if err != nil {
			return err
		}
		ds := oldLog.Digests()
		log.AddOrphans(ds)
		if err := log.Commit(); err != nil {
			return err
		}
		r.sink.Emit(event.Event{Type: event.Note, Text: fmt.Sprintf("the folder's UIDVALIDITY changed from %d to %d: the server renumbered its messages; the %d already delivered are recognised by Message-ID and size and not delivered again", old, now, len(ds))})
		r.log.Warn("IMAP UIDVALIDITY changed", "old", old, "new", now, "digests", len(ds))
		if err := e.store.Remove(k); err != nil {
			r.log.Warn("seen-store", "err", err)
		}
	}
	return nil
}

// pull retrieves batch and delivers it on workers; it returns the messages
// delivered and recorded (Commit still pending for the last ones).
func (e *engine) pull(ctx context.Context, r *accountRun, mb Mailbox, log *seen.Log, batch []Message) ([]Message, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	workers := r.a.Workers
	if workers <= 0 {
		workers = e.opts.Workers
	}
	if workers <= 0 {
		workers = 8
	}
	// Totals for progress: what earlier sessions (commit_every) fetched
	// plus this batch.
	total, totalBytes := r.res.Fetched+len(batch), r.res.Bytes
	for _, m := range batch {
		totalBytes += m.Size
	}
	type job struct {
		m  Message
		sp *spool.Spool
	}
	jobs := make(chan job, workers)
	ackWindow := e.opts.AckWindow
	if ackWindow <= 0 {
		ackWindow = DefaultAckWindow
	}
	ack := make(chan struct{}, ackWindow)
	envHeader := ""
	if r.a.Multidrop != nil {
		envHeader = r.a.Multidrop.Envelope
	}
	_, _, isIMAP := ParseIMAPKey(mb.Key())
	var (
		mu          sync.Mutex
		delivered   []Message
		consecutive int
		failed      int
		stop        atomic.Bool
		recordErr   error
		wg          sync.WaitGroup
	)
	// recordFailed stops the account's retrieval: a record that cannot
	// be made durable must not let more messages be delivered.
	recordFailed := func(err error) {
		mu.Lock()
		if recordErr == nil {
			recordErr = err
		}
		mu.Unlock()
		stop.Store(true)
	}
	rsync := &recordSync{commit: log.Commit, every: e.opts.RecordSync, onErr: recordFailed}
	if rsync.every == 0 {
		rsync.every = DefaultRecordSync
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				info := parseHeadEnv(j.sp.Head(headMax), envHeader)
				size := j.sp.Size()
				digest := messageDigest(info, size)
				// IMAP UIDs are trusted within a UIDVALIDITY: only the
				// orphans count. POP3 has no such guarantee.
				if !r.a.FetchAll && log.KnownDigest(digest, !isIMAP) {
					j.sp.Close()
					log.DeliveredDigest(j.m.UID, e.now(), digest, j.m.Size)
					if cerr := rsync.written(); cerr != nil {
						recordFailed(cerr)
						continue
					}
					mu.Lock()
					delivered = append(delivered, j.m)
					r.res.Duplicates++
					mu.Unlock()
					r.sink.Emit(event.Event{Type: event.Note, Text: fmt.Sprintf("message UID %s was already delivered under another UID (same Message-ID and size): not delivered again", j.m.UID)})
					r.log.Info("already delivered under another UID, skipped", "uid", j.m.UID, "message_id", info.MessageID, "size", size)
					continue
				}
				// The commit gate: at most ackWindow deliveries between
				// their commit point and their record (see the package
				// comment). held is this delivery's token.
				held := false
				gate := func(gctx context.Context) error {
					if held {
						return nil // an MDA run per recipient: one token
					}
					select {
					case ack <- struct{}{}:
						held = true
						return nil
					case <-gctx.Done():
						return context.Cause(gctx)
					}
				}
				release := func() {
					if held {
						held = false
						<-ack
						// Let the delivery woken at the gate send its
						// commit now: this one goes on into a blocking
						// syscall (an fsync), and the woken one would
						// otherwise wait for the runtime to take the
						// processor back from it (measured: about 0.15
						// ms a message, 5% of the rate into Postfix).
						runtime.Gosched()
					}
				}
				// A target with work left after its commit point (a
				// Maildir's fsync of new/) says when the point is passed:
				// the record is written then and the gate released, so
				// that work runs outside the gate, on all workers.
				recorded := false
				committed := func() {
					log.DeliveredDigest(j.m.UID, e.now(), digest, j.m.Size)
					recorded = true
					release()
				}
				dctx := deliver.WithCommitted(deliver.WithCommitGate(ctx, gate), committed)
				err := e.deliverOne(dctx, r, j.m, j.sp, info)
				j.sp.Close()
				if err != nil && recorded {
					// Past the commit point but not made durable: deliver
					// it again next run rather than delete it.
					log.Undo(j.m.UID)
				}
				if err == nil {
					// One write: from here a kill no longer duplicates it.
					if !recorded {
						log.DeliveredDigest(j.m.UID, e.now(), digest, j.m.Size)
					}
					release()
					// Its fsync is shared and may come a little later
					// (see recordSync).
					if cerr := rsync.written(); cerr != nil {
						recordFailed(cerr)
						continue
					}
					mu.Lock()
					delivered = append(delivered, j.m)
					consecutive = 0
					r.res.Fetched++
					r.res.Bytes += size
					count, bytes := r.res.Fetched, r.res.Bytes
					mu.Unlock()
					r.sink.Emit(event.Event{Type: event.Message, Count: count, Total: total, Bytes: bytes, TotalBytes: totalBytes, Text: "UID " + j.m.UID})
					continue
				}
				release()
				if ctx.Err() != nil {
					stop.Store(true)
					continue
				}
				n := 0
				if messageSpecific(err) {
					n = log.Failed(j.m.UID)
				}
				var nr *NoRecipientError
				mu.Lock()
				r.res.Failed++
				failed++
				r.lastErr = err
				if !errors.As(err, &nr) {
					// A stray in a multidrop box says nothing about the
					// local side: it does not count towards stopping.
					consecutive++
				}
				if consecutive >= maxConsecutiveFailures {
					stop.Store(true)
				}
				mu.Unlock()
				text := fmt.Sprintf("message UID %s not delivered, it stays on the server: %v", j.m.UID, err)
				if n >= MaxFailures {
					text += fmt.Sprintf(" (failed %d times: skipped from now on)", n)
				}
				r.sink.Emit(event.Event{Type: event.Note, Text: text})
				r.log.Warn("delivery failed", "uid", j.m.UID, "failures", n, "err", err)
			}
		}()
	}
	var buf bytes.Buffer
	errStopped := errors.New("stopped")
	err := mb.Retrieve(ctx, batch, func(m Message, rd io.Reader) error {
		if stop.Load() {
			return errStopped
		}
		sp, err := spool.New(rd, e.spoolDir, memSpoolMax, &buf)
		if err != nil {
			return err
		}
		select {
		case jobs <- job{m, sp}:
			return nil
		case <-ctx.Done():
			sp.Close()
			return context.Cause(ctx)
		}
	})
	close(jobs)
	wg.Wait()
	rsync.stop()
	sort.Slice(delivered, func(i, j int) bool { return delivered[i].Num < delivered[j].Num })
	if recordErr != nil {
		return delivered, recordErr
	}
	if errors.Is(err, errStopped) {
		if ctx.Err() != nil {
			return delivered, errkind.WrapTemporary(errkind.Network, "fetch "+r.a.Name, context.Cause(ctx))
		}
		r.res.Left += len(batch) - len(delivered) - failed
		return delivered, fmt.Errorf("stopped after %d failed deliveries in a row: %w", maxConsecutiveFailures, r.lastErr)
	}
	if err != nil {
		return delivered, err
	}
	if ctx.Err() != nil {
		return delivered, errkind.WrapTemporary(errkind.Network, "fetch "+r.a.Name, context.Cause(ctx))
	}
	return delivered, nil
}

// wireCounter is a Mailbox that counts the octets of its connection.
type wireCounter interface {
	WireBytes() (read, written int64)
}

// countWire adds a closed session's octets to the account's figures;
// a source that does not count them adds the message sizes instead.
func (r *accountRun) countWire(mb Mailbox) {
	if wc, ok := mb.(wireCounter); ok {
		rd, wr := wc.WireBytes()
		r.res.BytesDown += rd
		r.res.BytesUp += wr
		return
	}
	r.res.BytesDown = max(r.res.BytesDown, r.res.Bytes)
}

func (r *accountRun) lastDeliveryErr() error {
	if r.lastErr == nil {
		return nil
	}
	return fmt.Errorf("%d deliver%s failed, left on the server: %w", r.res.Failed, map[bool]string{true: "y", false: "ies"}[r.res.Failed == 1], r.lastErr)
}

// deliverOne hands one spooled message to the target.
func (e *engine) deliverOne(ctx context.Context, r *accountRun, m Message, sp *spool.Spool, info headerInfo) error {
	md := r.a.Multidrop
	env := deliver.Envelope{From: info.ReturnPath, To: r.a.To}
	if md != nil {
		to, err := md.recipients(info, r.a.To)
		if err != nil {
			return err
		}
		env.To = to
	}
	var body io.Reader = sp.Reader()
	if e.opts.Received {
		body = io.MultiReader(bytes.NewReader(receivedLine(r.a.Server, e.host, r.a.Proto, r.a.Name, env.To, e.now())), body)
	}
	return r.a.Target.Deliver(ctx, env, body)
}

// messageSpecific reports whether the local side judged this message (an
// SMTP/LMTP reply, an MDA's exit status) rather than being unreachable or
// out of disk: only such failures count towards MaxFailures, so that a
// local MTA that is down for three runs does not poison the mailbox.
func messageSpecific(err error) bool {
	var se *smtp.SMTPError
	var pe *deliver.PartialError
	var src *deliver.SourceError
	if errors.As(err, &src) {
		return false
	}
	// An MDA's non-zero exit (other than 75) is a permanent delivery
	// error; an unreachable MTA, a full disk or exit 75 are temporary.
	return errors.As(err, &se) || errors.As(err, &pe) ||
		(errkind.KindOf(err) == errkind.Delivery && !errkind.IsTemporary(err))
}
