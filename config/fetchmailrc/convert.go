package fetchmailrc

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/linkctl/linkctl/internal/errkind"
)

// Options tune Convert.
type Options struct {
	// InlineSecrets writes passwords into the YAML itself. Set it only when
	// the output goes to a file created 0600: linkctl refuses a group- or
	// world-readable config that holds a secret.
	InlineSecrets bool
	// SecretDir is where password files go when secrets are not inline
	// (default /etc/linkctl). Convert only names the files; the caller
	// writes Result.Secrets with mode 0600.
	SecretDir string
	// LocalUser receives mail for users with no local name, as fetchmail
	// delivers to the user who runs it (default "postmaster").
	LocalUser string
	// Hostname is this host's FQDN, the domain fetchmail asks an ETRN relay
	// for when the entry names no localdomains (default "localhost").
	Hostname string
}

// Result is the converted configuration.
type Result struct {
	YAML     []byte
	Secrets  map[string]string // password file path -> the password (no newline), to be written 0600
	Warnings []string          // "file:line: what linkctl does differently"
}

// deliverSpec is one delivery target as YAML text ("smtp: localhost:25"),
// and for SMTP the domain that qualifies bare names ("" = linkctl's
// default, localhost).
type deliverSpec struct{ key, val, domain string }

// yaml is the spec as a flow mapping.
func (d deliverSpec) yaml() string {
	if d.domain != "" {
		return fmt.Sprintf("{%s: %s, domain: %s}", d.key, d.val, quote(d.domain))
	}
	return fmt.Sprintf("{%s: %s}", d.key, d.val)
}

type account struct {
	name    string
	lines   []string // "key: value" lines of the account
	notes   []string // "# ..." comment lines
	deliver deliverSpec
}

type converter struct {
	rc       *RC
	opts     Options
	res      *Result
	names    map[string]int
	accounts []*account
	etrn     []*account
	notes    []string // top-level comments
	pre      [][]string
	post     [][]string
}

// Convert turns rc into a linkctl.yaml. Options linkctl cannot express
// become "# fetchmail:" comments in the YAML and warnings in the result.
func Convert(rc *RC, opts Options) (*Result, error) {
	if opts.SecretDir == "" {
		opts.SecretDir = "/etc/linkctl"
	}
	if opts.LocalUser == "" {
		opts.LocalUser = "postmaster"
	}
	if opts.Hostname == "" {
		opts.Hostname = "localhost"
	}
	c := &converter{rc: rc, opts: opts, res: &Result{Secrets: map[string]string{}}, names: map[string]int{}}
	for _, e := range rc.Entries {
		c.entry(e)
	}
	if len(c.accounts) == 0 && len(c.etrn) == 0 {
		return nil, errkind.New(errkind.Usage, false, "import "+rc.File,
			"no poll entry to convert (skip entries are left out): add a poll entry or write the config by hand")
	}
	return c.res, c.write()
}

// warn records a difference both as a warning and as a comment.
func (c *converter) warn(pos Pos, notes *[]string, format string, args ...any) {
	msg := strings.NewReplacer("\n", " ", "\r", " ").Replace(fmt.Sprintf(format, args...))
	c.res.Warnings = append(c.res.Warnings, fmt.Sprintf("%s:%d: %s", c.rc.File, pos.Line, msg))
	*notes = append(*notes, fmt.Sprintf("# fetchmail (line %d): %s", pos.Line, msg))
}

func (c *converter) uniqueName(base string) string {
	base = strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e || r == '/' || r == '\\' {
			return '_'
		}
		return r
	}, base)
	if base == "" {
		base = "account"
	}
	c.names[base]++
	if n := c.names[base]; n > 1 {
		return fmt.Sprintf("%s-%d", base, n)
	}
	return base
}

var servicePorts = map[string]int{"pop3": 110, "pop3s": 995, "imap": 143, "imap2": 143, "imaps": 993,
	"smtp": 25, "submission": 587, "smtps": 465, "lmtp": 24, "odmr": 366}

func (c *converter) entry(e *Entry) {
	if e.Skip {
		c.warn(e.Pos, &c.notes, "skip entry %q not converted: fetchmail polls it only when named on its command line", e.Name)
		return
	}
	proto := e.Proto
	if proto == "" {
		proto = "auto"
	}
	for _, u := range e.Users {
		if proto == "etrn" {
			c.etrnEntry(e, u)
			break // ETRN has no users: one relay per entry
		}
		c.account(e, u, proto)
	}
}

func (c *converter) port(e *Entry, notes *[]string) string {
	if e.Port == "" {
		return ""
	}
	if n, err := strconv.Atoi(e.Port); err == nil && n > 0 && n < 65536 {
		return strconv.Itoa(n)
	}
	if n, ok := servicePorts[strings.ToLower(e.Port)]; ok {
		return strconv.Itoa(n)
	}
	c.warn(e.Pos, notes, "service %q unknown: the default port is used", e.Port)
	return ""
}

func hostPort(host, port string) string {
	if port == "" {
		return host
	}
	return net.JoinHostPort(host, port)
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tls decides the tls key. fetchmail without `ssl` uses STARTTLS only when
// the server offers it; linkctl refuses that silent downgrade, so a server
// that offers no STARTTLS needs tls: none written out.
func (c *converter) tls(e *Entry, u *User, notes *[]string) string {
	switch {
	case e.Plugin != "":
		return "none"
	case u.SSL != nil && *u.SSL:
		return "implicit"
	case u.SSLProto != nil && *u.SSLProto == "":
		c.warn(u.Pos, notes, `sslproto "" turned TLS off: tls: none sends the password in clear`)
		return "none"
	case isLoopback(e.Host()):
		return "none"
	}
	*notes = append(*notes, "# fetchmail used STARTTLS only when offered; linkctl requires it. If this server has no TLS, write tls: none.")
	return "starttls"
}

func (c *converter) userOptions(u *User, notes *[]string) {
	if u.SSLCertCk != nil && !*u.SSLCertCk {
		c.warn(u.Pos, notes, "no sslcertck: linkctl always verifies certificates (install the server's CA instead)")
	}
	if u.SSLProto != nil && *u.SSLProto != "" {
		c.warn(u.Pos, notes, "sslproto %q: linkctl negotiates TLS 1.2 or newer", *u.SSLProto)
	}
	if u.Flush != nil && *u.Flush {
		c.warn(u.Pos, notes, "flush: linkctl deletes only the messages it delivered; old messages stay on the server")
	}
	if u.BatchLimit != nil {
		c.warn(u.Pos, notes, "batchlimit %d: linkctl sends each local SMTP session as many messages as it has", *u.BatchLimit)
	}
	for _, o := range u.Other {
		c.other(o, notes)
	}
}

func (c *converter) other(o Option, notes *[]string) {
	args := o.Args
	if o.Name == "esmtppassword" || o.Name == "sslkey" {
		args = []string{"***"}
	}
	if o.Name == "smtpaddress" {
		return // deliver.domain (converter.deliver)
	}
	if o.Name == "mapping" {
		c.warn(o.Pos, notes, "mapping %q=%q: linkctl maps no remote names; mail for it goes to the account's to", o.Args[0], o.Args[1])
		return
	}
	text := o.Name
	if len(args) > 0 {
		text += " " + strings.Join(args, " ")
	}
	c.warn(o.Pos, notes, "%q has no linkctl equivalent and is left out", text)
}

// shellMeta are the characters that make a command need a shell.
var shellMeta = regexp.MustCompile("[|&;<>()$`*?~{}\\[\\]!\\n]")

// splitArgv splits a command line the way sh splits plain words and quotes.
// ok is false when the command needs a shell (pipes, redirections,
// variables, globs) and so cannot be an argv.
func splitArgv(s string) (argv []string, ok bool) {
	var cur strings.Builder
	in := false
	var quote byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote == '\'':
			if ch == '\'' {
				quote = 0
			} else {
				cur.WriteByte(ch)
			}
		case quote == '"':
			switch {
			case ch == '"':
				quote = 0
			case ch == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0:
				i++
				cur.WriteByte(s[i])
			case ch == '$' || ch == '`':
				return nil, false
			default:
				cur.WriteByte(ch)
			}
		case ch == '\'' || ch == '"':
			quote, in = ch, true
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			in = true
		case ch == ' ' || ch == '\t':
			if in {
				argv = append(argv, cur.String())
				cur.Reset()
				in = false
			}
		case shellMeta.MatchString(string(ch)):
			return nil, false
		default:
			cur.WriteByte(ch)
			in = true
		}
	}
	if quote != 0 {
		return nil, false
	}
	if in {
		argv = append(argv, cur.String())
	}
	return argv, len(argv) > 0
}

func (c *converter) deliver(e *Entry, u *User, notes *[]string) deliverSpec {
	d := c.deliverTarget(u, notes)
	// fetchmail appends smtpaddress, else the smtphost's name, to bare
	// names in RCPT TO; linkctl's deliver.domain does the same (default
	// localhost, which is also fetchmail's default smtphost).
	addr := ""
	for _, o := range u.Other {
		if o.Name == "smtpaddress" && len(o.Args) == 1 {
			addr = o.Args[0]
		}
	}
	switch {
	case d.key != "smtp":
		if addr != "" {
			c.warn(u.Pos, notes, "smtpaddress %s: only SMTP delivery qualifies names; %s gets them bare", addr, d.key)
		}
	case addr != "":
		d.domain = addr
	case len(u.SMTPHosts) > 0:
		host, _, _ := strings.Cut(u.SMTPHosts[0], "/")
		if host != "localhost" && net.ParseIP(host) == nil && !strings.HasPrefix(host, "/") {
			d.domain = host
		}
	}
	return d
}

// deliverTarget is where u's mail goes: mda, lmtp or smtp.
func (c *converter) deliverTarget(u *User, notes *[]string) deliverSpec {
	if u.MDA != "" {
		argv, ok := splitArgv(u.MDA)
		if !ok {
			c.warn(u.Pos, notes, "mda %q needs a shell: linkctl runs an argv without one; delivering by SMTP to localhost:25 instead (rewrite it as deliver: {mda: [...]})", u.MDA)
			return deliverSpec{key: "smtp", val: quote("localhost:25")}
		}
		for _, a := range argv {
			if a != "%T" && a != "%F" && (strings.Contains(a, "%T") || strings.Contains(a, "%F")) {
				c.warn(u.Pos, notes, "mda argument %q: linkctl replaces %%T and %%F only as whole arguments", a)
			}
			if strings.ContainsAny(a, "%") && a != "%T" && a != "%F" && !strings.Contains(a, "%T") && !strings.Contains(a, "%F") {
				c.warn(u.Pos, notes, "mda argument %q: linkctl expands only %%T and %%F", a)
			}
		}
		return deliverSpec{key: "mda", val: flow(argv)}
	}
	lmtp := u.LMTP != nil && *u.LMTP
	if len(u.SMTPHosts) > 1 {
		c.warn(u.Pos, notes, "smtphost %s: linkctl delivers to the first only, with no fallback", strings.Join(u.SMTPHosts, " "))
	}
	if len(u.SMTPHosts) == 0 {
		if lmtp {
			c.warn(u.Pos, notes, "lmtp without smtphost: assuming localhost:24")
			return deliverSpec{key: "lmtp", val: quote("localhost:24")}
		}
		return deliverSpec{key: "smtp", val: quote("localhost:25")}
	}
	h := u.SMTPHosts[0]
	key := "smtp"
	if lmtp {
		key = "lmtp"
	}
	if strings.HasPrefix(h, "/") { // a unix socket: LMTP only
		return deliverSpec{key: "lmtp", val: quote(h)}
	}
	host, port, found := strings.Cut(h, "/")
	if !found {
		port = "25"
		if lmtp {
			port = "24"
		}
	}
	return deliverSpec{key: key, val: quote(net.JoinHostPort(host, port))}
}

func (c *converter) password(name string, u *User, lines *[]string, notes *[]string) {
	if u.Password == nil {
		// fetchmail asked for it on the terminal; linkctl runs unattended.
		path := filepath.Join(c.opts.SecretDir, name+".pass")
		*lines = append(*lines, "password_file: "+quote(path))
		c.warn(u.Pos, notes, "no password in the file (fetchmail asked for it): put it into %s, mode 0600", path)
		return
	}
	if c.opts.InlineSecrets {
		*lines = append(*lines, "password: "+quote(*u.Password))
		return
	}
	path := filepath.Join(c.opts.SecretDir, name+".pass")
	c.res.Secrets[path] = *u.Password
	*lines = append(*lines, "password_file: "+quote(path))
}

func (c *converter) etrnEntry(e *Entry, u *User) {
	a := &account{name: e.Name}
	domains := e.LocalDomains
	if len(domains) == 0 {
		domains = []string{c.opts.Hostname}
		a.notes = append(a.notes, "# fetchmail asks an ETRN relay for this host's name when no localdomains are given")
	}
	port := c.port(e, &a.notes)
	if port == "" {
		port = "25"
	}
	a.lines = append(a.lines,
		"server: "+quote(net.JoinHostPort(e.Host(), port)),
		"domains: "+flow(domains),
		"tls: "+c.tls(e, u, &a.notes))
	for _, o := range e.Other {
		c.other(o, &a.notes)
	}
	c.etrn = append(c.etrn, a)
}

func (c *converter) account(e *Entry, u *User, proto string) {
	a := &account{}
	base := e.Name
	if len(e.Users) > 1 && u.Remote != "" {
		base = e.Name + "-" + u.Remote
	}
	a.name = c.uniqueName(base)
	auth := ""
	switch proto {
	case "pop3":
	case "apop":
		proto, auth = "pop3", "apop"
	case "imap":
	case "odmr":
	case "imap-k4", "imap-gss":
		c.warn(e.Pos, &a.notes, "proto %s: linkctl speaks IMAP with LOGIN or SASL PLAIN/XOAUTH2, not Kerberos", proto)
		proto = "imap"
	case "auto":
		c.warn(e.Pos, &a.notes, "proto auto (or none): fetchmail probed IMAP then POP3; linkctl needs the protocol: check proto: imap")
		proto = "imap"
	default: // pop2, rpop, kpop, sdps
		c.warn(e.Pos, &a.notes, "proto %s: linkctl speaks plain POP3 (RFC 1939) here", proto)
		proto = "pop3"
	}
	switch e.Auth {
	case "", "any":
	case "password", "cleartext":
		auth = "password"
	case "ssh", "external":
		auth = "external"
	case "cram-md5":
		auth = "cram-md5"
	default:
		c.warn(e.Pos, &a.notes, "auth %s: linkctl supports password, apop, plain, login, cram-md5, xoauth2, oauthbearer and external; left to auto", e.Auth)
	}
	a.lines = append(a.lines, "name: "+quote(a.name), "proto: "+proto)
	a.lines = append(a.lines, "server: "+quote(hostPort(e.Host(), c.port(e, &a.notes))))
	a.lines = append(a.lines, "tls: "+c.tls(e, u, &a.notes))
	remote := u.Remote
	if remote == "" {
		if len(u.Local) > 0 {
			remote = u.Local[0]
		} else {
			remote = c.opts.LocalUser
		}
	}
	a.lines = append(a.lines, "user: "+quote(remote))
	preauth := e.Plugin != "" && (e.Auth == "" || e.Auth == "ssh" || e.Auth == "external")
	if u.Password != nil || !preauth {
		c.password(a.name, u, &a.lines, &a.notes)
	}
	if auth != "" {
		a.lines = append(a.lines, "auth: "+auth)
	}
	local := u.Local
	if len(local) == 0 {
		local = []string{c.opts.LocalUser}
	}
	a.lines = append(a.lines, "to: "+flow(local))
	if e.Plugin != "" {
		argv, ok := splitArgv(e.Plugin)
		if ok {
			a.lines = append(a.lines, "plugin: "+flow(argv))
		} else {
			a.lines = append(a.lines, "plugin: "+flow([]string{"/bin/sh", "-c", e.Plugin}))
			c.warn(e.Pos, &a.notes, "plugin needs a shell: written as /bin/sh -c; prefer an argv")
		}
		if auth == "" {
			a.lines = append(a.lines, "auth: external")
			a.notes = append(a.notes, "# the plugin (e.g. ssh to the server's imapd) logs in itself: auth: external")
		}
	}
	multidrop := len(e.LocalDomains) > 0 || u.Wildcard || len(local) > 1
	switch {
	case proto == "odmr":
		if len(e.LocalDomains) > 0 {
			a.lines = append(a.lines, "domains: "+flow(e.LocalDomains))
		}
	case multidrop && e.Envelope != "" && len(e.LocalDomains) > 0:
		// linkctl's multidrop: the envelope header names the recipient, "*"
		// passes any local one through, as fetchmail's wildcard did.
		a.lines = append(a.lines, "localdomains: "+flow(e.LocalDomains), "envelope: "+quote(e.Envelope))
		if u.Wildcard {
			a.lines[slices.Index(a.lines, "to: "+flow(local))] = "to: " + flow(append(slices.Clone(local), "*"))
		}
	case multidrop:
		// fetchmail guessed recipients from To/Cc/Received when it had no
		// envelope header; linkctl refuses to (Bcc mail is lost, lists
		// loop), so the mailbox becomes a single drop until the user names
		// the header.
		c.warn(u.Pos, &a.notes, "multidrop without an envelope header: fetchmail guessed recipients from the headers, linkctl does not; until you set the header your ISP adds (and uncomment these), all mail goes to %s", strings.Join(local, ", "))
		if len(e.LocalDomains) > 0 {
			a.notes = append(a.notes, "# localdomains: "+flow(e.LocalDomains))
		}
		a.notes = append(a.notes, "# envelope: Delivered-To")
		if u.Wildcard {
			a.notes = append(a.notes, "# to: "+flow(append(slices.Clone(local), "*")))
		}
	}
	if u.Keep != nil && *u.Keep {
		a.lines = append(a.lines, "keep: true")
		c.warn(u.Pos, &a.notes, "keep: linkctl has its own record of what it fetched; messages fetchmail left on the server are fetched once more")
	}
	if u.FetchAll != nil && *u.FetchAll {
		a.lines = append(a.lines, "fetchall: true")
	}
	if u.Limit != nil && *u.Limit > 0 {
		a.lines = append(a.lines, "limit: "+strconv.Itoa(*u.Limit))
	}
	if u.FetchLimit != nil && *u.FetchLimit > 0 {
		a.lines = append(a.lines, "fetchlimit: "+strconv.Itoa(*u.FetchLimit))
	}
	if u.Expunge != nil && *u.Expunge > 0 {
		a.lines = append(a.lines, "commit_every: "+strconv.Itoa(*u.Expunge))
	}
	if u.Idle != nil && *u.Idle {
		a.lines = append(a.lines, "idle: true")
	}
	if len(u.Folders) > 0 {
		a.lines = append(a.lines, "folders: "+flow(u.Folders))
	}
	if e.Timeout > 0 {
		a.lines = append(a.lines, fmt.Sprintf("timeout: %ds", e.Timeout))
	}
	if e.Interval > 1 {
		c.warn(e.Pos, &a.notes, "interval %d: linkctl fetches every account on every run", e.Interval)
	}
	if e.Plugout != "" {
		c.warn(e.Pos, &a.notes, "plugout: linkctl delivers through its own deliver target")
	}
	for _, o := range e.Other {
		c.other(o, &a.notes)
	}
	if u.Preconnect != "" {
		c.hook(u.Pos, u.Preconnect, "preconnect", &c.pre, &a.notes)
	}
	if u.Postconnect != "" {
		c.hook(u.Pos, u.Postconnect, "postconnect", &c.post, &a.notes)
	}
	c.userOptions(u, &a.notes)
	a.deliver = c.deliver(e, u, &a.notes)
	c.accounts = append(c.accounts, a)
}

// hook turns preconnect/postconnect into an exec step of the pipeline,
// before or after fetch.
func (c *converter) hook(pos Pos, cmd, what string, to *[][]string, notes *[]string) {
	argv, ok := splitArgv(cmd)
	if !ok {
		argv = []string{"/bin/sh", "-c", cmd}
	}
	for _, x := range *to {
		if slices.Equal(x, argv) {
			return
		}
	}
	*to = append(*to, argv)
	*notes = append(*notes, fmt.Sprintf("# fetchmail (line %d): %s runs as an exec step of the pipeline", pos.Line, what))
}

func (c *converter) write() error {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("%s\n", comment("# linkctl.yaml converted from "+c.rc.File+" by linkctl import-fetchmailrc."))
	w("# Lines starting with \"# fetchmail\" mark what linkctl does differently: read them.\n\n")
	for _, n := range c.notes {
		w("%s\n", comment(n))
	}
	w("link:\n")
	w("  # fetchmail polled on a timer; linkctl runs when the uplink comes up.\n")
	w("  # Name your uplink here (ppp0, wwan0, wg0) instead of default-route.\n")
	w("  watch: [default-route]\n")
	if d := c.rc.Set.Daemon; d > 0 {
		w("  interval: %ds   # fetchmail: set daemon %d\n", d, d)
	}
	var logLines []string
	if c.rc.Set.Logfile != "" {
		logLines = append(logLines, "file: "+quote(c.rc.Set.Logfile))
	}
	if s := c.rc.Set.Syslog; s != nil && *s {
		logLines = append(logLines, "syslog: true")
	}
	if len(logLines) > 0 {
		w("log:\n")
		for _, l := range logLines {
			w("  %s\n", l)
		}
	}
	if c.rc.Set.Postmaster != "" {
		w("%s\n", comment("# fetchmail: set postmaster "+c.rc.Set.Postmaster+": linkctl leaves bounces to the local MTA"))
		c.res.Warnings = append(c.res.Warnings, c.rc.File+": set postmaster: linkctl leaves bounces to the local MTA")
	}
	for _, o := range c.rc.Set.Other {
		var notes []string
		c.other(o, &notes)
		for _, n := range notes {
			w("%s\n", comment(n))
		}
	}
	w("pipeline:\n")
	if len(c.etrn) > 0 {
		w("  - etrn\n")
	}
	for _, argv := range c.pre {
		w("  - exec: %s\n", flow(argv))
	}
	if len(c.accounts) > 0 {
		w("  - fetch\n")
	}
	for _, argv := range c.post {
		w("  - exec: %s\n", flow(argv))
	}
	if len(c.etrn) > 0 {
		w("etrn:\n  servers:\n")
		for _, a := range c.etrn {
			writeItem(&b, "    ", a.lines, a.notes)
		}
	}
	if len(c.accounts) > 0 {
		w("fetch:\n")
		common := c.accounts[0].deliver
		same := true
		for _, a := range c.accounts {
			same = same && a.deliver == common
		}
		if same {
			w("  deliver: %s\n", common.yaml())
		}
		w("  accounts:\n")
		for _, a := range c.accounts {
			lines := a.lines
			if !same {
				lines = append(slices.Clone(lines), "deliver: "+a.deliver.yaml())
			}
			writeItem(&b, "    ", lines, a.notes)
		}
	}
	c.res.YAML = b.Bytes()
	return nil
}

func writeItem(b *bytes.Buffer, indent string, lines, notes []string) {
	for i, l := range lines {
		if i == 0 {
			fmt.Fprintf(b, "%s- %s\n", indent, l)
		} else {
			fmt.Fprintf(b, "%s  %s\n", indent, l)
		}
	}
	for _, n := range notes {
		fmt.Fprintf(b, "%s  %s\n", indent, comment(n))
	}
}

var plain = regexp.MustCompile(`^[A-Za-z_/][A-Za-z0-9_./@%+-]*$`)

// quote writes s as a YAML scalar: plain when that is unambiguous, else
// double-quoted (Go's escapes are a subset of YAML's double-quoted ones).
func quote(s string) string {
	switch strings.ToLower(s) {
	case "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~":
		return strconv.Quote(s)
	}
	if plain.MatchString(s) {
		return s
	}
	return strconv.Quote(s)
}

// flow writes a list in YAML flow style: [a, "b c"].
func flow(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = quote(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// comment makes a YAML comment line safe: YAML allows no control
// characters, and a newline would end the comment.
func comment(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError || (r >= 0x80 && r < 0xa0) || r == 0xfeff {
			return '?'
		}
		return r
	}, s)
}
