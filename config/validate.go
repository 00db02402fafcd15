package config

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/linkctl/linkctl/internal/authmech"
	"github.com/linkctl/linkctl/internal/netconn"
)

// Defaults that are not derived from the environment. They are applied here
// and nowhere else: the stages get the resolved values.
const (
	DefaultSettle   = 2 * time.Second
	DefaultFlushTO  = 5 * time.Minute
	DefaultQuiet    = 10 * time.Second // cap of the learned quiet window (etrn.quiet)
	DefaultQuietMax = 5 * time.Minute
	DefaultDropIdle = time.Second // settle once nothing can cause traffic (drop.idle)
	DefaultSMTP     = "127.0.0.1:25"
	DefaultDomain   = "localhost" // qualifies bare names in SMTP delivery (Deliver.Domain)

	DefaultSessions      = 4 // local SMTP/LMTP delivery sessions (fetch.deliver.sessions)
	DefaultETRNParallel  = 4 // relays asked at once (etrn.parallel)
	DefaultFetchParallel = 2 // accounts fetched at once (fetch.parallel)

	// The fetch stage's bounds (issue 15): no session or run without an
	// end, no memory sized by a server's claims. assemble's tests check
	// that these equal the fetch package's fallbacks.
	DefaultFetchTimeout = 6 * time.Hour          // fetch.timeout: the run deadline
	DefaultSessionFloor = 2 * time.Minute        // fetch.session_floor
	DefaultMinRate      = 1024                   // fetch.min_rate, bytes a second: slower than any usable modem
	DefaultPerMessage   = 5 * time.Second        // fetch.per_message
	DefaultSlotWait     = 5 * time.Minute        // fetch.slot_wait: below POP3's 10-minute idle logout
	DefaultMaxMessages  = 100000                 // fetch.max_messages: listing entries per mailbox
	DefaultAckWindow    = 1                      // fetch.ack_window: the most one kill -9 duplicates per account
	DefaultRecordSync   = 100 * time.Millisecond // fetch.record_sync: a machine crash duplicates at most this long's deliveries
)

// DefaultPort is the well-known port of proto ("pop3", "imap", "odmr",
// "smtp" for ETRN relays and delivery, "lmtp") for a TLS mode: RFC 8314
// section 7 ports for implicit TLS, else the plaintext/STARTTLS ones.
func DefaultPort(proto string, mode TLSMode) int {
	implicit := mode == TLSImplicit
	switch proto {
	case "pop3":
		if implicit {
			return 995
		}
		return 110
	case "imap":
		if implicit {
			return 993
		}
		return 143
	case "odmr":
		return 366 // RFC 2645 section 3
	case "smtp":
		if implicit {
			return 465
		}
		return 25
	case "lmtp":
		return 24 // RFC 2033 section 5 suggests no port; 24 is the common one
	}
	return 0
}

// Stage names as written in the pipeline.
const (
	StageFlush = "flush"
	StageETRN  = "etrn"
	StageFetch = "fetch"
	StageDrop  = "drop"
	StageExec  = "exec"
)

// validate turns the raw structs into a Config, adding a problem for
// everything wrong and going on with the default, so one run of `linkctl
// check` shows every problem at once.
func (c *checker) validate(r *rawConfig) *Config {
	cfg := &Config{File: c.file0()}

	link := r.Link
	if link == nil {
		link = &rawLink{}
	}
	cfg.Link.Watch = c.list(link.Watch, "link.watch", true, "expected interface names, globs like wwan*, or default-route")
	for i, w := range cfg.Link.Watch {
		if w == "default-route" {
			continue
		}
		if _, err := path.Match(w, ""); err != nil || len(w) > 15 || strings.ContainsAny(w, "/") {
			c.add(elem(link.Watch, i), fmt.Sprintf("link.watch[%d]", i), fmt.Sprintf("invalid interface name or glob %q", w), "expected e.g. ppp0, wwan*, or default-route")
		}
	}
	if len(cfg.Link.Watch) == 0 {
		cfg.Link.Watch = []string{"default-route"}
	}
	cfg.Link.Settle = c.dur(link.Settle, "link.settle", DefaultSettle)
	cfg.Link.Interval = c.dur(link.Interval, "link.interval", 0)
	cfg.Link.Policies = c.linkPolicies(link)

	cfg.StateDir = c.file(r.StateDir, "state_dir")
	if cfg.StateDir == "" {
		cfg.StateDir = c.env.defaultStateDir()
	}
	cfg.ControlSocket = c.file(r.ControlSocket, "control_socket")
	if cfg.ControlSocket == "" {
		cfg.ControlSocket = c.env.defaultControlSocket(cfg.StateDir)
	}
	cfg.MetricsFile = c.file(r.MetricsFile, "metrics_file")

	lg := r.Log
	if lg == nil {
		lg = &rawLog{}
	}
	cfg.Log.File = c.file(lg.File, "log.file")
	cfg.Log.Syslog = c.boolean(lg.Syslog, "log.syslog", false)
	cfg.Log.Level = c.oneOf(lg.Level, "log.level", "info", "info", "debug", "trace")
	cfg.Log.Format = c.oneOf(lg.Format, "log.format", "text", "text", "json")

	cfg.Flush = c.flush(r.Flush)
	cfg.ETRN = c.etrn(r.ETRN)
	cfg.Fetch = c.fetch(r.Fetch)
	cfg.Drop = c.drop(r.Drop)
	cfg.Dial = c.dial(r.Dial, cfg.Link)
	cfg.Pipeline = c.pipeline(r, cfg)
	return cfg
}

// linkPolicies reads link.policies and the link-level shorthand (metered,
// budget, max_message beside watch), which becomes a last policy matching
// every link.
func (c *checker) linkPolicies(link *rawLink) []LinkPolicy {
	var out []LinkPolicy
	seen := map[string]int{}
	for i, rp := range link.Policies {
		p := fmt.Sprintf("link.policies[%d]", i)
		pol := LinkPolicy{Line: rp.Node.Line}
		pol.Match = c.str(rp.Match, p+".match", "")
		switch {
		case isNull(rp.Match) && !c.wasMisspelt(rp.Node, "match"):
			c.add(rp.Node, p+".match", "missing", "expected an interface name or glob, e.g. wwan0 or ppp*")
		case pol.Match != "":
			if _, err := path.Match(pol.Match, ""); err != nil || len(pol.Match) > 15 || strings.ContainsAny(pol.Match, "/ ") {
				c.add(rp.Match, p+".match", fmt.Sprintf("invalid interface name or glob %q", pol.Match), "expected e.g. wwan0 or ppp*")
			} else if line, dup := seen[pol.Match]; dup {
				c.add(rp.Match, p+".match", fmt.Sprintf("%q is matched already by the policy at line %d", pol.Match, line), "write one policy per link")
			}
			seen[pol.Match] = rp.Node.Line
		}
		c.policyBody(&pol, p, rp.Metered, rp.Budget, rp.MaxMessage)
		out = append(out, pol)
	}
	if !isNull(link.Metered) || link.Budget != nil || !isNull(link.MaxMessage) {
		pol := LinkPolicy{Match: "*", Line: link.Node.Line}
		c.policyBody(&pol, "link", link.Metered, link.Budget, link.MaxMessage)
		out = append(out, pol)
	}
	return out
}

func (c *checker) policyBody(pol *LinkPolicy, p string, metered *yaml.Node, b *rawBudget, maxMsg *yaml.Node) {
	pol.Metered = Metered(c.oneOf(metered, p+".metered", string(MeteredTrue), string(MeteredTrue), string(MeteredFalse), string(MeteredAuto)))
	if b != nil {
		pol.Budget.Run = c.size(b.Run, p+".budget.run")
		pol.Budget.Day = c.size(b.Day, p+".budget.day")
		pol.Budget.Month = c.size(b.Month, p+".budget.month")
		if pol.Budget.Day > 0 && pol.Budget.Month > 0 && pol.Budget.Day > pol.Budget.Month {
			c.add(b.Day, p+".budget.day", "is more than the month's budget", "expected day <= month")
		}
	}
	pol.MaxMessage = c.size(maxMsg, p+".max_message")
}

func (c *checker) file0() string { return c.decoder.file }

// elem is the i-th element of a sequence node, or the node itself.
func elem(n *yaml.Node, i int) *yaml.Node {
	if n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
		return n.Content[i]
	}
	return n
}

func (c *checker) flush(r *rawFlush) Flush {
	if r == nil {
		r = &rawFlush{}
	}
	f := Flush{
		MTA:     c.oneOf(r.MTA, "flush.mta", "auto", "auto", "postfix", "sendmail", "exim", "opensmtpd", "command"),
		Wait:    c.oneOf(r.Wait, "flush.wait", "drained", "drained", "none"),
		Timeout: c.dur(r.Timeout, "flush.timeout", DefaultFlushTO),
		OnError: c.onError(r.OnError, "flush.on_error", Continue),
	}
	f.Command = c.str(r.Command, "flush.command", "")
	f.Args = c.list(r.Args, "flush.args", false, "expected a list of arguments, e.g. [-C, /etc/exim4/second.conf]")
	f.Env = c.envMap(r.Env, "flush.env")
	if f.MTA == "auto" || f.MTA == "command" {
		for _, n := range []struct {
			node *yaml.Node
			key  string
		}{{r.Command, "command"}, {r.Args, "args"}} {
			if !isNull(n.node) {
				c.add(n.node, "flush."+n.key, "only with a named mta", "expected mta: postfix, sendmail, exim or opensmtpd (auto cannot know which binary this is)")
			}
		}
	}
	if f.Command != "" && !filepath.IsAbs(f.Command) && strings.ContainsRune(f.Command, '/') {
		c.add(r.Command, "flush.command", fmt.Sprintf("relative path %q", f.Command), "expected an absolute path, or a bare name found in $PATH")
	}
	f.FlushCommand = c.argv(r.FlushCommand, "flush.flush_command")
	f.ListCommand = c.argv(r.ListCommand, "flush.list_command")
	if f.MTA == "command" {
		if isNull(r.FlushCommand) {
			c.add(r.Node, "flush.flush_command", "missing with mta: command", "expected e.g. [/usr/sbin/sendmail, -q]")
		}
		if isNull(r.ListCommand) && f.Wait == "drained" {
			c.add(r.Node, "flush.list_command", "missing with mta: command and wait: drained", "expected e.g. [/usr/bin/mailq], or wait: none")
		}
	} else {
		for _, n := range []struct {
			node *yaml.Node
			key  string
		}{{r.FlushCommand, "flush_command"}, {r.ListCommand, "list_command"}} {
			if !isNull(n.node) {
				c.add(n.node, "flush."+n.key, "only used with mta: command", "expected mta: command, or remove it")
			}
		}
	}
	return f
}

func (c *checker) etrn(r *rawETRN) ETRN {
	present := r != nil
	if r == nil {
		r = &rawETRN{}
	}
	e := ETRN{
		Quiet:         c.dur(r.Quiet, "etrn.quiet", DefaultQuiet),
		QuietMax:      c.dur(r.QuietMax, "etrn.quiet_max", DefaultQuietMax),
		CountLoopback: c.boolean(r.CountLoopback, "etrn.count_loopback", false),
		Parallel:      c.integer(r.Parallel, "etrn.parallel", DefaultETRNParallel, 1, 64),
		Timeout:       c.dur(r.Timeout, "etrn.timeout", 0),
		OnError:       c.onError(r.OnError, "etrn.on_error", Continue),
	}
	if e.QuietMax < e.Quiet && !isNull(r.QuietMax) {
		c.add(r.QuietMax, "etrn.quiet_max", fmt.Sprintf("%s is shorter than quiet (%s)", e.QuietMax, e.Quiet), "expected quiet_max >= quiet")
	}
	if !isNull(r.Ports) {
		if r.Ports.Kind == yaml.SequenceNode {
			for i, p := range r.Ports.Content {
				e.Ports = append(e.Ports, c.integer(resolve(p), fmt.Sprintf("etrn.ports[%d]", i), 25, 1, 65535))
			}
		} else {
			e.Ports = []int{c.integer(r.Ports, "etrn.ports", 25, 1, 65535)}
		}
	}
	if len(e.Ports) == 0 {
		e.Ports = []int{25}
	}
	if present && len(r.Servers) == 0 && (isNull(r.ServersNode) || r.ServersNode.Kind == yaml.SequenceNode) {
		at := r.ServersNode
		if at == nil {
			at = r.Node
		}
		c.add(at, "etrn.servers", "no server", "expected a list of relays, e.g. - {server: mail.example.net, domains: [example.org]}")
	}
	for i, rs := range r.Servers {
		e.Servers = append(e.Servers, c.etrnServer(&rs, fmt.Sprintf("etrn.servers[%d]", i)))
	}
	return e
}

// defaultTLS is the TLS mode when the config does not say: none for a
// loopback server, else TLS (secure by default, DESIGN.md). A port that is
// the well-known TLS port of the protocol picks implicit, the plaintext
// port picks STARTTLS, so "pop.example.net:110" just works.
func defaultTLS(host string, port int, implicitPort, plainPort int, fallback netconn.TLSMode) netconn.TLSMode {
	switch {
	case netconn.IsLoopback(host):
		return netconn.TLSNone
	case port != 0 && port == implicitPort:
		return netconn.TLSImplicit
	case port != 0 && port == plainPort:
		return netconn.TLSStartTLS
	}
	return fallback
}

func (c *checker) tls(n *yaml.Node, path string) (TLSMode, bool) {
	s := c.oneOf(n, path, "", string(TLSStartTLS), string(TLSImplicit), string(TLSNone))
	return TLSMode(s), s != ""
}

func (c *checker) etrnServer(r *rawETRNServer, p string) ETRNServer {
	s := ETRNServer{Line: r.Node.Line}
	host, port, ok := c.hostPort(r.Server, p+".server")
	if !ok && isNull(r.Server) && !c.wasMisspelt(r.Node, "server") {
		c.add(r.Node, p+".server", "missing", "expected the relay's host[:port]")
	}
	mode, written := c.tls(r.TLS, p+".tls")
	if !written {
		mode = defaultTLS(host, port, DefaultPort("smtp", TLSImplicit), DefaultPort("smtp", TLSStartTLS), netconn.TLSStartTLS)
	}
	s.TLS = mode
	if ok {
		if port == 0 {
			port = DefaultPort("smtp", mode)
		}
		s.Server = netconn.HostPort(host, port)
	}
	s.Trust = c.trust(rawTrust{r.TLSPin, r.CAFile, r.TLSVerify}, p, noTLS(mode, written), "expected tls: starttls or implicit")
	s.Domains = c.list(r.Domains, p+".domains", true, "expected domains as sent with ETRN: example.org, @example.org or #queue")
	if len(s.Domains) == 0 && isNull(r.Domains) && !c.wasMisspelt(r.Node, "domains") {
		c.add(r.Node, p+".domains", "missing", "expected the domains the relay holds mail for, e.g. [example.org]")
	}
	s.Helo = c.word(r.Helo, p+".helo", "", "expected a host name")
	s.Name = c.str(r.Name, p+".name", "")
	s.User = c.str(r.User, p+".user", "")
	s.Password = c.secret(r.Password, r.PasswordFile, r.PasswordCommand, p)
	if s.User != "" && s.Password.IsZero() {
		c.add(r.User, p+".user", "set without a password", "expected password_file, password_command or password too")
	}
	if s.User == "" && !s.Password.IsZero() && isNull(r.User) && !c.wasMisspelt(r.Node, "user") {
		c.add(r.Node, p+".user", "missing while a password is set", "expected the user to authenticate as")
	}
	s.Timeout = c.dur(r.Timeout, p+".timeout", 0)
	return s
}

func (c *checker) deliver(r *rawDeliver, p string, def Deliver) Deliver {
	if r == nil {
		return def
	}
	d := Deliver{Sessions: c.integer(r.Sessions, p+".sessions", DefaultSessions, 1, 64)}
	if !isNull(r.SMTP) {
		d.Domain = DefaultDomain
	}
	if !isNull(r.Domain) {
		dom := c.str(r.Domain, p+".domain", "")
		switch {
		case isNull(r.SMTP):
			c.add(r.Domain, p+".domain", "applies only to smtp delivery", "expected no domain key for lmtp, mda or maildir (they get bare user names)")
		case dom == "" || strings.ContainsAny(dom, "@<> \t\r\n,;") || strings.HasPrefix(dom, ".") || strings.HasSuffix(dom, "."):
			c.add(r.Domain, p+".domain", fmt.Sprintf("invalid domain %q", dom), "expected a domain name such as example.org or localhost")
		default:
			d.Domain = dom
		}
	}
	n := 0
	if !isNull(r.SMTP) {
		n++
		if host, port, ok := c.hostPort(r.SMTP, p+".smtp"); ok {
			if port == 0 {
				port = DefaultPort("smtp", TLSNone)
			}
			d.SMTP = netconn.HostPort(host, port)
		}
	}
	// Secure by default (DESIGN.md): mail handed to an MTA on another host
	// crosses a network, so STARTTLS is required there unless the config
	// says tls: none.
	switch tls := TLSMode(c.str(r.TLS, p+".tls", "")); tls {
	case "":
		if d.SMTP != "" && !netconn.IsLoopback(d.SMTP) {
			d.TLS = TLSStartTLS
		} else {
			d.TLS = TLSNone
		}
	case TLSStartTLS, TLSNone:
		if isNull(r.SMTP) {
			c.add(r.TLS, p+".tls", "applies only to smtp delivery", "expected no tls key for lmtp, mda or maildir")
		}
		d.TLS = tls
	default:
		c.add(r.TLS, p+".tls", fmt.Sprintf("unknown mode %q", tls), "expected starttls or none")
	}
	switch {
	case isNull(r.SMTP):
		d.Trust = c.trust(rawTrust{r.TLSPin, r.CAFile, r.Verify}, p, "applies only to smtp delivery", "expected no tls_pin, ca_file or tls_verify for lmtp, mda or maildir")
	default:
		d.Trust = c.trust(rawTrust{r.TLSPin, r.CAFile, r.Verify}, p, noTLS(d.TLS, !isNull(r.TLS)), "expected tls: starttls")
	}
	if !isNull(r.LMTP) {
		n++
		s := c.str(r.LMTP, p+".lmtp", "")
		switch {
		case s == "":
		case strings.HasPrefix(s, "/") || strings.HasPrefix(s, "~/") || strings.HasPrefix(s, "./"):
			d.LMTP = c.path(r.LMTP, p+".lmtp", s) // a unix socket
		default:
			if host, port, ok := c.hostPort(r.LMTP, p+".lmtp"); ok {
				if port == 0 {
					port = DefaultPort("lmtp", TLSNone)
				}
				d.LMTP = netconn.HostPort(host, port)
			}
		}
	}
	if !isNull(r.MDA) {
		n++
		d.MDA = c.argv(r.MDA, p+".mda")
		for i, a := range d.MDA {
			if a != "%F" && a != "%T" && (strings.Contains(a, "%F") || strings.Contains(a, "%T")) {
				c.add(elem(r.MDA, i), fmt.Sprintf("%s.mda[%d]", p, i), fmt.Sprintf("%q embeds %%F or %%T", a), "expected %F and %T as arguments of their own, e.g. [procmail, -f, %F]")
			}
		}
	}
	if !isNull(r.Maildir) {
		n++
		d.Maildir = c.file(r.Maildir, p+".maildir")
	}
	switch {
	case n == 0:
		c.add(r.Node, p, "names no target", "expected exactly one of smtp, lmtp, mda, maildir")
		return def
	case n > 1:
		c.add(r.Node, p, "names more than one target", "expected exactly one of smtp, lmtp, mda, maildir")
	}
	return d
}

func (c *checker) fetch(r *rawFetch) Fetch {
	present := r != nil
	if r == nil {
		r = &rawFetch{}
	}
	f := Fetch{
		Parallel: c.integer(r.Parallel, "fetch.parallel", DefaultFetchParallel, 1, 64),
		Received: c.boolean(r.Received, "fetch.received", true),
		Timeout:  c.dur(r.Timeout, "fetch.timeout", DefaultFetchTimeout),
		OnError:  c.onError(r.OnError, "fetch.on_error", Continue),

		SessionFloor: c.dur(r.SessionFloor, "fetch.session_floor", DefaultSessionFloor),
		PerMessage:   c.dur(r.PerMessage, "fetch.per_message", DefaultPerMessage),
		SlotWait:     c.dur(r.SlotWait, "fetch.slot_wait", DefaultSlotWait),
		AckWindow:    c.integer(r.AckWindow, "fetch.ack_window", DefaultAckWindow, 1, 1024),
		RecordSync:   c.dur(r.RecordSync, "fetch.record_sync", DefaultRecordSync),
	}
	// Every bound is positive: "none" is what issue 15 took away.
	if f.Timeout <= 0 && !isNull(r.Timeout) {
		c.add(r.Timeout, "fetch.timeout", "must be positive", "expected a run deadline, e.g. 6h: a fetch without an end can hold a paid link forever")
		f.Timeout = DefaultFetchTimeout
	}
	if f.SessionFloor <= 0 && !isNull(r.SessionFloor) {
		c.add(r.SessionFloor, "fetch.session_floor", "must be positive", "expected a duration, e.g. 2m")
		f.SessionFloor = DefaultSessionFloor
	}
	f.MinRate = DefaultMinRate
	if !isNull(r.MinRate) {
		if f.MinRate = c.size(r.MinRate, "fetch.min_rate"); f.MinRate <= 0 {
			c.add(r.MinRate, "fetch.min_rate", "must be positive", "expected bytes a second, e.g. 1k")
			f.MinRate = DefaultMinRate
		}
	}
	maxMessages := c.integer(r.MaxMessages, "fetch.max_messages", DefaultMaxMessages, 1, 1<<30)
	f.Deliver = c.deliver(r.Deliver, "fetch.deliver", Deliver{SMTP: DefaultSMTP, Sessions: DefaultSessions, TLS: TLSNone, Domain: DefaultDomain})
	if present && len(r.Accounts) == 0 && (isNull(r.AccountsNode) || r.AccountsNode.Kind == yaml.SequenceNode) {
		at := r.AccountsNode
		if at == nil {
			at = r.Node
		}
		c.add(at, "fetch.accounts", "no account", "expected a list of mailboxes, e.g. - {proto: pop3, server: pop.example.net, user: me, password_file: /etc/linkctl/isp.pass, to: me}")
	}
	names := map[string]int{}
	for i, ra := range r.Accounts {
		p := fmt.Sprintf("fetch.accounts[%d]", i)
		a := c.account(&ra, p, f.Deliver)
		a.MaxMessages = c.integer(ra.MaxMessages, p+".max_messages", maxMessages, 1, 1<<30)
		if _, dup := names[a.Name]; dup && isNull(ra.Name) && a.User != "" {
			// Several users on one server (fetchmail's "user a, user b"):
			// tell the defaulted names apart by user.
			a.Name = a.User + "@" + a.Name
		}
		if line, dup := names[a.Name]; dup && a.Name != "" {
			at := ra.Name
			if at == nil {
				at = ra.Node
			}
			c.add(at, p+".name", fmt.Sprintf("duplicate account name %q (first at line %d)", a.Name, line), "expected a unique name per account")
		} else {
			names[a.Name] = a.Line
		}
		f.Accounts = append(f.Accounts, a)
	}
	return f
}

func (c *checker) account(r *rawAccount, p string, def Deliver) Account {
	a := Account{Line: r.Node.Line}
	a.Proto = Proto(c.oneOf(r.Proto, p+".proto", "", string(POP3), string(IMAP), string(ODMR)))
	if isNull(r.Proto) && !c.wasMisspelt(r.Node, "proto") {
		c.add(r.Node, p+".proto", "missing", "expected pop3, imap or odmr")
	}
	imap := a.Proto == IMAP

	a.Plugin = c.argv(r.Plugin, p+".plugin")
	host, port, ok := c.hostPort(r.Server, p+".server")
	if isNull(r.Server) && !c.wasMisspelt(r.Node, "server") {
		c.add(r.Node, p+".server", "missing", "expected the mail server's host[:port]")
	}
	mode, written := c.tls(r.TLS, p+".tls")
	switch {
	case len(a.Plugin) > 0:
		// Over a plugin the stream is the tunnel's business (issue 9).
		if written && mode != netconn.TLSNone {
			c.add(r.TLS, p+".tls", "does not apply over a plugin", "expected no tls key; the plugin secures the stream")
		}
		mode = netconn.TLSNone
	case written:
	default:
		mode = accountTLS(a.Proto, host, port)
	}
	a.TLS = mode
	if len(a.Plugin) > 0 {
		a.Trust = c.trust(rawTrust{r.TLSPin, r.CAFile, r.TLSVerify}, p, "does not apply over a plugin", "expected none of tls_pin, ca_file, tls_verify; the plugin secures the stream")
	} else {
		a.Trust = c.trust(rawTrust{r.TLSPin, r.CAFile, r.TLSVerify}, p, noTLS(mode, written), "expected tls: implicit or starttls")
	}
	a.TLS = mode
	if ok {
		if port == 0 {
			port = DefaultPort(string(a.Proto), mode)
		}
		a.Server = netconn.HostPort(host, port)
	}
	a.Name = c.str(r.Name, p+".name", "")
	if a.Name == "" {
		a.Name, _ = c.scalar(r.Server, p+".server", "")
	}

	a.User = c.str(r.User, p+".user", "")
	a.Password = c.secret(r.Password, r.PasswordFile, r.PasswordCommand, p)
	a.Auth = c.auth(r.Auth, p+".auth")
	if a.Auth == AuthAPOP && a.Proto != POP3 {
		c.add(r.Auth, p+".auth", "apop is for pop3 only", "expected one of: "+strings.Join(authmech.Names(), ", "))
	}
	// A plugin without a password (or auth: external) runs the server as
	// the user already: no login (fetchmail's auth ssh). A plugin with a
	// password logs in, so it needs the user too.
	a.PreAuth = a.Auth == AuthExternal || (len(a.Plugin) > 0 && a.Password.IsZero())
	// RFC 2645 section 4.1: ODMR authenticates even over a tunnel.
	preauth := a.PreAuth && a.Proto != ODMR
	if a.User == "" && isNull(r.User) && !preauth && !c.wasMisspelt(r.Node, "user") {
		c.add(r.Node, p+".user", "missing", "expected the login name on the server")
	}
	if a.Password.IsZero() && !preauth && isNull(r.Password) && isNull(r.PasswordFile) && isNull(r.PasswordCommand) &&
		!c.wasMisspelt(r.Node, "password", "password_file", "password_command") {
		c.add(r.Node, p+".password_file", "no password given", "expected one of password_file, password_command, password")
	}

	a.Keep = c.boolean(r.Keep, p+".keep", false)
	a.FetchAll = c.boolean(r.FetchAll, p+".fetchall", false)
	a.Limit = c.size(r.Limit, p+".limit")
	a.FetchLimit = c.integer(r.FetchLimit, p+".fetchlimit", 0, 0, 1<<30)
	a.CommitEvery = c.integer(r.CommitEvery, p+".commit_every", 0, 0, 1<<30)
	a.KeepDays = c.integer(r.KeepDays, p+".keep_days", 0, 0, 100000)
	if a.KeepDays > 0 && !a.Keep {
		c.add(r.KeepDays, p+".keep_days", "set without keep: true", "expected keep: true; without keep mail is deleted at once")
	}
	a.Timeout = c.dur(r.Timeout, p+".timeout", 0)

	// IMAP-only keys.
	imapOnly := func(n *yaml.Node, key string) {
		if !isNull(n) && !imap && a.Proto != "" {
			c.add(n, p+"."+key, "only for proto imap", "expected proto: imap, or remove it")
		}
	}
	for _, k := range []struct {
		n   *yaml.Node
		key string
	}{{r.Folders, "folders"}, {r.Folder, "folder"}, {r.Unseen, "unseen"}, {r.MarkSeen, "mark_seen"},
		{r.MoveTo, "move_to"}, {r.Expunge, "expunge"}, {r.Idle, "idle"}, {r.Compress, "compress"}} {
		imapOnly(k.n, k.key)
	}
	if !isNull(r.Folders) && !isNull(r.Folder) {
		c.add(r.Folder, p+".folder", "given together with folders", "expected one of folder, folders")
	}
	// Folder names may hold blanks ("Sent Items"): read them as text.
	for _, fn := range []struct {
		n   *yaml.Node
		key string
	}{{r.Folders, "folders"}, {r.Folder, "folder"}} {
		if isNull(fn.n) {
			continue
		}
		if fn.n.Kind == yaml.SequenceNode && c.visit(fn.n, len(fn.n.Content)) {
			for i, e := range fn.n.Content {
				if s := c.str(resolve(e), fmt.Sprintf("%s.%s[%d]", p, fn.key, i), ""); s != "" {
					a.Folders = append(a.Folders, s)
				}
			}
		} else if s := c.str(fn.n, p+"."+fn.key, ""); s != "" {
			a.Folders = append(a.Folders, s)
		}
	}
	a.Unseen = c.boolean(r.Unseen, p+".unseen", false)
	a.MarkSeen = c.boolean(r.MarkSeen, p+".mark_seen", false)
	if a.MarkSeen && !a.Keep {
		c.add(r.MarkSeen, p+".mark_seen", "set without keep: true", "expected keep: true; fetched mail is deleted otherwise")
	}
	a.MoveTo = c.str(r.MoveTo, p+".move_to", "")
	if a.MoveTo != "" && a.Keep {
		c.add(r.MoveTo, p+".move_to", "conflicts with keep: true", "expected either keep (leave mail) or move_to (move it)")
	}
	a.Expunge = c.oneOf(r.Expunge, p+".expunge", "", "auto", "all")
	a.Idle = c.boolean(r.Idle, p+".idle", false)
	a.Compress = c.oneOf(r.Compress, p+".compress", "", "auto", "on", "off")
	if imap {
		if len(a.Folders) == 0 {
			a.Folders = []string{"INBOX"}
		}
		if a.Expunge == "" {
			a.Expunge = "auto"
		}
		if a.Compress == "" {
			a.Compress = "auto"
		}
	}

	a.Domains = c.list(r.Domains, p+".domains", true, "expected domains to ask for with ATRN")
	if !isNull(r.Domains) && a.Proto != ODMR && a.Proto != "" {
		c.add(r.Domains, p+".domains", "only for proto odmr", "expected proto: odmr; for multidrop use localdomains")
	}

	a.Deliver = c.deliver(r.Deliver, p+".deliver", def)

	// Recipients and multidrop.
	a.To = c.list(r.To, p+".to", true, "expected local user names or addresses")
	a.LocalDomains = c.list(r.LocalDomains, p+".localdomains", true, "expected domain names")
	a.Envelope = c.word(r.Envelope, p+".envelope", "", "expected a header name such as Delivered-To, or none")
	if a.Envelope != "" && a.Envelope != "none" && !validHeaderName(a.Envelope) {
		c.add(r.Envelope, p+".envelope", fmt.Sprintf("invalid header name %q", a.Envelope), "expected e.g. Delivered-To, X-Original-To, Envelope-To, or none")
	}
	a.QVirtual = c.str(r.QVirtual, p+".qvirtual", "")
	multidrop := a.Envelope != "" && a.Envelope != "none"
	if len(a.LocalDomains) > 0 && !multidrop {
		c.add(r.LocalDomains, p+".localdomains", "multidrop needs an envelope header", "expected envelope: Delivered-To (or the header your ISP sets); linkctl does not guess recipients from To/Cc")
	}
	if a.QVirtual != "" && !multidrop {
		c.add(r.QVirtual, p+".qvirtual", "set without an envelope header", "expected envelope: HEADER too")
	}
	if slices.Contains(a.To, "*") && !(multidrop && len(a.LocalDomains) > 0) {
		c.add(r.To, p+".to", `"*" (every local recipient) needs multidrop`, "expected envelope: HEADER and localdomains: [...] too")
	}
	if multidrop && len(a.LocalDomains) == 0 && isNull(r.LocalDomains) {
		c.add(r.Envelope, p+".localdomains", "missing with an envelope header", "expected the domains whose recipients are local")
	}
	needTo := a.Deliver.SMTP != "" || a.Deliver.LMTP != "" || slices.Contains(a.Deliver.MDA, "%T")
	if needTo && len(a.To) == 0 && isNull(r.To) && a.Proto != ODMR && !c.wasMisspelt(r.Node, "to") {
		what := "SMTP/LMTP delivery needs a recipient"
		if a.Deliver.SMTP == "" && a.Deliver.LMTP == "" {
			what = "the mda command uses %T"
		}
		c.add(r.Node, p+".to", "missing: "+what, "expected the local user, e.g. to: chavez")
	}
	return a
}

// auth reads `auth:` (auto when absent) with the parser of package
// authmech, whose type the stages take: what passes here is what they
// switch over.
func (c *checker) auth(n *yaml.Node, path string) Auth {
	expected := "expected one of: " + strings.Join(authmech.Names(), ", ")
	s, ok := c.scalar(n, path, expected)
	if !ok {
		return AuthAuto
	}
	if strings.EqualFold(s, "cram-md5") {
		// Neither the POP3 nor the IMAP client speaks CRAM-MD5, and it adds
		// nothing over TLS (RFC 8314 section 1: PLAIN inside TLS); refused
		// here, so that check and a run agree.
		c.add(n, path, "cram-md5 is not supported for fetching", "expected plain or login over TLS (or apop for pop3), or auto")
		return AuthAuto
	}
	m, err := authmech.Parse(s)
	if err != nil {
		c.add(n, path, fmt.Sprintf("invalid value %q", s), expected)
		return AuthAuto
	}
	return m
}

// accountTLS is an account's TLS mode when the config does not say.
func accountTLS(proto Proto, host string, port int) TLSMode {
	switch proto {
	case POP3, IMAP:
		return defaultTLS(host, port, DefaultPort(string(proto), TLSImplicit), DefaultPort(string(proto), TLSStartTLS), TLSImplicit)
	}
	// odmr: SMTP-like, STARTTLS on its own port (RFC 2645)
	return defaultTLS(host, port, 0, DefaultPort(string(ODMR), TLSStartTLS), TLSStartTLS)
}

// validHeaderName: RFC 5322 section 2.2, printable ASCII except colon.
func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return s != ""
}

func (c *checker) drop(r *rawDrop) Drop {
	present := r != nil
	if r == nil {
		r = &rawDrop{}
	}
	d := Drop{
		Command:   c.argv(r.Command, "drop.command"),
		Interface: c.word(r.Interface, "drop.interface", "", "expected an interface name such as ppp0"),
		Idle:      c.dur(r.Idle, "drop.idle", DefaultDropIdle),
		Timeout:   c.dur(r.Timeout, "drop.timeout", 0),
		OnError:   c.onError(r.OnError, "drop.on_error", Continue),
	}
	if len(d.Interface) > 15 {
		c.add(r.Interface, "drop.interface", fmt.Sprintf("%q is longer than an interface name can be", d.Interface), "expected at most 15 characters")
	}
	if present && isNull(r.Command) && isNull(r.Interface) {
		c.add(r.Node, "drop", "says neither how to hang up", "expected command: [poff, provider] or interface: ppp0")
	}
	if !isNull(r.Command) && !isNull(r.Interface) {
		c.add(r.Interface, "drop", "has both command and interface", "expected exactly one of them")
	}
	return d
}

// pipeline reads the pipeline, or builds the default one: flush, etrn,
// fetch for the sections present, side by side in one group (outbound mail
// uses the uplink, inbound the downlink; none waits for another), then
// drop if there is a drop section.
func (c *checker) pipeline(r *rawConfig, cfg *Config) []Step {
	present := map[string]bool{StageFlush: r.Flush != nil, StageETRN: r.ETRN != nil, StageFetch: r.Fetch != nil, StageDrop: r.Drop != nil}
	sectionLine := func(stage string) int {
		var n *yaml.Node
		switch stage {
		case StageFlush:
			if r.Flush != nil {
				n = r.Flush.Node
			}
		case StageETRN:
			if r.ETRN != nil {
				n = r.ETRN.Node
			}
		case StageFetch:
			if r.Fetch != nil {
				n = r.Fetch.Node
			}
		case StageDrop:
			if r.Drop != nil {
				n = r.Drop.Node
			}
		}
		if n != nil {
			return n.Line
		}
		return 0
	}
	var steps []Step
	if isNull(r.Pipeline) {
		g := Step{OnError: Continue}
		for _, s := range []string{StageFlush, StageETRN, StageFetch} {
			if present[s] {
				st := c.stageStep(s, cfg, sectionLine(s))
				if st.OnError == Stop {
					g.OnError = Stop
				}
				g.Group = append(g.Group, st)
			}
		}
		switch len(g.Group) {
		case 0:
		case 1:
			steps = append(steps, g.Group[0])
		default:
			names := make([]string, len(g.Group))
			for i, st := range g.Group {
				names[i] = st.Name
			}
			g.Name, g.Line = strings.Join(names, "+"), g.Group[0].Line
			steps = append(steps, g)
		}
		if present[StageDrop] {
			steps = append(steps, c.stageStep(StageDrop, cfg, sectionLine(StageDrop)))
		}
		if len(steps) == 0 {
			at := r.Pipeline
			if at == nil {
				at = r.Node
			}
			c.add(at, "pipeline", "nothing to do", "expected a flush, etrn, fetch or drop section, or a pipeline with exec steps")
		}
		return steps
	}
	if r.Pipeline.Kind != yaml.SequenceNode {
		c.add(r.Pipeline, "pipeline", "is "+describe(r.Pipeline)+", not a list", "expected a list of stages, e.g. [flush, etrn, fetch]")
		return nil
	}
	if len(r.Pipeline.Content) == 0 {
		c.add(r.Pipeline, "pipeline", "is empty", "expected a list of stages, e.g. [flush, etrn, fetch]")
	}
	names := map[string]bool{}
	for i, item := range r.Pipeline.Content {
		p := fmt.Sprintf("pipeline[%d]", i)
		item = resolve(item)
		if item.Kind == yaml.SequenceNode {
			g := Step{Line: item.Line, OnError: Continue}
			if len(item.Content) == 0 {
				c.add(item, p, "is an empty group", "expected stages to run at the same time, e.g. [flush, etrn]")
			}
			var gn []string
			for j, m := range item.Content {
				mp := fmt.Sprintf("%s[%d]", p, j)
				if resolve(m).Kind == yaml.SequenceNode {
					c.add(m, mp, "groups cannot nest", "expected a stage name or {stage: ...} / {exec: [...]}")
					continue
				}
				s, ok := c.step(m, mp, cfg, present)
				if !ok {
					continue
				}
				if s.Stage == StageDrop {
					c.add(m, mp, "drop cannot run at the same time as other stages", "expected drop as the last step of its own")
				}
				if s.OnError == Stop {
					g.OnError = Stop
				}
				g.Group = append(g.Group, s)
				gn = append(gn, s.Name)
			}
			g.Name = strings.Join(gn, "+")
			steps = append(steps, g)
			continue
		}
		if s, ok := c.step(item, p, cfg, present); ok {
			if s.Stage == StageDrop && i != len(r.Pipeline.Content)-1 {
				c.add(item, p, "drop must be the last step", "expected drop at the end: the link goes after everything else is done")
			}
			steps = append(steps, s)
		}
	}
	// Names show in events and status: make defaulted ones unique.
	var uniq func(ss []Step)
	uniq = func(ss []Step) {
		for i := range ss {
			if len(ss[i].Group) > 0 {
				uniq(ss[i].Group)
				continue
			}
			base, n := ss[i].Name, 2
			for names[ss[i].Name] {
				ss[i].Name = fmt.Sprintf("%s-%d", base, n)
				n++
			}
			names[ss[i].Name] = true
		}
	}
	uniq(steps)
	return steps
}

// stageStep is a bare stage name with its section's timeout and on_error.
func (c *checker) stageStep(stage string, cfg *Config, line int) Step {
	s := Step{Stage: stage, Name: stage, Line: line}
	switch stage {
	case StageFlush:
		s.Timeout, s.OnError = cfg.Flush.Timeout, cfg.Flush.OnError
	case StageETRN:
		s.Timeout, s.OnError = cfg.ETRN.Timeout, cfg.ETRN.OnError
	case StageFetch:
		s.Timeout, s.OnError = cfg.Fetch.Timeout, cfg.Fetch.OnError
	case StageDrop:
		s.Timeout, s.OnError = cfg.Drop.Timeout, cfg.Drop.OnError
	}
	return s
}

var stageNames = []string{StageFlush, StageETRN, StageFetch, StageDrop}

func (c *checker) checkStage(n *yaml.Node, p, name string, present map[string]bool) bool {
	if !slices.Contains(stageNames, name) {
		exp := "expected flush, etrn, fetch, drop, or {exec: [argv...]}"
		if name == StageExec {
			c.add(n, p, "exec needs a command", "expected {exec: [program, args...]}")
		} else {
			c.add(n, p, fmt.Sprintf("unknown stage %q", name), exp)
		}
		return false
	}
	if name != StageFlush && !present[name] {
		c.add(n, p, fmt.Sprintf("stage %q has no %s section", name, name), fmt.Sprintf("expected a top-level %s: section configuring it", name))
		return false
	}
	return true
}

// step reads one pipeline item: a bare name or the map form.
func (c *checker) step(n *yaml.Node, p string, cfg *Config, present map[string]bool) (Step, bool) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode {
		name, ok := c.scalar(n, p, "")
		if !ok || !c.checkStage(n, p, name, present) {
			if !ok && isNull(n) {
				c.add(n, p, "is empty", "expected a stage name")
			}
			return Step{}, false
		}
		s := c.stageStep(name, cfg, n.Line)
		return s, true
	}
	var rs rawStep
	before := len(c.problems)
	c.decodeStruct(n, p, reflectValue(&rs))
	if len(c.problems) > before && n.Kind != yaml.MappingNode {
		return Step{}, false
	}
	var s Step
	switch {
	case !isNull(rs.Stage) && !isNull(rs.Exec):
		c.add(n, p, "has both stage and exec", "expected one of them")
		return Step{}, false
	case !isNull(rs.Exec):
		s = Step{Stage: StageExec, Argv: c.argv(rs.Exec, p+".exec"), OnError: Stop, Line: n.Line}
		if len(s.Argv) == 0 {
			return Step{}, false
		}
		s.Name = filepath.Base(s.Argv[0])
	case !isNull(rs.Stage):
		name := c.str(rs.Stage, p+".stage", "")
		if !c.checkStage(rs.Stage, p+".stage", name, present) {
			return Step{}, false
		}
		s = c.stageStep(name, cfg, n.Line)
	default:
		c.add(n, p, "names no stage", "expected {stage: fetch, ...} or {exec: [argv...], ...}")
		return Step{}, false
	}
	if name := c.word(rs.Name, p+".name", "", "expected a short name without blanks"); name != "" {
		if line, dup := c.stepNames[name]; dup {
			c.add(rs.Name, p+".name", fmt.Sprintf("duplicate step name %q (first at line %d)", name, line), "expected a unique name per step")
		}
		c.stepNames[name] = rs.Name.Line
		s.Name = name
	}
	s.Timeout = c.dur(rs.Timeout, p+".timeout", s.Timeout)
	s.OnError = c.onError(rs.OnError, p+".on_error", s.OnError)
	return s, true
}
