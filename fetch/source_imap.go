package fetch

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/linkctl/linkctl/fetch/imap"
	"github.com/linkctl/linkctl/internal/authmech"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
)

// IMAPSource says how to reach one IMAP folder; Open logs in and selects
// it. The zero values of the optional fields mean: Folder INBOX, Auth
// auto, Expunge auto, Compress auto, Timeout netconn.DefaultTimeout.
type IMAPSource struct {
	Addr      string // host:port, resolved by the config (which alone knows the default ports)
	TLS       netconn.TLSMode
	TLSConfig *tls.Config
	User      string
	Password  func(ctx context.Context) (string, error)
	Auth      authmech.Mech // as imap.Options.Auth: validated by the config, "" means auto
	Folder    string
	Unseen    bool   // list only messages without \Seen
	Keep      bool   // the account keeps mail (the engine decides; Delete still deletes what it is given)
	MarkSeen  bool   // with Keep: at Close(true), set \Seen on the messages retrieved
	MoveTo    string // move fetched mail to this folder instead of deleting it
	Expunge   string // auto: UID EXPUNGE with UIDPLUS only | all: plain EXPUNGE without UIDPLUS
	Compress  string // auto | on | off
	Timeout   time.Duration
	// MaxMessages bounds the folder's listing (imap.DefaultMaxMessages
	// when zero): beyond it, a protocol error naming the server's claim.
	MaxMessages int
	Logger      *slog.Logger
	Dial        func(ctx context.Context) (net.Conn, error) // optional: tests and plugins

	// LastUIDValidity, when known (the caller finds it in the seen-store
	// under IMAPKeyPrefix), is the folder's UIDVALIDITY of the last run: a
	// different one now is reported as a warning, since every message is
	// then fetched again as new (duplicates are possible, loss is not).
	LastUIDValidity uint32
}

// Batch limits of Retrieve: many messages per UID FETCH so that a round
// trip is not paid per message, few enough octets that the rest of a batch
// read and thrown away after a delivery failure costs little link time.
const (
	imapBatchMessages = 200
	imapBatchBytes    = 1 << 20
)

// IMAPKeyPrefix is the seen-store key of folder without its UIDVALIDITY
// number: Key() is this prefix followed by the number.
func IMAPKeyPrefix(user, addr, folder string) string {
	if folder == "" {
		folder = "INBOX"
	}
	return "imap:" + user + "@" + addr + "/" + folder + ";UIDVALIDITY="
}

// ParseIMAPKey splits a Key() into its prefix and UIDVALIDITY.
func ParseIMAPKey(key string) (prefix string, uidValidity uint32, ok bool) {
	i := strings.LastIndex(key, ";UIDVALIDITY=")
	if !strings.HasPrefix(key, "imap:") || i < 0 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(key[i+len(";UIDVALIDITY="):], 10, 32)
	if err != nil {
		return "", 0, false
	}
	return key[:i+len(";UIDVALIDITY=")], uint32(n), true
}

// Open connects, logs in, selects the folder and lists it (one round trip
// for SELECT and the listing, see imap.Client.SelectList). An empty TLS
// mode means STARTTLS, required. The returned Mailbox also implements
// interface{ BytesRead() int64 } (octets on the wire, for progress) and
// interface{ UIDValidity() uint32 }.
func (s IMAPSource) Open(ctx context.Context) (Mailbox, error) {
	if s.Folder == "" {
		s.Folder = "INBOX"
	}
	if s.TLS == "" {
		s.TLS = netconn.TLSStartTLS
	}
	if err := needPort("imap", s.Addr); err != nil {
		return nil, err
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch strings.ToLower(s.Expunge) {
	case "", "auto", "all":
	default:
		return nil, errkind.Permanent(errkind.Usage, "imap "+s.Addr, "unknown expunge %q (expected auto or all)", s.Expunge)
	}
	cl, err := imap.Dial(ctx, imap.Options{
		Addr: s.Addr, TLS: s.TLS, TLSConfig: s.TLSConfig, User: s.User, Password: s.Password,
		Auth: s.Auth, Compress: s.Compress, Timeout: s.Timeout, Logger: log, Dial: s.Dial,
		MaxMessages: s.MaxMessages,
	})
	if err != nil {
		return nil, oauthRefused("imap", s.Addr, s.User, s.Auth, err)
	}
	sel, entries, err := cl.SelectList(ctx, s.Folder)
	if err != nil {
		cl.Close()
		return nil, err
	}
	if s.LastUIDValidity != 0 && s.LastUIDValidity != sel.UIDValidity {
		log.Warn("IMAP folder's UIDVALIDITY changed: the server renumbered its messages, so every message in it is fetched again as new (duplicates possible, nothing lost)",
			"server", s.Addr, "user", s.User, "folder", s.Folder, "old", s.LastUIDValidity, "new", sel.UIDValidity)
	}
	return &imapMailbox{src: s, log: log, cl: cl, sel: sel, listed: entries, fresh: true}, nil
}

// imapMailbox is a fetch.Mailbox on one selected IMAP folder.
type imapMailbox struct {
	src     IMAPSource
	log     *slog.Logger
	cl      *imap.Client
	sel     imap.Selected
	listed  []imap.Entry
	fresh   bool     // listed is the answer of the SELECT just made
	deleted []uint32 // flagged \Deleted by Delete, to expunge at Close
	taken   []uint32 // retrieved and accepted by fn, for MarkSeen
}

func (m *imapMailbox) Key() string {
	return IMAPKeyPrefix(m.src.User, m.src.Addr, m.src.Folder) + strconv.FormatUint(uint64(m.sel.UIDValidity), 10)
}

// UIDValidity is the folder's UIDVALIDITY in this session.
func (m *imapMailbox) UIDValidity() uint32 { return m.sel.UIDValidity }

// BytesRead returns the octets received on the link so far (after TLS
// and COMPRESS), for progress.
func (m *imapMailbox) BytesRead() int64 { return m.cl.BytesRead() }

// WireBytes returns the octets received and sent on the link so far, for
// benchmarks.
func (m *imapMailbox) WireBytes() (read, written int64) {
	return m.cl.BytesRead(), m.cl.BytesWritten()
}

func (m *imapMailbox) List(ctx context.Context) ([]Message, error) {
	entries := m.listed
	if !m.fresh {
		sel, e, err := m.cl.SelectList(ctx, m.src.Folder)
		if err != nil {
			return nil, err
		}
		if sel.UIDValidity != m.sel.UIDValidity {
			// Key() was handed out with the old number: the seen-store
			// must not mix the two numberings.
			return nil, errkind.Temporary(errkind.Protocol, "imap "+m.src.Addr+" SELECT "+m.src.Folder,
				"UIDVALIDITY changed during the session (%d to %d): try again", m.sel.UIDValidity, sel.UIDValidity)
		}
		entries = e
	}
	m.fresh = false
	msgs := make([]Message, 0, len(entries))
	for _, e := range entries {
		msgs = append(msgs, Message{UID: strconv.FormatUint(uint64(e.UID), 10), Num: e.UID, Size: e.Size, Skip: m.src.Unseen && e.Seen})
	}
	return msgs, nil
}

func (m *imapMailbox) Retrieve(ctx context.Context, msgs []Message, fn func(Message, io.Reader) error) error {
	for len(msgs) > 0 {
		n, size := 0, int64(0)
		for n < len(msgs) && n < imapBatchMessages && (n == 0 || size+msgs[n].Size <= imapBatchBytes) {
			size += max(msgs[n].Size, 0)
			n++
		}
		batch := msgs[:n]
		msgs = msgs[n:]
		byUID := make(map[uint32]Message, n)
		limits := make(map[uint32]int64, n)
		uids := make([]uint32, n)
		for i, msg := range batch {
			uids[i] = msg.Num
			byUID[msg.Num] = msg
			limits[msg.Num] = imapSizeLimit(msg.Size)
		}
		err := m.cl.FetchLimited(ctx, uids, limits, func(uid uint32, r io.Reader) error {
			if err := fn(byUID[uid], r); err != nil {
				return err
			}
			m.taken = append(m.taken, uid)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// imapSizeLimit is the largest literal accepted for a message listed with
// RFC822.SIZE size: generous (servers may count differently), there to
// stop a server that announces gigabytes for a small message.
func imapSizeLimit(size int64) int64 {
	if size < 0 || size > 1<<40 {
		return 0
	}
	return 2*size + 1<<20
}

// Delete notes msgs for removal; nothing reaches the server until
// Close(true), which flags, expunges (or moves) and logs out in one
// round trip. Like POP3's DELE, it takes effect only with the commit, so
// Close(false) has nothing to roll back.
func (m *imapMailbox) Delete(ctx context.Context, msgs []Message) error {
	for _, msg := range msgs {
		m.deleted = append(m.deleted, msg.Num)
	}
	return nil
}

func (m *imapMailbox) Close(ctx context.Context, commit bool) error {
	defer func() { m.deleted, m.taken = nil, nil }()
	if !commit {
		m.cl.Logout(ctx) // best effort: nothing was changed on the server
		return nil
	}
	c := imap.Commit{Delete: m.deleted, MoveTo: m.src.MoveTo, ExpungeAll: strings.EqualFold(m.src.Expunge, "all")}
	if m.src.Keep && m.src.MarkSeen {
		// Kept mail is marked read, so that a mail client (and unseen:
		// true) sees it was fetched; BODY.PEEK left it unread until now.
		c.Seen = m.taken
	}
	res, err := m.cl.Commit(ctx, c)
	if res.LeftFlagged > 0 {
		m.log.Warn("IMAP server lacks UIDPLUS: fetched messages are left flagged \\Deleted, not expunged (set expunge: all to expunge every \\Deleted message of the folder, including other clients')",
			"server", m.src.Addr, "folder", m.src.Folder, "messages", res.LeftFlagged)
	}
	return err
}
