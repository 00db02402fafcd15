package fetchmailrc

import (
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/config"
)

// The conversion checked against fetchmail itself (issue 18): every rc
// file of the corpus goes through `fetchmail --configdump` and through
// Parse + Convert + config.Parse, and every field fetchmail prints is
// compared with the linkctl value of the same meaning. A field whose value
// differs must be listed in deliberate (keyword -> reason), and unless its
// value is fetchmail's default (or what linkctl does anyway) the converter
// must have warned about it. Anything else fails.

// difference is a documented deliberate difference from fetchmail.
type difference struct {
	reason string
	// warn lists words one of which a warning must contain when the value
	// is not fetchmail's default.
	warn []string
	// linkctl, when set, is the fetchmail value that means what linkctl
	// does anyway: no warning is needed for it.
	linkctl any
}

// deliberate is the table of deliberate differences, keyed by the field
// name of fetchmail's --configdump ("global.", "server." or "user." in
// front). docs/fetchmail.md lists the same keys (TestFetchmailDocListsDifferences).
var deliberate = map[string]difference{
	"global.logfile":    {"linkctl appends to log.file and creates it; fetchmail ignored a log file that did not exist, and used it only once detached", []string{"logfile"}, nil},
	"global.idfile":     {"linkctl keeps its own record of fetched messages in state_dir (seen-store); fetchmail's .fetchids is not read", []string{"idfile"}, nil},
	"global.postmaster": {"linkctl never sends or redirects bounces: a message the local side refuses stays on the server", []string{"postmaster"}, nil},
	"global.bouncemail": {"linkctl never sends bounces: a message the local side refuses stays on the server", []string{"bouncemail"}, nil},
	"global.spambounce": {"linkctl never sends bounces", []string{"spambounce"}, nil},
	"global.softbounce": {"linkctl always keeps a message the local side refuses on the server (fetchmail's softbounce)", []string{"softbounce"}, true},
	"global.properties": {"ignored by fetchmail as well (for extension scripts)", []string{"properties"}, nil},
	"global.showdots":   {"progress display: linkctl logs events instead", []string{"showdots"}, nil},
	"global.syslog":     {"fetchmail logged to syslog only when no logfile took over; linkctl logs to both when both are set", []string{"syslog"}, nil},

	"server.active":        {"skip entries are polled by fetchmail only when named on its command line; linkctl has no such entries, they are left out", []string{"skip"}, nil},
	"server.protocol":      {"linkctl speaks POP3 (RFC 1939, APOP), IMAP and ODMR; auto is written as imap, KPOP/RPOP/SDPS as plain POP3", []string{"proto"}, nil},
	"server.interval":      {"linkctl fetches every account on every run", []string{"interval"}, nil},
	"server.envelope":      {"linkctl reads recipients only from a named envelope header; fetchmail's default (Received) and header guessing (no envelope) make the mailbox a single drop until the user names the header", []string{"multidrop"}, nil},
	"server.envskip":       {"linkctl reads the first envelope header; fetchmail could skip N of them", []string{"envelope"}, nil},
	"server.qvirtual":      {"kept only with an envelope header linkctl can read", []string{"qvirtual", "multidrop"}, nil},
	"server.localdomains":  {"kept only with an envelope header linkctl can read (as a comment otherwise)", []string{"multidrop", "localdomains"}, nil},
	"server.aka":           {"an aka becomes one of localdomains; without an envelope header linkctl can read, a comment", []string{"multidrop", "aka"}, nil},
	"server.dns":           {"linkctl never asks DNS which names are the server's; it uses localdomains only (as with no dns)", []string{"dns", "multidrop"}, false},
	"server.auth":          {"linkctl supports password, apop, plain, login, xoauth2, oauthbearer and external; cram-md5, ntlm, gssapi, kerberos, otp and msn are left to auto", []string{"auth"}, nil},
	"server.uidl":          {"linkctl always tracks what it fetched by UID (as with uidl)", []string{"uidl"}, true},
	"server.interface":     {"linkctl watches the interface but does not check its address", []string{"interface"}, nil},
	"server.plugout":       {"linkctl delivers through its own deliver target", []string{"plugout"}, nil},
	"server.principal":     {"no Kerberos in linkctl", []string{"principal"}, nil},
	"server.esmtpname":     {"linkctl does not authenticate to the local MTA (fetchmail's default is the running user's name)", []string{"esmtpname"}, nil},
	"server.esmtppassword": {"linkctl does not authenticate to the local MTA", []string{"esmtppassword"}, nil},
	"server.tracepolls":    {"linkctl's Received line names the account in every case", []string{"tracepolls"}, nil},
	"server.badheader":     {"linkctl hands every message to the local MTA, which decides about bad headers", []string{"bad-header"}, nil},

	"user.password":       {"fetchmail asked for a missing password on the terminal; linkctl runs unattended and names a password_file to fill", []string{"no password"}, nil},
	"user.localnames":     {"name mappings (remote=local) are not carried over; without an envelope header linkctl can read, '*' is a comment", []string{"mapping", "multidrop"}, nil},
	"user.flush":          {"linkctl deletes only what it delivered; old messages stay on the server", []string{"flush"}, nil},
	"user.limitflush":     {"oversized messages stay on the server", []string{"limitflush"}, nil},
	"user.rewrite":        {"linkctl never rewrites headers (as with no rewrite)", []string{"rewrite"}, false},
	"user.stripcr":        {"linkctl gives an MDA LF line ends (fetchmail's default with mda) and SMTP/LMTP CRLF, whatever stripcr says", []string{"stripcr", "mda"}, nil},
	"user.forcecr":        {"linkctl always sends SMTP/LMTP CRLF line ends (as with forcecr) and an MDA LF", []string{"forcecr"}, nil},
	"user.pass8bits":      {"linkctl does not declare 8BITMIME itself", []string{"pass8bits"}, nil},
	"user.dropstatus":     {"linkctl keeps Status headers", []string{"dropstatus"}, nil},
	"user.dropdelivered":  {"linkctl keeps Delivered-To headers", []string{"dropdelivered"}, nil},
	"user.mimedecode":     {"linkctl does not re-encode messages", []string{"mimedecode"}, nil},
	"user.idle":           {"only IMAP has IDLE", []string{"idle"}, nil},
	"user.mda":            {"linkctl runs an MDA as an argv without a shell; a command that needs one is replaced by SMTP delivery", []string{"mda"}, nil},
	"user.bsmtp":          {"linkctl does not write BSMTP files", []string{"bsmtp"}, nil},
	"user.warnings":       {"linkctl logs each oversized message on every run", []string{"warnings"}, nil},
	"user.fetchsizelimit": {"linkctl lists sizes as the protocol allows", []string{"fetchsizelimit"}, nil},
	"user.fastuidl":       {"linkctl always uses UIDL", []string{"fastuidl"}, nil},
	"user.batchlimit":     {"linkctl sends each local SMTP session as many messages as it has", []string{"batchlimit"}, nil},
	"user.ssl":            {"without ssl fetchmail used STARTTLS only when offered; linkctl requires it (tls: starttls) unless tls: none is written", []string{"ssl"}, nil},
	"user.sslkey":         {"no client certificates in linkctl", []string{"sslkey"}, nil},
	"user.sslcert":        {"no client certificates in linkctl", []string{"sslcert"}, nil},
	"user.sslproto":       {"linkctl negotiates TLS 1.2 or newer", []string{"sslproto"}, nil},
	"user.sslcertck":      {"linkctl always verifies certificates", []string{"sslcertck"}, true},
	"user.sslcertfile":    {"becomes ca_file when the file can be read where the conversion runs (linkctl checks it when it loads the config), else a warning", []string{"sslcertfile"}, nil},
	"user.sslcertpath":    {"linkctl uses the system's CA store", []string{"sslcertpath"}, nil},
	"user.sslcommonname":  {"linkctl checks the certificate against the server name", []string{"sslcommonname"}, nil},
	"user.sslfingerprint": {"linkctl pins the server's public key (tls_pin, from `linkctl pin`), not a digest of its certificate", []string{"sslfingerprint"}, nil},
	"user.properties":     {"ignored by fetchmail as well", []string{"properties"}, nil},
	"user.smtphunt":       {"linkctl delivers to the first smtphost only, with no fallback", []string{"smtphost"}, nil},
	"user.fetchdomains":   {"only ETRN and ODMR ask for domains; fetchmail ignored it elsewhere too", []string{"fetchdomains"}, nil},
	"user.smtpaddress":    {"only SMTP delivery qualifies names", []string{"smtpaddress"}, nil},
	"user.smtpname":       {"linkctl has no full RCPT TO override", []string{"smtpname"}, nil},
	"user.antispam":       {"linkctl leaves a refused message on the server", []string{"antispam"}, nil},
	"user.mailboxes":      {"only IMAP has folders", []string{"folder"}, nil},
}

// valueKeys hold the user's own data (names, hosts, commands, lists):
// fetchmail's default for them is no reason to stay silent, so a
// difference always needs a warning.
var valueKeys = map[string]bool{
	"global.logfile": true, "server.pollname": true, "server.active": true, "server.protocol": true,
	"server.envelope": true, "server.qvirtual": true, "server.localdomains": true, "server.aka": true,
	"server.interface": true, "server.plugout": true, "server.principal": true, "server.esmtppassword": true,
	"user.password": true, "user.localnames": true, "user.mda": true, "user.bsmtp": true, "user.smtphunt": true,
	"user.fetchdomains": true, "user.smtpaddress": true, "user.mailboxes": true,
}

// etrnFields are the fields fetchmail's ETRN driver uses; the others of an
// ETRN entry are ignored by fetchmail too.
var etrnFields = []string{"server.pollname", "server.via", "server.protocol", "server.service", "server.timeout",
	"server.localdomains", "user.ssl", "user.sslcertck", "user.fetchdomains"}

// cmp holds what one comparison needs.
type cmp struct {
	glob, srv, usr map[string]any
	acc            *config.Account
	etrn           *config.ETRNServer
	cfg            *config.Config
	hostname       string
	secrets        map[string]string
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func strs(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func (c *cmp) multidrop() bool {
	l, _ := c.usr["localnames"].([]any)
	return len(l) > 1 || slices.Contains(strs(c.usr["localnames"]), "*")
}

// readable: linkctl reads the envelope header, so multidrop keys apply.
func (c *cmp) readable() bool {
	return c.acc != nil && c.acc.Envelope != "" && c.acc.Envelope != "none"
}

func port(hostport string) int {
	_, p, _ := net.SplitHostPort(hostport)
	n, _ := strconv.Atoi(p)
	return n
}

func host(hostport string) string {
	h, _, _ := net.SplitHostPort(hostport)
	return h
}

// fetchmailPort is the port fetchmail connects to.
func (c *cmp) fetchmailPort() int {
	if s := str(c.srv["service"]); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			return n
		}
		return servicePorts[s]
	}
	ssl := c.usr["ssl"] == true
	switch str(c.srv["protocol"]) {
	case "IMAP", "auto":
		if ssl {
			return 993
		}
		return 143
	case "ETRN":
		return 25
	case "ODMR":
		return 366
	}
	if ssl {
		return 995
	}
	return 110
}

func (c *cmp) secret(s config.Secret) string {
	if s.Inline != "" {
		return s.Inline
	}
	return c.secrets[s.File]
}

// same reports whether linkctl does what fetchmail's field says.
func (c *cmp) same(key string, v any) bool {
	a, e := c.acc, c.etrn
	switch key {
	case "global.poll_interval":
		n, _ := v.(int)
		return c.cfg.Link.Interval == time.Duration(n)*time.Second
	case "global.logfile":
		return c.cfg.Log.File == str(v)
	case "global.invisible":
		return c.cfg.Fetch.Received == (v != true)
	case "global.syslog":
		return c.cfg.Log.Syslog == (v == true)

	case "server.pollname":
		if e != nil {
			return e.Name == str(v) || (c.srv["via"] == nil && e.Name == "")
		}
		return a.Name == str(v) || strings.HasPrefix(a.Name, str(v)+"-")
	case "server.via":
		h := str(v)
		if v == nil {
			h = str(c.srv["pollname"])
		}
		if e != nil {
			return host(e.Server) == h
		}
		return host(a.Server) == h
	case "server.protocol":
		switch p := str(v); {
		case e != nil:
			return p == "ETRN"
		case p == "APOP":
			return a.Proto == "pop3" && a.Auth == "apop"
		case p == "POP3" || p == "IMAP" || p == "ODMR":
			return string(a.Proto) == strings.ToLower(p)
		}
		return false
	case "server.service":
		if e != nil {
			return port(e.Server) == c.fetchmailPort()
		}
		return port(a.Server) == c.fetchmailPort()
	case "server.timeout":
		n, _ := v.(int)
		if e != nil {
			return e.Timeout == time.Duration(n)*time.Second
		}
		return a.Timeout == time.Duration(n)*time.Second
	case "server.interval":
		n, _ := v.(int)
		return n <= 1
	case "server.envelope":
		if !c.multidrop() {
			return true // a single drop reads no envelope, in fetchmail either
		}
		return c.readable() && a.Envelope == strings.TrimSuffix(str(v), ":")
	case "server.envskip":
		return !c.multidrop() || v == 0
	case "server.qvirtual":
		if !c.multidrop() {
			return true
		}
		return c.readable() && a.QVirtual == str(v)
	case "server.localdomains", "server.aka":
		if e != nil || !c.multidrop() {
			return true // used by multidrop only (ETRN asks for fetchdomains)
		}
		for _, d := range strs(v) {
			if !c.readable() || !slices.Contains(a.LocalDomains, d) {
				return false
			}
		}
		return true
	case "server.dns":
		return !c.multidrop() || v == false
	case "server.auth":
		switch str(v) {
		case "any":
			return a.Auth == "auto" || (a.Auth == "apop" && c.srv["protocol"] == "APOP")
		case "password", "external":
			return string(a.Auth) == str(v)
		case "ssh":
			return a.Auth == "external" && len(a.Plugin) > 0
		}
		return false
	case "server.interface", "server.monitor":
		if v == nil {
			return true
		}
		name, _, _ := strings.Cut(str(v), "/")
		return slices.Contains(c.cfg.Link.Watch, name) && !strings.Contains(str(v), "/")
	case "server.plugin":
		if v == nil {
			return len(a.Plugin) == 0
		}
		argv, ok := splitArgv(str(v))
		if !ok {
			argv = []string{"/bin/sh", "-c", str(v)}
		}
		return slices.Equal(a.Plugin, argv)
	case "server.plugout", "server.principal", "server.esmtppassword", "user.bsmtp":
		return v == nil
	case "server.tracepolls", "server.badheader":
		return v == false

	case "user.remote":
		return a.User == str(v)
	case "user.password":
		preauth := len(a.Plugin) > 0 && (a.Auth == "external" || a.Password.IsZero())
		return preauth || (v != nil && c.secret(a.Password) == str(v))
	case "user.localnames":
		var want []string
		for _, n := range v.([]any) {
			s, ok := n.(string)
			if !ok {
				return false // a remote=local mapping
			}
			if s != "*" || c.readable() {
				want = append(want, s)
			}
		}
		return slices.Equal(a.To, want)
	case "user.fetchall":
		return a.FetchAll == (v == true)
	case "user.keep":
		return a.Keep == (v == true)
	case "user.idle":
		return a.Idle == (v == true)
	case "user.lmtp":
		if c.usr["mda"] != nil {
			return true
		}
		return (a.Deliver.LMTP != "") == (v == true)
	case "user.mda":
		if v == nil {
			return len(a.Deliver.MDA) == 0
		}
		argv, ok := splitArgv(str(v))
		return ok && slices.Equal(a.Deliver.MDA, argv)
	case "user.preconnect", "user.postconnect":
		if v == nil {
			return true
		}
		argv, ok := splitArgv(str(v))
		if !ok {
			argv = []string{"/bin/sh", "-c", str(v)}
		}
		fetch := slices.IndexFunc(c.cfg.Pipeline, func(s config.Step) bool { return s.Stage == "fetch" })
		for i, s := range c.cfg.Pipeline {
			if s.Stage == "exec" && slices.Equal(s.Argv, argv) && (i < fetch) == (key == "user.preconnect") {
				return true
			}
		}
		return false
	case "user.stripcr":
		// linkctl hands an MDA LF line ends (fetchmail's default with mda).
		return (v == true) == (len(a.Deliver.MDA) > 0)
	case "user.limit":
		n, _ := v.(int)
		return a.Limit == int64(n)
	case "user.fetchlimit":
		n, _ := v.(int)
		return a.FetchLimit == n
	case "user.expunge":
		n, _ := v.(int)
		return a.CommitEvery == n
	case "user.ssl":
		if e != nil {
			return (e.TLS == "implicit") == (v == true)
		}
		return (a.TLS == "implicit") == (v == true) && (v == true || len(a.Plugin) > 0 || a.TLS == "none" && isLoopback(host(a.Server)))
	case "user.sslcertck":
		return v == true
	case "user.sslcertfile":
		return a != nil && a.Trust.CAFile == str(v)
	case "user.smtphunt":
		if c.usr["mda"] != nil || c.usr["bsmtp"] != nil {
			return true
		}
		hs := strs(v)
		if len(hs) != 1 {
			return false
		}
		h, p, found := strings.Cut(hs[0], "/")
		if strings.HasPrefix(hs[0], "/") {
			return a.Deliver.LMTP == hs[0]
		}
		if !found {
			p = "25"
			if c.usr["lmtp"] == true {
				p = "24"
			}
		}
		target := a.Deliver.SMTP
		if c.usr["lmtp"] == true {
			target = a.Deliver.LMTP
		}
		return target == net.JoinHostPort(h, p)
	case "user.fetchdomains":
		want := strs(v)
		if len(want) == 0 {
			want = []string{c.hostname}
		}
		switch {
		case e != nil:
			return slices.Equal(e.Domains, want)
		case a.Proto == "odmr":
			return slices.Equal(a.Domains, want)
		}
		return len(strs(v)) == 0
	case "user.smtpaddress":
		if v == nil {
			return true
		}
		return a.Deliver.SMTP != "" && a.Deliver.Domain == str(v)
	case "user.mailboxes":
		want := strs(v)
		if a.Proto != "imap" {
			return len(want) == 0
		}
		if len(want) == 0 {
			want = []string{"INBOX"}
		}
		return slices.Equal(a.Folders, want)
	}
	return false
}

// defaults are fetchmail's own values for a minimal entry.
func fetchmailDefaults(t *testing.T, bin string) map[string]any {
	return configdump(t, bin, "poll defaults.example proto pop3 user u password p\n")
}

func configdump(t *testing.T, bin, rc string) map[string]any {
	t.Helper()
	home := t.TempDir()
	f := filepath.Join(home, "fetchmailrc")
	if err := os.WriteFile(f, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--configdump", "-f", f)
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "LC_ALL=C"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fetchmail --configdump: %v\n%s", err, out)
	}
	m, err := parseConfigdump(string(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// idfile defaults to $HOME/.fetchids: make it comparable across runs.
	if s, ok := m["idfile"].(string); ok && s == filepath.Join(home, ".fetchids") {
		m["idfile"] = "$HOME/.fetchids"
	}
	return m
}

func fetchmailBin(t *testing.T) string {
	bin, err := exec.LookPath("fetchmail")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("fetchmail is not installed (apt-get install fetchmail): %v", err)
		}
		t.Skip("fetchmail is not installed: the conversion is not checked against it (apt-get install fetchmail)")
	}
	return bin
}

func TestCorpusAgainstFetchmailConfigdump(t *testing.T) {
	bin := fetchmailBin(t)
	def := fetchmailDefaults(t, bin)
	defSrv := def["servers"].([]any)[0].(map[string]any)
	defUsr := defSrv["users"].([]any)[0].(map[string]any)
	me := "root"
	if u, err := user.Current(); err == nil {
		me = u.Username
	}
	hostname, _ := os.Hostname()
	files, _ := filepath.Glob("testdata/corpus/*.rc")
	if len(files) < 25 {
		t.Fatalf("corpus has %d files, want at least 25", len(files))
	}
	var diffs, checked int
	warned := map[string]bool{} // keys whose non-default value differed (and was warned about)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			dump := configdump(t, bin, string(data))
			rc, err := Parse(f, data)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			res, err := Convert(rc, Options{SecretDir: dir, LocalUser: me, Hostname: hostname})
			if err != nil {
				t.Fatal(err)
			}
			for p, s := range res.Secrets {
				if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			// Password files Convert only names (no password in the rc).
			cfgPath := filepath.Join(dir, "linkctl.yaml")
			cfg, err := config.Parse(cfgPath, res.YAML)
			if err != nil {
				for _, fix := range missingPasswordFiles(res.YAML) {
					os.WriteFile(fix, []byte("filled-in\n"), 0o600)
				}
				cfg, err = config.Parse(cfgPath, res.YAML)
			}
			if err != nil {
				t.Fatalf("config.Parse (linkctl check --offline): %v\n%s", err, res.YAML)
			}
			// Match the messages only: the file name holds keywords too.
			var msgs []string
			for _, w := range res.Warnings {
				w = strings.TrimPrefix(w, f)
				if _, m, ok := strings.Cut(w, ": "); ok {
					w = m
				}
				msgs = append(msgs, w)
			}
			warnings := strings.Join(msgs, "\n")
			c := &cmp{glob: dump, cfg: cfg, hostname: hostname, secrets: res.Secrets}
			check := func(key string, v, dflt any, where string) {
				checked++
				if c.same(key, v) {
					return
				}
				d, ok := deliberate[key]
				if !ok {
					t.Errorf("%s: %s = %#v: linkctl differs and this is not a documented difference\n%s", where, key, v, res.YAML)
					return
				}
				diffs++
				if (!valueKeys[key] && fmt.Sprint(v) == fmt.Sprint(dflt)) || (d.linkctl != nil && fmt.Sprint(v) == fmt.Sprint(d.linkctl)) {
					return
				}
				for _, w := range d.warn {
					if strings.Contains(warnings, w) {
						warned[key] = true
						return
					}
				}
				t.Errorf("%s: %s = %#v differs from fetchmail's default (%#v) and linkctl (%s), but no warning mentions %q; warnings:\n%s",
					where, key, v, dflt, d.reason, d.warn, warnings)
			}
			for k, v := range dump {
				if k == "servers" {
					continue
				}
				check("global."+k, v, def[k], "global")
			}
			accounts, etrns := cfg.Fetch.Accounts, cfg.ETRN.Servers
			for _, s := range dump["servers"].([]any) {
				srv := s.(map[string]any)
				c.srv = srv
				where := str(srv["pollname"])
				if srv["active"] != true {
					check("server.active", srv["active"], true, where)
					continue
				}
				for _, u := range srv["users"].([]any) {
					c.usr = u.(map[string]any)
					c.acc, c.etrn = nil, nil
					fields := map[string]any{}
					for k, v := range srv {
						if k != "users" && k != "active" {
							fields["server."+k] = v
						}
					}
					for k, v := range c.usr {
						fields["user."+k] = v
					}
					if srv["protocol"] == "ETRN" {
						if len(etrns) == 0 {
							t.Fatalf("%s: no etrn server for it", where)
						}
						c.etrn, etrns = &etrns[0], etrns[1:]
						for _, k := range etrnFields {
							check(k, fields[k], lookup(defSrv, defUsr, k), where)
						}
						break // one relay per entry
					}
					if len(accounts) == 0 {
						t.Fatalf("%s: no account for user %v", where, c.usr["remote"])
					}
					c.acc, accounts = &accounts[0], accounts[1:]
					for k, v := range fields {
						check(k, v, lookup(defSrv, defUsr, k), where+" user "+str(c.usr["remote"]))
					}
				}
			}
			if len(accounts)+len(etrns) > 0 {
				t.Errorf("linkctl has %d accounts and %d etrn servers fetchmail does not", len(accounts), len(etrns))
			}
		})
	}
	keys := slices.Sorted(maps.Keys(warned))
	t.Logf("%d corpus files, %d fields compared, %d at a documented difference; %d of the %d documented differences met with a non-default value and warned: %s",
		len(files), checked, diffs, len(keys), len(deliberate), strings.Join(keys, " "))
}

func lookup(srv, usr map[string]any, key string) any {
	if k, ok := strings.CutPrefix(key, "server."); ok {
		return srv[k]
	}
	return usr[strings.TrimPrefix(key, "user.")]
}

// missingPasswordFiles lists the password_file paths of a converted config.
func missingPasswordFiles(y []byte) []string {
	var out []string
	for _, l := range strings.Split(string(y), "\n") {
		if _, v, ok := strings.Cut(l, "password_file: "); ok {
			if s, err := strconv.Unquote(v); err == nil {
				v = s
			}
			if _, err := os.Stat(v); err != nil {
				out = append(out, v)
			}
		}
	}
	return out
}
