package fetchmailrc

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
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
		return nil, errkind.Permanent(errkind.Usage, "import "+rc.File,
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
	"smtp": 25, "submission": 587, "smtps": 465, "lmtp": 24, "odmr": 366, "kpop": 1109}

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

// caFile carries fetchmail's sslcertfile (a bundle of trusted CAs) over
// as ca_file, which linkctl checks when it loads the config: so only a
// file that is there now, on a server spoken to over TLS.
func (c *converter) caFile(u *User, tlsMode string, lines, notes *[]string) {
	for _, o := range u.Other {
		if o.Name != "sslcertfile" || len(o.Args) != 1 {
			continue
		}
		path := o.Args[0]
		switch _, err := netconn.LoadCAFile(path); {
		case tlsMode == "none":
			c.warn(o.Pos, notes, "sslcertfile %s: this server is spoken to without TLS, so there is no certificate to check", path)
		case err != nil:
			c.warn(o.Pos, notes, "sslcertfile %s cannot be read here (%v): once it can, add ca_file: %s", path, err, path)
		default:
			*lines = append(*lines, "ca_file: "+quote(path))
		}
	}
}

func (c *converter) other(o Option, notes *[]string) {
	args := o.Args
	if o.Name == "esmtppassword" || o.Name == "sslkey" {
		args = []string{"***"}
	}
	switch o.Name {
	case "smtpaddress", "aka", "dns", "no dns":
		return // deliver.domain (converter.deliver); multidrop's localdomains
	case "invisible":
		return // fetch.received (converter.write)
	case "sslcertfile":
		return // ca_file (converter.caFile)
	case "sslfingerprint":
		c.warn(o.Pos, notes, "sslfingerprint %s: linkctl pins the server's public key (tls_pin), not a digest of its certificate: run `linkctl pin HOST:PORT` and add the tls_pin line it prints", strings.Join(args, " "))
		return
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

// fetchDomains is what an ETRN or ODMR server is asked for: the user's
// fetchdomains, else this host's FQDN, as fetchmail does (its manual, under
// fetchdomains; RFC 1985 section 3 takes a node name, @domain or #queue).
func (c *converter) fetchDomains(e *Entry, u *User, notes *[]string) []string {
	if len(e.LocalDomains) > 0 {
		c.warn(e.Pos, notes, "localdomains %s: fetchmail does not ask an %s server for them either (fetchdomains are the domains asked for); left out",
			strings.Join(e.LocalDomains, " "), strings.ToUpper(e.Proto))
	}
	if len(u.FetchDomains) > 0 {
		return u.FetchDomains
	}
	*notes = append(*notes, "# fetchmail asked for this host's name ("+c.opts.Hostname+") when no fetchdomains were given")
	return []string{c.opts.Hostname}
}

// timeout writes fetchmail's server inactivity timeout, which linkctl
// applies per read and write as fetchmail does (default 300 s; linkctl's
// own default is 60 s, so it is always written out; fetchmail takes 0 as
// its default too, as --configdump shows).
func (c *converter) timeout(e *Entry, lines, notes *[]string) {
	t := fetchmailTimeout
	if e.Timeout != nil && *e.Timeout > 0 { // fetchmail reads timeout 0 as its default
		t = *e.Timeout
	}
	*lines = append(*lines, fmt.Sprintf("timeout: %ds", t))
}

// fetchmailTimeout is fetchmail's default server timeout in seconds.
const fetchmailTimeout = 300

func (c *converter) etrnEntry(e *Entry, u *User) {
	a := &account{name: e.Name}
	port := c.port(e, &a.notes)
	if port == "" {
		port = "25"
	}
	a.lines = append(a.lines, "server: "+quote(net.JoinHostPort(e.Host(), port)))
	if e.Via != "" && e.Via != e.Name {
		// The poll name of a via entry is the relay's label (issue 18).
		a.lines = append(a.lines, "name: "+quote(e.Name))
	}
	a.lines = append(a.lines,
		"domains: "+flow(c.fetchDomains(e, u, &a.notes)),
		"tls: "+c.tls(e, u, &a.notes))
	c.timeout(e, &a.lines, &a.notes)
	for _, o := range e.Other {
		c.other(o, &a.notes)
	}
	c.etrn = append(c.etrn, a)
}

// multidrop writes the keys of a mailbox that holds mail for several local
// users. fetchmail treats a user as multidrop when it has more than one
// local name or the '*' wildcard (fetchmail's MULTIDROP); one local name is
// a single drop whatever localdomains says.
func (c *converter) multidrop(e *Entry, u *User, local []string, lines, notes *[]string) {
	if !u.Wildcard && len(local) < 2 {
		if e.QVirtual != "" {
			c.warn(e.Pos, notes, "qvirtual %q: only a multidrop mailbox reads envelope addresses; fetchmail ignored it here too", e.QVirtual)
		}
		return
	}
	// fetchmail writes the header name with or without its colon
	// ("Delivered-To:"); linkctl wants the bare field name (RFC 5322
	// section 2.2: a colon ends the name).
	env := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(e.Envelope), ":"))
	if env == "" || strings.EqualFold(env, "Received") {
		// fetchmail guessed recipients from Received, To and Cc; linkctl
		// refuses to (Bcc mail is lost, lists loop), so the mailbox
		// becomes a single drop until the user names the header.
		why := "without an envelope header"
		if env != "" {
			why = "with envelope Received"
		}
		c.warn(u.Pos, notes, "multidrop %s: fetchmail guessed recipients from the Received/To/Cc headers, linkctl does not; until you set the header your ISP adds (and uncomment these), all mail goes to %s", why, strings.Join(local, ", "))
		doms := append(slices.Clone(e.LocalDomains), c.aka(e)...)
		if len(doms) > 0 {
			*notes = append(*notes, "# localdomains: "+flow(doms))
		}
		*notes = append(*notes, "# envelope: Delivered-To")
		if e.QVirtual != "" {
			*notes = append(*notes, "# qvirtual: "+quote(e.QVirtual))
		}
		if u.Wildcard {
			*notes = append(*notes, "# to: "+flow(append(slices.Clone(local), "*")))
		}
		return
	}
	if e.EnvSkip > 0 {
		c.warn(e.Pos, notes, "envelope %d %q: linkctl reads the first %s header, fetchmail skipped %d", e.EnvSkip, e.Envelope, env, e.EnvSkip)
	}
	// fetchmail took an address as local when its domain was a localdomain,
	// the poll name, via, or an aka; linkctl's localdomains list them all.
	doms := slices.Clone(e.LocalDomains)
	for _, d := range append([]string{e.Name, e.Via}, c.aka(e)...) {
		if d != "" && !slices.Contains(doms, d) {
			doms = append(doms, d)
		}
	}
	*lines = append(*lines, "localdomains: "+flow(doms), "envelope: "+quote(env))
	if e.QVirtual != "" {
		*lines = append(*lines, "qvirtual: "+quote(e.QVirtual))
	}
	if u.Wildcard {
		for i, l := range *lines {
			if strings.HasPrefix(l, "to: ") {
				(*lines)[i] = "to: " + flow(append(slices.Clone(local), "*"))
			}
		}
	}
	if dnsOn(e) {
		c.warn(e.Pos, notes, "dns: fetchmail also took the server's DNS aliases as local domains; linkctl uses only localdomains (as with no dns)")
	}
}

// aka lists the entry's aka names (alternate names of the server, which
// fetchmail's multidrop took as local domains).
func (c *converter) aka(e *Entry) []string {
	var out []string
	for _, o := range e.Other {
		if o.Name == "aka" {
			out = append(out, o.Args...)
		}
	}
	return out
}

// dnsOn reports fetchmail's dns option (on unless "no dns").
func dnsOn(e *Entry) bool {
	on := true
	for _, o := range e.Other {
		switch o.Name {
		case "dns":
			on = true
		case "no dns":
			on = false
		}
	}
	return on
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
	default:
		c.warn(e.Pos, &a.notes, "auth %s: linkctl supports password, apop, plain, login, xoauth2, oauthbearer and external (TLS protects the password; no CRAM-MD5); left to auto", e.Auth)
	}
	a.lines = append(a.lines, "name: "+quote(a.name), "proto: "+proto)
	port := c.port(e, &a.notes)
	if port == "" && e.Proto == "kpop" {
		port = "1109" // fetchmail's KPOP service
	}
	a.lines = append(a.lines, "server: "+quote(hostPort(e.Host(), port)))
	tlsMode := c.tls(e, u, &a.notes)
	a.lines = append(a.lines, "tls: "+tlsMode)
	c.caFile(u, tlsMode, &a.lines, &a.notes)
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
	c.multidrop(e, u, local, &a.lines, &a.notes)
	if proto == "odmr" {
		a.lines = append(a.lines, "domains: "+flow(c.fetchDomains(e, u, &a.notes)))
	} else if len(u.FetchDomains) > 0 {
		c.warn(u.Pos, &a.notes, "fetchdomains %s: only ETRN and ODMR ask for domains; fetchmail ignored it here too", strings.Join(u.FetchDomains, " "))
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
		if proto == "imap" {
			a.lines = append(a.lines, "idle: true")
		} else {
			c.warn(u.Pos, &a.notes, "idle: only IMAP has IDLE; fetchmail ignored it for %s too", proto)
		}
	}
	if len(u.Folders) > 0 {
		if proto == "imap" {
			a.lines = append(a.lines, "folders: "+flow(u.Folders))
		} else {
			c.warn(u.Pos, &a.notes, "folder %s: only IMAP has folders; left out", strings.Join(u.Folders, " "))
		}
	}
	c.timeout(e, &a.lines, &a.notes)
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
	watch := c.watch()
	for _, n := range c.notes {
		w("%s\n", comment(n))
	}
	c.notes = nil
	w("link:\n")
	w("  # fetchmail polled on a timer; linkctl runs when the uplink comes up.\n")
	w("  # Name your uplink here (ppp0, wwan0, wg0) instead of default-route.\n")
	w("  watch: %s\n", flow(watch))
	if d := c.rc.Set.Daemon; d > 0 {
		w("  interval: %ds   # fetchmail: set daemon %d\n", d, d)
	}
	var logLines []string
	if f := c.rc.Set.Logfile; f != "" {
		logLines = append(logLines, "file: "+quote(f))
		if _, err := os.Stat(f); err != nil {
			c.warn(Pos{}, &c.notes, "set logfile %s: fetchmail ignored a log file that does not exist (and logged only when it detached); linkctl creates it", f)
			for _, n := range c.notes[len(c.notes)-1:] {
				w("%s\n", comment(n))
			}
		}
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
		if c.invisible() {
			w("  received: false   # fetchmail: set invisible\n")
		}
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

// invisible reports `set invisible`: no Received line of fetchmail's own.
func (c *converter) invisible() bool {
	on := false
	for _, o := range c.rc.Set.Other {
		switch o.Name {
		case "invisible":
			on = true
		case "no invisible":
			on = false
		}
	}
	return on
}

// watch is link.watch: the interfaces fetchmail's interface and monitor
// options named (fetchmail polled only while they were up), else the
// default route. An interface's address/mask part is dropped.
func (c *converter) watch() []string {
	var out []string
	for _, e := range c.rc.Entries {
		if e.Skip {
			continue
		}
		for _, v := range []string{e.Interface, e.Monitor} {
			name, addr, _ := strings.Cut(v, "/")
			if name == "" || slices.Contains(out, name) {
				continue
			}
			out = append(out, name)
			if addr != "" {
				c.warn(e.Pos, &c.notes, "interface %s: linkctl watches %s but does not check its address %s", v, name, addr)
			}
		}
	}
	if len(out) == 0 {
		return []string{"default-route"}
	}
	return out
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
