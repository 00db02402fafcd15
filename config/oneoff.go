package config

import (
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/linkctl/linkctl/internal/errkind"
)

// The one-off commands (`linkctl fetch --server`, `linkctl etrn HOST`) do
// not have their own defaults or checks: their flags are written as the
// config section they stand for and go through the same validation as a
// file, so the command line and a config can never disagree (issue 16).
// A problem names the flag instead of a file line:
//
//	linkctl fetch: --tls: invalid value "ssl" (expected one of: starttls, implicit, none)

// FetchFlags are the flags of `linkctl fetch --server`. Empty (zero)
// values take the config's defaults.
type FetchFlags struct {
	Proto        string // pop3 | imap
	Server       string // host[:port]
	TLS          string // "" for the config's default
	User         string
	PasswordFile string
	Auth         string
	Folder       string // IMAP; "" for INBOX
	Keep         bool
	FetchAll     bool
	NoReceived   bool
	Limit        int64
	FetchLimit   int
	CommitEvery  int
	Deliver      string // smtp:HOST[:PORT] | lmtp:PATH|HOST[:PORT] | maildir:PATH | mda:ARGV...
	Sessions     int    // 0: DefaultSessions
	To           string // "": the invoking user ($USER, else root)
	StateDir     string
	Timeout      time.Duration
	TLSPin       string // sha256//BASE64 (several separated by ;)
	CAFile       string
}

// fetchFlagOf maps a config key (the last element of a problem's path) to
// the flag that set it.
var fetchFlagOf = map[string]string{
	"proto": "--proto", "server": "--server", "tls": "--tls", "user": "--user", "password_file": "--password-file",
	"tls_pin": "--tls-pin", "ca_file": "--ca-file",
	"auth": "--auth", "folder": "--folder", "keep": "--keep", "fetchall": "--fetchall", "limit": "--limit",
	"fetchlimit": "--fetchlimit", "commit_every": "--commit-every", "to": "--to", "timeout": "--timeout",
	"state_dir": "--state-dir", "sessions": "--sessions", "deliver": "--deliver", "smtp": "--deliver",
	"lmtp": "--deliver", "maildir": "--deliver", "mda": "--deliver", "received": "--no-received",
}

// OneOffFetch validates the flags of `linkctl fetch --server` as the
// fetch section of a config with that one account, and returns that
// config. Errors are errkind.Usage, each naming its flag.
func OneOffFetch(f FetchFlags) (*Config, error) {
	var pre Errors
	to := f.To
	if to == "" {
		if to = os.Getenv("USER"); to == "" {
			to = "root"
		}
	}
	acct := yamlMap{
		{"name", f.User + "@" + f.Server}, {"proto", f.Proto}, {"server", f.Server}, {"tls", f.TLS},
		{"user", f.User}, {"password_file", f.PasswordFile}, {"auth", f.Auth}, {"folder", f.Folder},
		{"to", to}, {"keep", f.Keep}, {"fetchall", f.FetchAll}, {"limit", f.Limit},
		{"fetchlimit", f.FetchLimit}, {"commit_every", f.CommitEvery}, {"timeout", f.Timeout},
		{"tls_pin", f.TLSPin}, {"ca_file", f.CAFile},
	}
	deliver := yamlMap{{"sessions", f.Sessions}}
	kind, rest, ok := strings.Cut(f.Deliver, ":")
	switch {
	case !ok || rest == "":
		kind = ""
	case kind == "mda":
		deliver = append(deliver, yamlKV{kind, strings.Fields(rest)}) // argv split on blanks: no shell, no quoting
	case kind == "smtp" || kind == "lmtp" || kind == "maildir":
		deliver = append(deliver, yamlKV{kind, rest})
	default:
		kind = ""
	}
	if kind == "" {
		pre = append(pre, &Problem{Path: "--deliver", Msg: strconv.Quote(f.Deliver) + " is not a delivery target",
			Expected: "expected smtp:HOST:PORT, lmtp:PATH, maildir:PATH or mda:'ARGV...'"})
		deliver = append(deliver, yamlKV{"smtp", DefaultSMTP})
	}
	doc := yamlMap{
		{"state_dir", f.StateDir},
		{"fetch", yamlMap{{"received", !f.NoReceived}, {"deliver", deliver}, {"accounts", []any{acct}}}},
	}
	return oneOff("linkctl fetch", doc, fetchFlagOf, pre)
}

// ETRNFlags are the flags and arguments of `linkctl etrn`.
type ETRNFlags struct {
	Server       string // HOST[:PORT]
	Port         int    // --port: replaces the port of Server
	Domains      []string
	TLS          string // "" for the config's default
	Helo         string
	User         string
	PasswordFile string
	Timeout      time.Duration
	TLSPin       string // sha256//BASE64 (several separated by ;)
	CAFile       string
}

var etrnFlagOf = map[string]string{
	"server": "HOST[:PORT]", "domains": "DOMAIN", "tls": "--tls", "helo": "--helo", "user": "--user",
	"password_file": "--password-file", "timeout": "--timeout", "tls_pin": "--tls-pin", "ca_file": "--ca-file",
}

// OneOffETRN validates the arguments of `linkctl etrn` as an etrn section
// with that one relay, and returns that config. Errors are errkind.Usage.
func OneOffETRN(f ETRNFlags) (*Config, error) {
	server := f.Server
	if f.Port != 0 {
		host := server
		if h, _, err := net.SplitHostPort(server); err == nil {
			host = h
		}
		server = net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(f.Port))
	}
	srv := yamlMap{{"server", server}, {"domains", f.Domains}, {"tls", f.TLS}, {"helo", f.Helo},
		{"user", f.User}, {"password_file", f.PasswordFile}, {"timeout", f.Timeout},
		{"tls_pin", f.TLSPin}, {"ca_file", f.CAFile}}
	doc := yamlMap{{"etrn", yamlMap{{"servers", []any{srv}}}}}
	return oneOff("linkctl etrn", doc, etrnFlagOf, nil)
}

// oneOff writes doc as YAML, validates it like a file whose relative
// paths are taken from the working directory, and renames problems from
// config keys to the flags in flagOf.
func oneOff(cmd string, doc yamlMap, flagOf map[string]string, pre Errors) (*Config, error) {
	data, err := yaml.Marshal(doc.node())
	if err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, cmd, err)
	}
	dir, err := os.Getwd()
	if err != nil {
		dir = "/"
	}
	cfg, problems := parse(cmd, data, dir, getEnv().euid)
	problems = append(pre, problems...)
	if len(problems) == 0 {
		return cfg, nil
	}
	for _, p := range problems {
		p.File, p.Line = cmd, 0
		if p.Path == "" || strings.HasPrefix(p.Path, "-") {
			continue
		}
		key := p.Path[strings.LastIndexByte(p.Path, '.')+1:]
		if i := strings.IndexByte(key, '['); i >= 0 {
			key = key[:i]
		}
		if fl, ok := flagOf[key]; ok {
			p.Path = fl
		}
	}
	return nil, errkind.WrapPermanent(errkind.Usage, "", problems)
}

// yamlMap is an ordered mapping whose zero values are left out, so that
// an unset flag leaves its key to the config's default.
type yamlMap []yamlKV

type yamlKV struct {
	key string
	val any
}

func (m yamlMap) node() *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, kv := range m {
		v := valueNode(kv.val)
		if v == nil {
			continue
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: kv.key}, v)
	}
	return n
}

// valueNode is v as a YAML node, nil for a zero value. Strings are always
// quoted: "no" stays the text no, "0123" stays a name.
func valueNode(v any) *yaml.Node {
	str := func(s string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
	}
	switch v := v.(type) {
	case string:
		if v == "" {
			return nil
		}
		return str(v)
	case bool:
		if !v {
			return nil
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"}
	case int:
		if v == 0 {
			return nil
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(v)}
	case int64:
		if v == 0 {
			return nil
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v, 10)}
	case time.Duration:
		if v == 0 {
			return nil
		}
		return str(v.String())
	case []string:
		if len(v) == 0 {
			return nil
		}
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, s := range v {
			n.Content = append(n.Content, str(s))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, e := range v {
			if c := valueNode(e); c != nil {
				n.Content = append(n.Content, c)
			}
		}
		return n
	case yamlMap:
		return v.node()
	}
	return nil
}
