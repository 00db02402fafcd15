// Package fetchmailrc reads fetchmail's run-control file (~/.fetchmailrc)
// and writes the linkctl.yaml that does the same job, so that a site moving
// from fetchmail keeps its accounts, servers and delivery.
//
// The flow:
//
//  1. [Parse] splits the file into tokens the way fetchmail's lexer does:
//     '#' comments, "double" or 'single' quoted strings with backslash
//     escapes, bare words, and the noise words (and, with, has, wants,
//     options) and punctuation (: ; ,) dropped, so that
//     `user "x" there has password "y" and is z here` reads as
//     user x there password y is z here.
//  2. It reads the statements: `set` (daemon, logfile, syslog, postmaster,
//     ...), `defaults`, and `poll`/`skip` entries, each with server options
//     (via, proto, port, auth, localdomains, plugin, interval, ...) and one
//     or more users (user/is/to/here/there, password, ssl, keep, smtphost,
//     mda, limit, folder, ...). An option before the first `user` of an
//     entry starts an implicit user, as in fetchmail.
//  3. It applies `defaults` to every later entry and user (the entry's own
//     value wins), so that an [Entry] holds what fetchmail would use.
//  4. [Convert] writes the YAML: accounts for POP3/IMAP entries, ETRN
//     servers for `proto etrn`, the delivery target from smtphost/lmtp/mda,
//     `set daemon N` as link.interval, sslcertfile as the server's ca_file
//     when the file can be read, and a "# fetchmail:" comment plus a
//     warning for every option linkctl cannot express (sslfingerprint, a
//     digest of the certificate, cannot become a tls_pin, a hash of the
//     key: its warning says to run `linkctl pin`). Passwords go to
//     separate files unless the caller says the output itself will be
//     private (0600).
//
// Every error names the file, line and column.
package fetchmailrc

import (
	"reflect"
	"strconv"
	"strings"

	"github.com/linkctl/linkctl/internal/errkind"
)

// Pos is a position in the file (1-based).
type Pos struct {
	Line int
	Col  int
}

// Option is an option linkctl does not map to a config key, kept so that
// Convert can say what it dropped. Name is as fetchmail spells it, with
// "no " in front when negated.
type Option struct {
	Pos
	Name string
	Args []string
}

// RC is a parsed fetchmailrc.
type RC struct {
	File     string
	Set      Globals
	Defaults *Entry   // the `defaults` entry as written, nil if none
	Entries  []*Entry // poll and skip entries, defaults applied
}

// Globals are the `set` statements.
type Globals struct {
	Daemon     int // poll interval in seconds; 0: not a daemon
	Logfile    string
	Syslog     *bool
	Postmaster string
	Other      []Option
}

// Entry is one poll (or skip) entry: a server and its users.
type Entry struct {
	Pos
	Skip         bool
	Name         string // the name after poll: the server, or a label when via is given
	Via          string
	Proto        string // lower case: pop3, imap, etrn, ...
	Port         string // number or service name
	Auth         string // lower case
	Timeout      *int   // seconds; nil: fetchmail's default (300)
	Interval     int    // poll only every Nth cycle
	LocalDomains []string
	Envelope     string // header name as written (fetchmail keeps a trailing colon)
	EnvSkip      int    // envelope N "Received": skip the first N such headers
	NoEnvelope   bool   // no envelope: single drop whatever the names say
	QVirtual     string // prefix stripped from the envelope local part
	Interface    string // interface[/address] that must be up (interface option)
	Monitor      string // interface whose traffic fetchmail watched (monitor option)
	Plugin       string
	Plugout      string
	Other        []Option
	Users        []*User
}

// Host is the server to connect to: via, else the entry's name.
func (e *Entry) Host() string {
	if e.Via != "" {
		return e.Via
	}
	return e.Name
}

// User is one user clause of an entry.
type User struct {
	Pos
	Remote      string   // the name on the server; "" for fetchmail's default
	Local       []string // local recipients
	Wildcard    bool     // '*' among the local names (multidrop pass-through)
	Password    *string
	SSL         *bool
	SSLCertCk   *bool
	SSLProto    *string
	Keep        *bool
	FetchAll    *bool
	Flush       *bool
	LMTP        *bool
	Idle        *bool
	SMTPHosts   []string
	MDA         string
	Preconnect  string
	Postconnect string
	Limit       *int
	FetchLimit  *int
	BatchLimit  *int
	Expunge     *int
	Folders     []string
	// FetchDomains are the domains an ETRN or ODMR server is asked for
	// (fetchmail's default: this host's FQDN).
	FetchDomains []string
	Other        []Option
}

// keyword kinds for options linkctl keeps only as comments.
const (
	kFlag  = iota // no argument, may be negated with "no"
	kValue        // one argument
	kNum          // one numeric argument
	kList         // one or more arguments
)

var otherServer = map[string]int{
	"principal": kValue,
	"esmtpname": kValue, "esmtppassword": kValue, "bad-header": kValue,
	"aka": kList, "dns": kFlag, "checkalias": kFlag, "uidl": kFlag, "tracepolls": kFlag,
}

var otherUser = map[string]int{
	"sslcert": kValue, "sslkey": kValue, "sslcertfile": kValue, "sslcertpath": kValue,
	"sslcommonname": kValue, "sslfingerprint": kValue, "smtpaddress": kValue, "smtpname": kValue,
	"bsmtp": kValue, "properties": kValue, "warnings": kNum, "fetchsizelimit": kNum,
	"fastuidl": kNum, "antispam": kList, "limitflush": kFlag,
	"rewrite": kFlag, "stripcr": kFlag, "forcecr": kFlag, "pass8bits": kFlag,
	"dropstatus": kFlag, "dropdelivered": kFlag, "mimedecode": kFlag, "showdots": kFlag,
	"badheader": kValue, "retrieveerror": kValue,
}

var otherSet = map[string]int{
	"idfile": kValue, "pidfile": kValue, "properties": kValue, "bouncemail": kFlag,
	"spambounce": kFlag, "softbounce": kFlag, "invisible": kFlag, "showdots": kFlag,
}

// keywords end a list of values; a quoted string never does.
var keywords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`set defaults poll skip server no here there user username
		is to via proto protocol port service auth authenticate timeout interval localdomains local
		envelope plugin plugout password pass ssl sslcertck sslproto keep nokeep fetchall flush lmtp
		idle smtphost smtphosts mda preconnect postconnect limit fetchlimit batchlimit expunge folder
		folders daemon logfile syslog postmaster norewrite qvirtual interface monitor fetchdomains`) {
		keywords[w] = true
	}
	for _, m := range []map[string]int{otherServer, otherUser, otherSet} {
		for w := range m {
			keywords[w] = true
		}
	}
}

var protos = map[string]bool{"auto": true, "pop2": true, "pop3": true, "apop": true, "rpop": true,
	"kpop": true, "sdps": true, "imap": true, "imap-k4": true, "imap-gss": true, "etrn": true, "odmr": true}

type parser struct {
	name string
	toks []token
	i    int
}

// Parse reads a fetchmailrc. name is used in error messages. Errors are
// *SyntaxError values (file:line:col) classified as errkind.Usage.
func Parse(name string, data []byte) (*RC, error) {
	rc, err := parse(name, data)
	if err != nil {
		return nil, errkind.WrapPermanent(errkind.Usage, "", err)
	}
	return rc, nil
}

func parse(name string, data []byte) (*RC, error) {
	toks, err := lex(name, data)
	if err != nil {
		return nil, err
	}
	p := &parser{name: name, toks: toks}
	rc := &RC{File: name}
	for p.peek().kind != tEOF {
		t := p.next()
		switch kw(t) {
		case "set":
			if err := p.parseSet(&rc.Set); err != nil {
				return nil, err
			}
		case "defaults":
			e := &Entry{Pos: Pos{t.line, t.col}}
			if err := p.parseBody(e); err != nil {
				return nil, err
			}
			// An option before `user` starts an implicit user: fold them
			// all into one, the later clause winning.
			if n := len(e.Users); n > 1 {
				acc := e.Users[n-1]
				for i := n - 2; i >= 0; i-- {
					merge(reflect.ValueOf(acc).Elem(), reflect.ValueOf(e.Users[i]).Elem(), "Pos")
				}
				e.Users = []*User{acc}
			}
			rc.Defaults = e
		case "poll", "server", "skip":
			v, err := p.value("the server name after " + t.text)
			if err != nil {
				return nil, err
			}
			e := &Entry{Pos: Pos{t.line, t.col}, Skip: kw(t) == "skip", Name: v}
			if err := p.parseBody(e); err != nil {
				return nil, err
			}
			rc.Entries = append(rc.Entries, applyDefaults(e, rc.Defaults))
		default:
			return nil, p.errAt(t, "expected poll, skip, defaults or set, found %s", t)
		}
	}
	return rc, nil
}

func kw(t token) string {
	if t.kind != tWord {
		return ""
	}
	return strings.ToLower(t.text)
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errAt(t token, format string, args ...any) error {
	return &SyntaxError{File: p.name, Line: t.line, Col: t.col, Msg: sprintf(format, args...)}
}

func (p *parser) value(what string) (string, error) {
	t := p.next()
	if t.kind == tString || t.kind == tWord {
		return t.text, nil
	}
	return "", p.errAt(t, "expected %s, found %s", what, t)
}

func (p *parser) number(what string) (int, error) {
	t := p.next()
	if t.kind == tWord {
		if n, err := strconv.Atoi(t.text); err == nil && n >= 0 {
			return n, nil
		}
	}
	return 0, p.errAt(t, "expected a number after %s, found %s", what, t)
}

// list reads one or more values: quoted strings, and bare words that are not
// keywords.
func (p *parser) list(what string) ([]string, error) {
	var out []string
	for {
		t := p.peek()
		if t.kind == tString || (t.kind == tWord && !keywords[kw(t)]) {
			out = append(out, p.next().text)
			continue
		}
		break
	}
	if len(out) == 0 {
		return nil, p.errAt(p.peek(), "expected one or more values after %s, found %s", what, p.peek())
	}
	return out, nil
}

func (p *parser) other(kind int, name string, at token, neg bool) (Option, error) {
	o := Option{Pos: Pos{at.line, at.col}, Name: name}
	if neg {
		o.Name = "no " + name
		if kind != kFlag {
			return o, p.errAt(at, "%q cannot be negated with no", name)
		}
		return o, nil
	}
	switch kind {
	case kValue:
		v, err := p.value("a value after " + name)
		if err != nil {
			return o, err
		}
		o.Args = []string{v}
	case kNum:
		n, err := p.number(name)
		if err != nil {
			return o, err
		}
		o.Args = []string{strconv.Itoa(n)}
	case kList:
		vs, err := p.list(name)
		if err != nil {
			return o, err
		}
		o.Args = vs
	}
	return o, nil
}

func (p *parser) parseSet(g *Globals) error {
	t := p.next()
	k := kw(t)
	neg := false
	if k == "no" {
		neg = true
		t = p.next()
		k = kw(t)
	}
	if p.peek().kind == tMap { // set logfile = "/path"
		p.next()
	}
	switch {
	case k == "daemon" && !neg:
		n, err := p.number("set daemon")
		g.Daemon = n
		return err
	case k == "logfile" && !neg:
		v, err := p.value("a file name after set logfile")
		g.Logfile = v
		return err
	case k == "postmaster" && !neg:
		v, err := p.value("a user name after set postmaster")
		g.Postmaster = v
		return err
	case k == "syslog":
		b := !neg
		g.Syslog = &b
		return nil
	case hasKey(otherSet, k):
		o, err := p.other(otherSet[k], k, t, neg)
		g.Other = append(g.Other, o)
		return err
	}
	return p.errAt(t, "unknown set option %s (expected daemon, logfile, syslog, postmaster, idfile, ...)", t)
}

func hasKey(m map[string]int, k string) bool { _, ok := m[k]; return ok }

func isTop(t token) bool {
	switch kw(t) {
	case "poll", "skip", "server", "defaults", "set":
		return true
	}
	return false
}

// parseBody reads the options of an entry up to the next statement.
func (p *parser) parseBody(e *Entry) error {
	var u *User
	cur := func(t token) *User {
		if u == nil {
			u = &User{Pos: Pos{t.line, t.col}}
			e.Users = append(e.Users, u)
		}
		return u
	}
	for p.peek().kind != tEOF && !isTop(p.peek()) {
		t := p.next()
		if t.kind != tWord {
			return p.errAt(t, "unexpected %s: expected an option keyword (is a keyword missing before this value?)", t)
		}
		k := kw(t)
		neg := false
		if k == "no" {
			neg = true
			t = p.next()
			k = kw(t)
			if k == "" {
				return p.errAt(t, "expected an option after no, found %s", t)
			}
		}
		if neg && !negatable[k] {
			if kind, ok := otherServer[k]; ok && kind == kFlag {
				e.Other = append(e.Other, Option{Pos: Pos{t.line, t.col}, Name: "no " + k})
				continue
			}
			if kind, ok := otherUser[k]; ok && kind == kFlag {
				cur(t).Other = append(cur(t).Other, Option{Pos: Pos{t.line, t.col}, Name: "no " + k})
				continue
			}
			return p.errAt(t, "%q cannot be negated with no", t.text)
		}
		var err error
		switch k {
		// server options
		case "via":
			e.Via, err = p.value("a host name after via")
		case "proto", "protocol":
			var v string
			at := p.peek()
			v, err = p.value("a protocol after " + k)
			if err == nil && !protos[strings.ToLower(v)] {
				err = p.errAt(at, "unknown protocol %q (expected pop3, imap, etrn, ...)", v)
			}
			e.Proto = strings.ToLower(v)
		case "port", "service":
			e.Port, err = p.value("a port after " + k)
		case "auth", "authenticate":
			var v string
			v, err = p.value("an authentication type after " + k)
			e.Auth = strings.ToLower(v)
		case "timeout":
			var n int
			n, err = p.number(k)
			e.Timeout = &n
		case "interval":
			e.Interval, err = p.number(k)
		case "localdomains", "local":
			var vs []string
			vs, err = p.list(k)
			e.LocalDomains = append(e.LocalDomains, vs...)
		case "envelope":
			if neg {
				e.Envelope, e.EnvSkip, e.NoEnvelope = "", 0, true
				break
			}
			if n := p.peek(); n.kind == tWord {
				if k, nerr := strconv.Atoi(n.text); nerr == nil && k >= 0 {
					p.next() // envelope 2 "Received": skip that many headers
					e.EnvSkip = k
				}
			}
			e.Envelope, err = p.value("a header name after envelope")
		case "qvirtual":
			e.QVirtual, err = p.value("a prefix after qvirtual")
		case "interface":
			e.Interface, err = p.value("an interface after interface")
		case "monitor":
			e.Monitor, err = p.value("an interface after monitor")
		case "plugin":
			e.Plugin, err = p.value("a command after plugin")
		case "plugout":
			e.Plugout, err = p.value("a command after plugout")

		// user options
		case "user", "username":
			u = nil
			uu := cur(t)
			var v string
			v, err = p.value("a user name after " + k)
			switch kw(p.peek()) {
			case "here":
				p.next()
				uu.Local = append(uu.Local, v)
			case "there":
				p.next()
				uu.Remote = v
			default:
				uu.Remote = v
			}
		case "is", "to":
			err = p.localNames(cur(t), k)
		case "here", "there":
			// stray direction words carry no meaning of their own
		case "password", "pass":
			var v string
			v, err = p.value("a password after " + k)
			cur(t).Password = &v
		case "ssl":
			cur(t).SSL = boolp(!neg)
		case "sslcertck":
			cur(t).SSLCertCk = boolp(!neg)
		case "sslproto":
			var v string
			v, err = p.value("a protocol after sslproto")
			cur(t).SSLProto = &v
		case "keep":
			cur(t).Keep = boolp(!neg)
		case "nokeep":
			cur(t).Keep = boolp(false)
		case "fetchall":
			cur(t).FetchAll = boolp(!neg)
		case "flush":
			cur(t).Flush = boolp(!neg)
		case "lmtp":
			cur(t).LMTP = boolp(!neg)
		case "idle":
			cur(t).Idle = boolp(!neg)
		case "norewrite":
			cur(t).Other = append(cur(t).Other, Option{Pos: Pos{t.line, t.col}, Name: "no rewrite"})
		case "smtphost", "smtphosts":
			var vs []string
			vs, err = p.list(k)
			cur(t).SMTPHosts = append(cur(t).SMTPHosts, vs...)
		case "mda":
			cur(t).MDA, err = p.value("a command after mda")
		case "preconnect":
			cur(t).Preconnect, err = p.value("a command after preconnect")
		case "postconnect":
			cur(t).Postconnect, err = p.value("a command after postconnect")
		case "limit", "fetchlimit", "batchlimit", "expunge":
			var n int
			n, err = p.number(k)
			uu := cur(t)
			ptr := map[string]**int{"limit": &uu.Limit, "fetchlimit": &uu.FetchLimit,
				"batchlimit": &uu.BatchLimit, "expunge": &uu.Expunge}[k]
			*ptr = &n
		case "fetchdomains":
			var vs []string
			vs, err = p.list(k)
			cur(t).FetchDomains = append(cur(t).FetchDomains, vs...)
		case "folder", "folders":
			var vs []string
			vs, err = p.list(k)
			cur(t).Folders = append(cur(t).Folders, vs...)
		default:
			if kind, ok := otherServer[k]; ok {
				var o Option
				o, err = p.other(kind, k, t, neg)
				e.Other = append(e.Other, o)
			} else if kind, ok := otherUser[k]; ok {
				var o Option
				o, err = p.other(kind, k, t, neg)
				cur(t).Other = append(cur(t).Other, o)
			} else {
				err = p.errAt(t, "unknown option %s", t)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var negatable = map[string]bool{"ssl": true, "sslcertck": true, "keep": true, "fetchall": true,
	"flush": true, "lmtp": true, "idle": true, "envelope": true}

// localNames reads the names after is/to: local users, '*' for the
// multidrop wildcard, "remote"="local" mappings, closed by here; or a single
// name closed by there, which is the remote name (`user x here is y there`).
func (p *parser) localNames(u *User, k string) error {
	var names []string
	wild := false
	start := p.peek()
	for {
		t := p.peek()
		if t.kind == tWord && t.text == "*" {
			p.next()
			wild = true
			continue
		}
		if t.kind == tString || (t.kind == tWord && !keywords[kw(t)]) {
			p.next()
			name := t.text
			if p.peek().kind == tMap {
				p.next()
				local, err := p.value("a local name after =")
				if err != nil {
					return err
				}
				u.Other = append(u.Other, Option{Pos: Pos{t.line, t.col}, Name: "mapping", Args: []string{name, local}})
				name = local
			}
			names = append(names, name)
			continue
		}
		break
	}
	if len(names) == 0 && !wild {
		return p.errAt(start, "expected user names after %s, found %s", k, start)
	}
	switch kw(p.peek()) {
	case "there":
		p.next()
		if len(names) != 1 || wild {
			return p.errAt(start, "only one remote user name can come before there")
		}
		u.Remote = names[0]
		return nil
	case "here":
		p.next()
	}
	u.Local = append(u.Local, names...)
	if wild {
		u.Wildcard = true
	}
	return nil
}

func boolp(b bool) *bool { return &b }

// applyDefaults fills what e and its users leave unset from d, as
// fetchmail's optmerge does: a value given in the entry wins, lists are taken
// whole, and the options kept as comments accumulate.
func applyDefaults(e *Entry, d *Entry) *Entry {
	if d == nil {
		if len(e.Users) == 0 {
			e.Users = []*User{{Pos: e.Pos}}
		}
		return e
	}
	noEnv := e.NoEnvelope
	merge(reflect.ValueOf(e).Elem(), reflect.ValueOf(d).Elem(), "Pos", "Skip", "Name", "Users")
	if noEnv { // the entry's own "no envelope" beats the defaults' envelope
		e.Envelope, e.EnvSkip = "", 0
	}
	var du *User
	if len(d.Users) > 0 {
		du = d.Users[0]
	}
	if len(e.Users) == 0 {
		e.Users = []*User{{Pos: e.Pos}}
	}
	if du != nil {
		for _, u := range e.Users {
			merge(reflect.ValueOf(u).Elem(), reflect.ValueOf(du).Elem(), "Pos")
		}
	}
	return e
}

func merge(dst, src reflect.Value, skip ...string) {
	t := dst.Type()
fields:
	for i := range t.NumField() {
		name := t.Field(i).Name
		for _, s := range skip {
			if s == name {
				continue fields
			}
		}
		df, sf := dst.Field(i), src.Field(i)
		switch {
		case name == "Other":
			all := reflect.AppendSlice(reflect.MakeSlice(df.Type(), 0, sf.Len()+df.Len()), sf)
			df.Set(reflect.AppendSlice(all, df))
		case df.IsZero():
			df.Set(sf)
		}
	}
}
