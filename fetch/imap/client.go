package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/linkctl/linkctl/internal/authmech"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
)

// DefaultMaxMessages is the default of Options.MaxMessages.
const DefaultMaxMessages = 100000

// Options says where and how to connect. The zero value of every field but
// Addr and User has a useful meaning.
type Options struct {
	Addr      string          // host:port
	TLS       netconn.TLSMode // implicit, starttls (required; also when empty), or none
	TLSConfig *tls.Config     // nil: system roots, ServerName from Addr
	User      string
	// Password returns the password (or the OAuth token for xoauth2 and
	// oauthbearer); called once per login, never logged.
	Password func(ctx context.Context) (string, error)
	// Auth is auto (also when empty: LOGIN, or AUTHENTICATE PLAIN when the
	// server says LOGINDISABLED), login (or password), plain, xoauth2,
	// oauthbearer, or external: the connection (a plugin, a tunnel) must
	// arrive already authenticated, with a PREAUTH greeting. The config
	// validated it; apop (POP3's) or a value outside authmech.All is an
	// internal error.
	Auth authmech.Mech
	// Compress is auto (COMPRESS=DEFLATE when offered), on (required) or
	// off.
	Compress string
	// Timeout is the inactivity timeout of every read while an answer is
	// due, and of every write (netconn.DefaultTimeout when zero).
	Timeout time.Duration
	// MaxMessages bounds the entries of one folder's listing
	// (DefaultMaxMessages when zero). Memory follows this bound, never the
	// count a server announces: a listing beyond it is a protocol error.
	MaxMessages int
	// Logger gets warnings (and [ALERT] texts, RFC 3501 section 7.1), and
	// the session's transcript at logx.LevelTrace with secrets replaced by ***
	// and literals by their size (nil: discarded).
	Logger *slog.Logger
	// Dial, when set, replaces the TCP dial (tests, plugins); it returns
	// the raw connection: TLS is still done here as TLS says.
	Dial func(ctx context.Context) (net.Conn, error)
}

// validate rejects option values no server could make sense of, before
// any connection is made. TLS and Auth are typed values that the config
// validated: one outside their sets is a bug in the caller (errkind.Internal),
// never a usage error of the user's.
func (o *Options) validate() error {
	op := "imap " + o.Addr
	switch o.TLS {
	case netconn.TLSImplicit, netconn.TLSStartTLS, netconn.TLSNone:
	default:
		return errkind.Permanent(errkind.Internal, op, "tls mode %q reached the IMAP client unvalidated (expected implicit, starttls or none)", o.TLS)
	}
	switch strings.ToLower(o.Compress) {
	case "", "auto", "on", "off":
	default:
		return errkind.Permanent(errkind.Usage, op, "unknown compress %q (expected auto, on or off)", o.Compress)
	}
	switch o.Auth {
	case "", authmech.Auto, authmech.Password, authmech.Login, authmech.Plain, authmech.XOAuth2, authmech.OAuthBearer, authmech.External:
	default:
		// apop is POP3's (RFC 1939 section 7): validation refuses it for IMAP.
		return errkind.Permanent(errkind.Internal, op, "auth %q reached the IMAP client (expected auto, password, login, plain, xoauth2, oauthbearer or external)", o.Auth)
	}
	return nil
}

func (o *Options) maxMessages() int {
	if o.MaxMessages <= 0 {
		return DefaultMaxMessages
	}
	return o.MaxMessages
}

func (o *Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return netconn.DefaultTimeout
	}
	return o.Timeout
}

// Client is one logged-in IMAP session. Its methods are for one goroutine
// at a time, except Close, which may be called from anywhere to abort.
type Client struct {
	c          *imapclient.Client
	wire       *wireConn
	tap        *tap
	abort      chan struct{} // closed once the session is being torn down
	abortOnce  sync.Once
	opts       Options
	log        *slog.Logger
	caps       []string
	compressed bool

	mu        sync.Mutex
	uni       chan uniFetch // FETCH data that go-imap did not route (see Fetch)
	uniDone   chan struct{}
	onMailbox func(*imapclient.UnilateralDataMailbox)
	onExpunge func(uint32)
	closed    bool
}

// Dial connects, logs in and negotiates COMPRESS, then hands the session to
// go-imap. ctx bounds the whole login.
func Dial(ctx context.Context, o Options) (*Client, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.TLS == "" {
		o.TLS = netconn.TLSStartTLS // secure by default: TLS required
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	var raw net.Conn
	var err error
	if o.Dial != nil {
		raw, err = o.Dial(ctx)
		if err != nil {
			return nil, errkind.WrapTemporary(errkind.Network, "imap "+o.Addr+" connect", err)
		}
	} else {
		// TLS is layered here, above the byte-counting wire conn.
		raw, err = netconn.Dial(ctx, o.Addr, netconn.TLSNone, nil, o.timeout())
		if err != nil {
			return nil, err
		}
	}
	wire := newWireConn(raw, o.timeout())
	wire.arm()
	stop := netconn.CloseOnDone(ctx, raw)
	h := &handshake{opts: &o, log: log, wire: wire}
	res, err := h.run(ctx)
	stop()
	if err != nil {
		raw.Close()
		if ctx.Err() != nil {
			return nil, errkind.WrapTemporary(errkind.Network, "imap "+o.Addr+" login", context.Cause(ctx))
		}
		return nil, err
	}

	cl := &Client{wire: wire, opts: o, log: log, caps: res.caps, compressed: res.compressed,
		tap: newTap(log, o.Addr), abort: make(chan struct{})}
	libCaps := res.caps
	if !slices.Contains(libCaps, "IMAP4REV1") && !slices.Contains(libCaps, "IMAP4REV2") {
		libCaps = append([]string{"IMAP4REV1"}, libCaps...)
	}
	// go-imap starts reading at a greeting; the session is already
	// authenticated, so it gets a PREAUTH one carrying the capabilities
	// the server announced after login, and sends no command of its own.
	greeting := "* PREAUTH [CAPABILITY " + strings.Join(libCaps, " ") + "] linkctl: logged in\r\n"
	sc := newStreamConn(res.conn, res.br, greeting, res.compressed, cl.tap)
	cl.c = imapclient.New(sc, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Fetch:   cl.unilateralFetch,
			Mailbox: cl.unilateralMailbox,
			Expunge: cl.unilateralExpunge,
		},
	})
	if err := cl.c.WaitGreeting(); err != nil {
		// The greeting is ours: what failed is the server's stream right
		// after it (a cut, or a corrupt COMPRESS stream go-imap's reader
		// met at once), classified as any command's failure.
		err = cl.err(ctx, "session", err)
		cl.Close()
		return nil, err
	}
	wire.disarm()
	log.Debug("IMAP session ready", "server", o.Addr, "user", o.User, "tls", h.tls, "compress", res.compressed)
	return cl, nil
}

// Caps returns the capabilities the server announced after login (upper case).
func (cl *Client) Caps() []string { return slices.Clone(cl.caps) }

// Has reports whether the server announced capability c. The library is
// asked too, since it knows which capabilities IMAP4rev2 implies.
func (cl *Client) Has(c string) bool {
	return slices.Contains(cl.caps, strings.ToUpper(c)) || cl.c.Caps().Has(imap.Cap(c))
}

// Compressed reports whether COMPRESS=DEFLATE is active.
func (cl *Client) Compressed() bool { return cl.compressed }

// BytesRead returns the octets received on the wire (after TLS and
// compression: what the link carried).
func (cl *Client) BytesRead() int64 { return cl.wire.read.Load() }

// BytesWritten returns the octets sent on the wire.
func (cl *Client) BytesWritten() int64 { return cl.wire.written.Load() }

// Close aborts the session at once, in the only order that cannot
// deadlock (LIBRARIES.md): the wire first, so that any literal still being
// streamed fails; then the FETCH in flight, which drains what is left;
// then the client.
func (cl *Client) Close() error {
	cl.mu.Lock()
	already := cl.closed
	cl.closed = true
	cl.mu.Unlock()
	if already {
		return nil
	}
	cl.kill()
	// A FETCH in flight belongs to Fetch, which drains it once its reads
	// fail. imapclient's Close waits for its reader, which ends once what
	// it handed out is consumed; that wait is bounded all the same, so
	// that no bug here or in the library can hang a cancelled run.
	if cl.c != nil {
		done := make(chan struct{})
		go func() {
			cl.c.Close()
			close(done)
		}()
		t := time.NewTimer(abortGrace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			cl.log.Warn("IMAP session did not end within its grace after being closed; abandoned", "server", cl.opts.Addr)
		}
	}
	return nil
}

// kill closes the wire and tells every goroutine of ours that still holds
// or waits for go-imap's data to let go of it (see unilateralFetch): with
// the wire closed, go-imap's reader ends as soon as what it already read
// is consumed, and nothing is left waiting for anyone. It does not wait.
func (cl *Client) kill() {
	cl.wire.Conn.Close()
	cl.abortOnce.Do(func() { close(cl.abort) })
}

// Logout ends the session politely (LOGOUT, RFC 3501 section 6.1.3) and
// closes it. Nothing is expunged.
func (cl *Client) Logout(ctx context.Context) error {
	done := cl.begin(ctx, "LOGOUT", 0)
	err := cl.c.Logout().Wait()
	done()
	cl.Close()
	if err != nil {
		return cl.err(ctx, "LOGOUT", err)
	}
	return nil
}

// begin arms the wire for an operation named what, which asks for expected
// untagged responses (beyond them the tap allows DefaultMaxUnsolicited),
// and ties it to ctx: when ctx ends (cancelled, or its deadline passed) the
// session is killed at once, whatever is being read. Call the returned
// function when the answer is in.
func (cl *Client) begin(ctx context.Context, what string, expected int) func() {
	cl.tap.expect(what, expected)
	cl.wire.arm()
	stop := context.AfterFunc(ctx, cl.kill)
	return func() {
		stop()
		cl.wire.disarm()
	}
}

// err classifies a failed command.
func (cl *Client) err(ctx context.Context, what string, err error) error {
	op := "imap " + cl.opts.Addr + " " + what
	var ek *errkind.Error
	if errors.As(err, &ek) {
		return err
	}
	if ctx.Err() != nil {
		return errkind.WrapTemporary(errkind.Network, op, fmt.Errorf("%w (%v)", context.Cause(ctx), err))
	}
	if te := cl.tap.failure(); te != nil {
		// A flood or an endless line: temporary, the next session may
		// find the server sane again.
		return errkind.WrapTemporary(errkind.Protocol, op, te)
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		temp := false
		switch ie.Code {
		case imap.ResponseCodeUnavailable, imap.ResponseCodeInUse, imap.ResponseCodeServerBug,
			imap.ResponseCodeLimit, imap.ResponseCodeOverQuota:
			temp = true
		}
		kind := errkind.Refused
		if ie.Type == imap.StatusResponseTypeBad {
			kind = errkind.Protocol
		}
		return errkind.Wrap(kind, temp, op, err)
	}
	if le := cl.wire.linkErr(); le != nil {
		var ne net.Error
		if errors.As(le, &ne) && ne.Timeout() {
			return errkind.WrapTemporary(errkind.Network, op, fmt.Errorf("no answer within %v: %w", cl.opts.timeout(), le))
		}
		if errors.Is(le, io.EOF) {
			return errkind.WrapTemporary(errkind.Network, op, fmt.Errorf("connection closed by the server or the link: %w", io.ErrUnexpectedEOF))
		}
		return errkind.WrapTemporary(errkind.Network, op, fmt.Errorf("connection lost: %w", le))
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return errkind.WrapTemporary(errkind.Network, op, err)
	}
	// go-imap reports undecodable responses as plain errors and closes the
	// connection itself: the wire saw no failure, so the server sent
	// something that is not IMAP.
	return errkind.WrapPermanent(errkind.Protocol, op, err)
}

// Selected is what SELECT reported (RFC 3501 section 6.3.1).
type Selected struct {
	Folder      string
	UIDValidity uint32
	UIDNext     uint32
	Messages    uint32
}

// Select selects folder (RFC 3501 section 6.3.1) without listing it.
func (cl *Client) Select(ctx context.Context, folder string) (Selected, error) {
	done := cl.begin(ctx, "SELECT "+folder, 0)
	defer done()
	data, err := cl.c.Select(folder, &imap.SelectOptions{}).Wait()
	if err != nil {
		return Selected{}, cl.err(ctx, "SELECT "+folder, err)
	}
	return Selected{Folder: folder, UIDValidity: data.UIDValidity, UIDNext: uint32(data.UIDNext), Messages: data.NumMessages}, nil
}

// Entry is one message of a listing.
type Entry struct {
	UID  uint32
	Size int64
	Seen bool
}

// SelectList selects folder and lists its messages with UID, RFC822.SIZE
// and FLAGS, pipelining SELECT and UID FETCH 1:* so that the listing costs
// one round trip (RFC 3501 section 5.5 allows it: the FETCH is processed
// after the SELECT). A folder without UIDVALIDITY is refused: without it a
// renumbered folder could make the seen-store skip new mail, and then
// delete it.
func (cl *Client) SelectList(ctx context.Context, folder string) (Selected, []Entry, error) {
	max := cl.opts.maxMessages()
	done := cl.begin(ctx, "SELECT "+folder+" and UID FETCH 1:*", max)
	defer done()
	sel := cl.c.Select(folder, &imap.SelectOptions{})
	f := cl.c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, RFC822Size: true, Flags: true})
	data, selErr := sel.Wait()
	var s Selected
	if selErr == nil {
		s = Selected{Folder: folder, UIDValidity: data.UIDValidity, UIDNext: uint32(data.UIDNext), Messages: data.NumMessages}
	}
	// Read the listing item by item rather than with Collect, which would
	// hold any literal a hostile server slipped in; and bound it by
	// MaxMessages, never by what the server announced: a server could
	// claim EXISTS 99999999 and list without end (the inactivity timeout
	// never fires on a talkative one). Every FETCH response counts,
	// repeats and UID-less ones too. Nothing is allocated ahead by the
	// announced count.
	var entries []Entry
	seen := map[uint32]bool{}
	over := false
	responses := 0
	for m := f.Next(); m != nil; m = f.Next() {
		if over {
			continue // f.Next discards it; the wire is closed
		}
		if responses++; responses > max {
			over = true
			cl.kill()
			continue
		}
		var e Entry
		for item := m.Next(); item != nil; item = m.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				e.UID = uint32(it.UID)
			case imapclient.FetchItemDataRFC822Size:
				e.Size = it.Size
			case imapclient.FetchItemDataFlags:
				e.Seen = slices.Contains(it.Flags, imap.FlagSeen)
			}
		}
		if e.UID == 0 || seen[e.UID] {
			continue // an unsolicited flag update, or a repeat
		}
		seen[e.UID] = true
		entries = append(entries, e)
	}
	fetchErr := f.Close()
	if selErr != nil {
		return Selected{}, nil, cl.err(ctx, "SELECT "+folder, selErr)
	}
	if over {
		return s, nil, errkind.Permanent(errkind.Protocol, "imap "+cl.opts.Addr+" UID FETCH 1:*",
			"server listed more than %d messages in %s (it announced EXISTS %d); raise the account's max_messages if the folder is really that large",
			max, folder, s.Messages)
	}
	if s.UIDValidity == 0 {
		return s, nil, errkind.Permanent(errkind.Protocol, "imap "+cl.opts.Addr+" SELECT "+folder,
			"server sent no UIDVALIDITY: UIDs cannot be trusted across sessions, refusing to fetch (RFC 3501 section 2.3.1.1)")
	}
	if fetchErr != nil {
		if s.Messages == 0 {
			return s, nil, nil // some servers answer "1:*" in an empty folder with NO or BAD
		}
		return s, nil, cl.err(ctx, "UID FETCH 1:* (RFC822.SIZE)", fetchErr)
	}
	slices.SortFunc(entries, func(a, b Entry) int { return int64cmp(int64(a.UID), int64(b.UID)) })
	return s, entries, nil
}

func int64cmp(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func uidSet(uids []uint32) imap.UIDSet {
	var s imap.UIDSet
	for _, u := range uids {
		s.AddNum(imap.UID(u))
	}
	return s
}

// Store adds (or removes) flag on uids, silently (RFC 3501 section 6.4.6).
func (cl *Client) Store(ctx context.Context, uids []uint32, flag string, add bool) error {
	if len(uids) == 0 {
		return nil
	}
	op := imap.StoreFlagsAdd
	verb := "+FLAGS"
	if !add {
		op, verb = imap.StoreFlagsDel, "-FLAGS"
	}
	done := cl.begin(ctx, "UID STORE", len(uids))
	defer done()
	err := cl.c.Store(uidSet(uids), &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{imap.Flag(flag)}}, nil).Close()
	if err != nil {
		return cl.err(ctx, "UID STORE "+verb+" "+flag, err)
	}
	return nil
}

// UIDExpunge expunges exactly uids (RFC 4315 section 2.1). It refuses
// when the server does not offer UIDPLUS: go-imap would send it anyway.
func (cl *Client) UIDExpunge(ctx context.Context, uids []uint32) error {
	if len(uids) == 0 {
		return nil
	}
	if !cl.Has(string(imap.CapUIDPlus)) {
		return errkind.Permanent(errkind.Internal, "imap "+cl.opts.Addr+" UID EXPUNGE", "server does not offer UIDPLUS")
	}
	done := cl.begin(ctx, "UID EXPUNGE", len(uids))
	defer done()
	if err := cl.c.UIDExpunge(uidSet(uids)).Close(); err != nil {
		return cl.err(ctx, "UID EXPUNGE", err)
	}
	return nil
}

// Expunge removes every message flagged \Deleted in the folder, whoever
// flagged it (RFC 3501 section 6.4.3).
func (cl *Client) Expunge(ctx context.Context) error {
	done := cl.begin(ctx, "EXPUNGE", cl.opts.maxMessages())
	defer done()
	if err := cl.c.Expunge().Close(); err != nil {
		return cl.err(ctx, "EXPUNGE", err)
	}
	return nil
}

// Move moves uids to folder with UID MOVE (RFC 6851). Without MOVE it
// returns an error: the caller copies and flags instead (go-imap's own
// fallback would EXPUNGE every \Deleted message of the folder).
func (cl *Client) Move(ctx context.Context, uids []uint32, folder string) error {
	if len(uids) == 0 {
		return nil
	}
	if !cl.Has(string(imap.CapMove)) {
		return errkind.Permanent(errkind.Internal, "imap "+cl.opts.Addr+" UID MOVE", "server does not offer MOVE")
	}
	done := cl.begin(ctx, "UID MOVE", len(uids))
	defer done()
	if _, err := cl.c.Move(uidSet(uids), folder).Wait(); err != nil {
		return cl.err(ctx, "UID MOVE "+folder, err)
	}
	return nil
}

// Copy copies uids to folder (RFC 3501 section 6.4.7).
func (cl *Client) Copy(ctx context.Context, uids []uint32, folder string) error {
	if len(uids) == 0 {
		return nil
	}
	done := cl.begin(ctx, "UID COPY", 0)
	defer done()
	if _, err := cl.c.Copy(uidSet(uids), folder).Wait(); err != nil {
		return cl.err(ctx, "UID COPY "+folder, err)
	}
	return nil
}

// Noop sends NOOP, which lets the server report new mail (RFC 3501
// section 6.1.2).
func (cl *Client) Noop(ctx context.Context) error {
	done := cl.begin(ctx, "NOOP", 0)
	defer done()
	if err := cl.c.Noop().Wait(); err != nil {
		return cl.err(ctx, "NOOP", err)
	}
	return nil
}

func (cl *Client) unilateralMailbox(d *imapclient.UnilateralDataMailbox) {
	cl.mu.Lock()
	f := cl.onMailbox
	cl.mu.Unlock()
	if f != nil {
		f(d)
	}
}

func (cl *Client) unilateralExpunge(seq uint32) {
	cl.mu.Lock()
	f := cl.onExpunge
	cl.mu.Unlock()
	if f != nil {
		f(seq)
	}
}

func uidString(u uint32) string { return strconv.FormatUint(uint64(u), 10) }
