package config

import (
	"time"

	"github.com/linkctl/linkctl/internal/authmech"
	"github.com/linkctl/linkctl/internal/netconn"
)

// TLSMode is how a connection is secured: the config names the same three
// modes the stages dial with (starttls, implicit, none), so the value
// validated here is the value a stage gets, never a string parsed again.
type TLSMode = netconn.TLSMode

// The TLS modes, as written in `tls:` keys.
const (
	TLSStartTLS = netconn.TLSStartTLS
	TLSImplicit = netconn.TLSImplicit
	TLSNone     = netconn.TLSNone
)

// Proto is a mailbox account's protocol.
type Proto string

// The protocols of `proto:`.
const (
	POP3 Proto = "pop3"
	IMAP Proto = "imap"
	ODMR Proto = "odmr" // RFC 2645 on-demand mail relay (ATRN)
)

// Auth is how an account logs in: the stages' own type, so the value
// validated here is the value a stage switches over, never a string parsed
// again. Only mechanisms that the protocol clients implement are accepted
// by validation, so every value here runs.
type Auth = authmech.Mech

// The mechanisms of `auth:`.
const (
	AuthAuto        = authmech.Auto     // the best the server offers
	AuthPassword    = authmech.Password // POP3 USER/PASS, IMAP LOGIN
	AuthAPOP        = authmech.APOP     // POP3 only (RFC 1939 section 7)
	AuthPlain       = authmech.Plain    // SASL PLAIN (RFC 4616)
	AuthLogin       = authmech.Login    // SASL LOGIN
	AuthXOAuth2     = authmech.XOAuth2
	AuthOAuthBearer = authmech.OAuthBearer // RFC 7628
	AuthExternal    = authmech.External    // already authenticated (a plugin, a tunnel)
)

// Config is a validated configuration: every default applied, every value
// checked. Package assemble translates it into each stage's own Options;
// stages never see this package.
type Config struct {
	File          string // the file it was read from
	Link          Link
	StateDir      string
	ControlSocket string
	MetricsFile   string // Prometheus textfile, "" for none
	Log           Log
	Pipeline      []Step
	Flush         Flush
	ETRN          ETRN
	Fetch         Fetch
	Drop          Drop
	Dial          Dial // Command empty: no dial section
}

// Link says which uplink to watch and how to treat it.
type Link struct {
	Watch    []string      // interface names or globs, or "default-route"
	Settle   time.Duration // the link must stay usable this long (default 2s)
	Interval time.Duration // re-run while up; 0: only on up edges
	// Policies say how each link is billed: the first whose Match fits
	// the run's interface applies. The link-level shorthand (metered,
	// budget, max_message beside watch) is the last one, matching "*".
	Policies []LinkPolicy
}

// LinkPolicy is the billing of the links Match names.
type LinkPolicy struct {
	Match   string  // interface name or glob (wwan*, ppp0); "*" for the shorthand
	Metered Metered // default MeteredTrue
	// Budget in bytes per run, local calendar day and month (0: none).
	Budget struct{ Run, Day, Month int64 }
	// MaxMessage (bytes, 0 none): bigger messages stay on the server on
	// a metered link of this policy.
	MaxMessage int64
	Line       int
}

// Metered says whether a link is billed by volume.
type Metered string

// Metered values.
const (
	MeteredTrue  Metered = "true"
	MeteredFalse Metered = "false"
	MeteredAuto  Metered = "auto" // NetworkManager's Metered property of the device
)

// Log says where the daemon logs besides stderr/journald.
type Log struct {
	File   string // append to this file, "" for none
	Syslog bool   // log to the local syslog
	Level  string // "info" (default), "debug", "trace"
	Format string // "text" (default) or "json"
}

// OnError is what the pipeline does when a stage fails.
type OnError string

// OnError values.
const (
	Stop     OnError = "stop"     // skip the remaining stages (drop still runs)
	Continue OnError = "continue" // go on with the next stage
)

// Step is one entry of the pipeline: a stage, or a group of stages run at
// the same time.
type Step struct {
	Stage   string        // "flush", "etrn", "fetch", "drop", "exec"; "" for a group
	Name    string        // shown in events and status: the stage, or the exec's name
	Argv    []string      // exec only
	Timeout time.Duration // 0: the stage's own default
	OnError OnError
	Group   []Step // non-empty: run these concurrently, then go on
	Line    int    // where it was written, for messages
}

// Secret is a password or token: written inline, read from a file, or
// printed by a command (argv, no shell). Its String never shows it.
type Secret struct {
	Inline  string
	File    string
	Command []string
}

// IsZero reports whether no secret was configured.
func (s Secret) IsZero() bool { return s.Inline == "" && s.File == "" && len(s.Command) == 0 }

// String hides the secret.
func (s Secret) String() string {
	switch {
	case s.Inline != "":
		return "***"
	case s.File != "":
		return "file " + s.File
	case len(s.Command) > 0:
		return "command " + s.Command[0]
	}
	return ""
}

// Flush configures the flush stage.
type Flush struct {
	MTA          string        // auto | postfix | sendmail | exim | opensmtpd | command
	Wait         string        // drained (default) | none
	Timeout      time.Duration // default 5m
	FlushCommand []string      // mta: command
	ListCommand  []string      // mta: command
	OnError      OnError       // pipeline policy for a bare "flush" step (default continue)
	// A named driver pointed at another instance: the binary of its queue
	// commands ("" finds it in $PATH), arguments that go before the
	// driver's own (e.g. [-C, /etc/exim4/second.conf]), and KEY=VALUE
	// environment entries (e.g. MAIL_CONFIG=/etc/postfix-out), sorted.
	Command string
	Args    []string
	Env     []string
}

// ETRN configures the etrn stage.
type ETRN struct {
	Quiet         time.Duration // inbound SMTP idle this long = done (default 20s)
	QuietMax      time.Duration // give up waiting (default 5m)
	Ports         []int         // local SMTP ports to watch (default [25])
	CountLoopback bool          // count loopback peers as inbound (tests)
	Parallel      int           // servers asked at once (default DefaultETRNParallel)
	Servers       []ETRNServer
	Timeout       time.Duration // whole-stage limit for a bare "etrn" step, 0: none
	OnError       OnError       // pipeline policy for a bare "etrn" step (default continue)
}

// ETRNServer is one relay that holds mail for us.
type ETRNServer struct {
	Name     string   // shown in events and status (default: the server as host:port)
	Server   string   // host:port (port defaulted from tls)
	Domains  []string // as sent: node, @domain or #queue
	TLS      TLSMode  // starttls | implicit | none (defaulted)
	Trust    TLSTrust // tls_pin, ca_file, tls_verify
	Helo     string   // default: our FQDN
	User     string
	Password Secret
	Timeout  time.Duration
	Line     int
}

// Fetch configures the fetch stage.
type Fetch struct {
	Parallel int     // accounts at once (default DefaultFetchParallel)
	Deliver  Deliver // default for every account
	Received bool    // prepend a Received: line (default true)
	Accounts []Account
	// Timeout is the run deadline of a bare "fetch" step (default
	// DefaultFetchTimeout; never none): a retrieval that began before it
	// may run to its own session deadline.
	Timeout time.Duration
	// Session deadlines (docs/deadlines.md): SessionFloor to connect, log
	// in and list; then SessionFloor + announced bytes at MinRate/Parallel
	// bytes a second + PerMessage per message.
	SessionFloor time.Duration // DefaultSessionFloor
	MinRate      int64         // bytes a second, DefaultMinRate
	PerMessage   time.Duration // DefaultPerMessage
	SlotWait     time.Duration // a logged-in session waits this long for a slot, then reconnects (DefaultSlotWait)
	AckWindow    int           // deliveries per account past their commit point, not yet recorded (DefaultAckWindow)
	// RecordSync bounds how long a delivered message's record, written at
	// once, may wait for its fsync (DefaultRecordSync); 0: an fsync after
	// every message. Only a crash of the machine can lose an unsynced
	// record (a duplicate, never a loss: DELE waits for the fsync).
	RecordSync time.Duration
	OnError    OnError // pipeline policy for a bare "fetch" step (default continue)
}

// Deliver says where fetched mail goes. Exactly one target is set.
type Deliver struct {
	SMTP     string   // host:port of the local MTA
	LMTP     string   // unix socket path or host:port
	MDA      []string // argv; %F sender and %T recipient as whole elements
	Maildir  string   // path of a Maildir
	Sessions int      // parallel SMTP/LMTP sessions (default DefaultSessions)
	// TLS for SMTP delivery: "starttls" (required; the default for an MTA
	// that is not on loopback) or "none" (the default on loopback, and
	// only when written out elsewhere).
	TLS TLSMode
	// Trust is tls_pin, ca_file and tls_verify of smtp delivery with
	// starttls (zero otherwise).
	Trust TLSTrust
	// Domain qualifies a bare local name ("chavez", a multidrop local
	// part) in SMTP delivery's RCPT TO and MAIL FROM: RFC 5321 section
	// 4.1.2 requires a domain there, and strict MTAs (Exim) refuse a bare
	// one. Default "localhost", which every Debian MTA takes as its own
	// (fetchmail does the same). LMTP, MDA and Maildir get bare names.
	Domain string
}

// Account is one mailbox to pull.
type Account struct {
	Name        string
	Proto       Proto
	Server      string   // host:port (port defaulted from proto and tls)
	TLS         TLSMode  // implicit | starttls | none (defaulted; none over a plugin)
	Trust       TLSTrust // tls_pin, ca_file, tls_verify
	User        string
	Password    Secret
	Auth        Auth     // defaulted to auto
	PreAuth     bool     // no login: auth external, or a plugin without a password
	To          []string // local recipients
	Keep        bool
	FetchAll    bool
	Limit       int64    // bytes; bigger messages stay on the server
	FetchLimit  int      // messages per run, 0: no limit
	MaxMessages int      // most entries a listing may hold (default fetch.max_messages, DefaultMaxMessages)
	CommitEvery int      // QUIT every N messages, 0: at the end
	KeepDays    int      // with keep: delete N days after first fetch
	Folders     []string // IMAP: at least one (default INBOX)
	Unseen      bool     // IMAP: fetch only unseen
	MarkSeen    bool     // IMAP with keep: set \Seen
	MoveTo      string   // IMAP: move instead of delete
	Expunge     string   // IMAP: auto (UIDPLUS only, the default) | all
	Idle        bool     // IMAP IDLE while the daemon runs
	Compress    string   // IMAP: auto (the default) | on | off
	Plugin      []string
	Timeout     time.Duration
	Deliver     Deliver // the effective target (account's own, else fetch's)
	Line        int

	// Multidrop (issue 9): one mailbox holding mail for several local
	// users, sorted by an envelope header.
	LocalDomains []string // domains whose recipients are local
	Envelope     string   // header naming the envelope recipient (Delivered-To); "" or "none": single drop
	QVirtual     string   // prefix stripped from the envelope address (fetchmail's qvirtual)

	Domains []string // ODMR: domains asked for with ATRN (none: all of the account's)
}

// Drop configures the drop stage.
type Drop struct {
	Command   []string
	Interface string
	Idle      time.Duration // default 30s
	Timeout   time.Duration // whole-stage limit for a bare "drop" step, 0: none
	OnError   OnError       // pipeline policy for a bare "drop" step (default continue)
}
