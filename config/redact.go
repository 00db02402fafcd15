package config

import (
	"bytes"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/linkctl/linkctl/internal/errkind"
)

// The out* types are the shape Redacted prints: the same keys as the file,
// every default filled in, durations as text, secrets as ***. Parsing the
// output again gives the same Config (with "***" as the password), which
// the tests check.

type outConfig struct {
	Link          outLink   `yaml:"link"`
	StateDir      string    `yaml:"state_dir"`
	ControlSocket string    `yaml:"control_socket"`
	MetricsFile   string    `yaml:"metrics_file,omitempty"`
	Log           outLog    `yaml:"log"`
	Pipeline      []any     `yaml:"pipeline"`
	Flush         outFlush  `yaml:"flush"`
	ETRN          *outETRN  `yaml:"etrn,omitempty"`
	Fetch         *outFetch `yaml:"fetch,omitempty"`
	Drop          *outDrop  `yaml:"drop,omitempty"`
	Dial          *outDial  `yaml:"dial,omitempty"`
}

type outLink struct {
	Watch    []string    `yaml:"watch,flow"`
	Settle   outDur      `yaml:"settle"`
	Interval outDur      `yaml:"interval"`
	Policies []outPolicy `yaml:"policies,omitempty"`
}

type outPolicy struct {
	Match      string     `yaml:"match"`
	Metered    string     `yaml:"metered"`
	Budget     *outBudget `yaml:"budget,omitempty,flow"`
	MaxMessage int64      `yaml:"max_message,omitempty"`
}

type outBudget struct {
	Run   int64 `yaml:"run,omitempty"`
	Day   int64 `yaml:"day,omitempty"`
	Month int64 `yaml:"month,omitempty"`
}

type outLog struct {
	File   string `yaml:"file,omitempty"`
	Syslog bool   `yaml:"syslog"`
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

type outStep struct {
	Stage   string   `yaml:"stage,omitempty"`
	Exec    []string `yaml:"exec,omitempty,flow"`
	Name    string   `yaml:"name,omitempty"`
	Timeout outDur   `yaml:"timeout,omitempty"`
	OnError string   `yaml:"on_error"`
}

type outFlush struct {
	MTA          string   `yaml:"mta"`
	Wait         string   `yaml:"wait"`
	Timeout      outDur   `yaml:"timeout"`
	OnError      string   `yaml:"on_error"`
	FlushCommand []string `yaml:"flush_command,omitempty,flow"`
	ListCommand  []string `yaml:"list_command,omitempty,flow"`
}

type outETRN struct {
	Quiet         outDur          `yaml:"quiet"`
	QuietMax      outDur          `yaml:"quiet_max"`
	Ports         []int           `yaml:"ports,flow"`
	CountLoopback bool            `yaml:"count_loopback"`
	Parallel      int             `yaml:"parallel"`
	Timeout       outDur          `yaml:"timeout,omitempty"`
	OnError       string          `yaml:"on_error"`
	Servers       []outETRNServer `yaml:"servers"`
}

type outSecret struct {
	Password        string   `yaml:"password,omitempty"`
	PasswordFile    string   `yaml:"password_file,omitempty"`
	PasswordCommand []string `yaml:"password_command,omitempty,flow"`
}

type outETRNServer struct {
	Name      string   `yaml:"name,omitempty"`
	Server    string   `yaml:"server"`
	Domains   []string `yaml:"domains,flow"`
	TLS       TLSMode  `yaml:"tls"`
	outTrust  `yaml:",inline"`
	Helo      string `yaml:"helo,omitempty"`
	User      string `yaml:"user,omitempty"`
	outSecret `yaml:",inline"`
	Timeout   outDur `yaml:"timeout,omitempty"`
}

type outTrust struct {
	TLSPin    []string `yaml:"tls_pin,omitempty"`
	CAFile    string   `yaml:"ca_file,omitempty"`
	TLSVerify string   `yaml:"tls_verify,omitempty"`
}

func outTr(t TLSTrust) outTrust {
	o := outTrust{TLSPin: t.Strings(), CAFile: t.CAFile}
	if t.PinOnly {
		o.TLSVerify = VerifyPinOnly
	}
	return o
}

type outDeliver struct {
	SMTP     string   `yaml:"smtp,omitempty"`
	LMTP     string   `yaml:"lmtp,omitempty"`
	MDA      []string `yaml:"mda,omitempty,flow"`
	Maildir  string   `yaml:"maildir,omitempty"`
	Sessions int      `yaml:"sessions"`
	TLS      TLSMode  `yaml:"tls,omitempty"`
	outTrust `yaml:",inline"`
	Domain   string `yaml:"domain,omitempty"`
}

type outFetch struct {
	Parallel int        `yaml:"parallel"`
	Deliver  outDeliver `yaml:"deliver"`
	Received bool       `yaml:"received"`
	Timeout  outDur     `yaml:"timeout,omitempty"`
	OnError  string     `yaml:"on_error"`

	SessionFloor outDur `yaml:"session_floor"`
	MinRate      int64  `yaml:"min_rate"`
	PerMessage   outDur `yaml:"per_message"`
	SlotWait     outDur `yaml:"slot_wait"`
	AckWindow    int    `yaml:"ack_window"`
	RecordSync   outDur `yaml:"record_sync"`

	Accounts []outAccount `yaml:"accounts"`
}

type outAccount struct {
	Name         string  `yaml:"name"`
	Proto        Proto   `yaml:"proto"`
	Server       string  `yaml:"server"`
	TLS          TLSMode `yaml:"tls"`
	outTrust     `yaml:",inline"`
	User         string `yaml:"user,omitempty"`
	outSecret    `yaml:",inline"`
	Auth         Auth        `yaml:"auth"`
	To           []string    `yaml:"to,omitempty,flow"`
	Keep         bool        `yaml:"keep"`
	FetchAll     bool        `yaml:"fetchall"`
	Limit        int64       `yaml:"limit,omitempty"`
	FetchLimit   int         `yaml:"fetchlimit,omitempty"`
	MaxMessages  int         `yaml:"max_messages"`
	CommitEvery  int         `yaml:"commit_every,omitempty"`
	KeepDays     int         `yaml:"keep_days,omitempty"`
	Folders      []string    `yaml:"folders,omitempty,flow"`
	Unseen       bool        `yaml:"unseen,omitempty"`
	MarkSeen     bool        `yaml:"mark_seen,omitempty"`
	MoveTo       string      `yaml:"move_to,omitempty"`
	Expunge      string      `yaml:"expunge,omitempty"`
	Idle         bool        `yaml:"idle,omitempty"`
	Compress     string      `yaml:"compress,omitempty"`
	Plugin       []string    `yaml:"plugin,omitempty,flow"`
	Timeout      outDur      `yaml:"timeout,omitempty"`
	Deliver      *outDeliver `yaml:"deliver,omitempty"`
	LocalDomains []string    `yaml:"localdomains,omitempty,flow"`
	Envelope     string      `yaml:"envelope,omitempty"`
	QVirtual     string      `yaml:"qvirtual,omitempty"`
	Domains      []string    `yaml:"domains,omitempty,flow"`
}

type outDrop struct {
	Command   []string `yaml:"command,omitempty,flow"`
	Interface string   `yaml:"interface,omitempty"`
	Idle      outDur   `yaml:"idle"`
	Timeout   outDur   `yaml:"timeout,omitempty"`
	OnError   string   `yaml:"on_error"`
}

type outDial struct {
	Command       []string `yaml:"command,flow"`
	Interface     string   `yaml:"interface,omitempty"`
	QueueAge      outDur   `yaml:"queue_age"`
	QueueCount    int      `yaml:"queue_count"`
	At            []string `yaml:"at,omitempty,flow"`
	Every         outDur   `yaml:"every"`
	Windows       []string `yaml:"windows,omitempty,flow"`
	Never         []string `yaml:"never,omitempty,flow"`
	CheckEvery    outDur   `yaml:"check_every"`
	AppearTimeout outDur   `yaml:"appear_timeout"`
	Retries       int      `yaml:"retries"`
	Backoff       outDur   `yaml:"backoff"`
	BackoffMax    outDur   `yaml:"backoff_max"`
}

func outDialOf(d Dial) *outDial {
	o := &outDial{Command: d.Command, Interface: d.Interface, QueueAge: durStr(d.QueueAge), QueueCount: d.QueueCount,
		Every: durStr(d.Every), CheckEvery: durStr(d.CheckEvery), AppearTimeout: durStr(d.AppearTimeout),
		Retries: d.Retries, Backoff: durStr(d.Backoff), BackoffMax: durStr(d.BackoffMax)}
	for _, t := range d.At {
		o.At = append(o.At, t.String())
	}
	for _, w := range d.Windows {
		o.Windows = append(o.Windows, w.String())
	}
	for _, w := range d.Never {
		o.Never = append(o.Never, w.String())
	}
	return o
}

// outDur prints "0" as a plain 0 rather than the quoted string "0".
type outDur string

func (d outDur) MarshalYAML() (any, error) {
	if d == "0" {
		return 0, nil
	}
	return string(d), nil
}

// durStr writes a duration as a person would: 5m, 1h30m, 2s.
func durStr(d time.Duration) outDur {
	if d == 0 {
		return "0"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return outDur(s)
}

func durOpt(d time.Duration) outDur {
	if d == 0 {
		return ""
	}
	return durStr(d)
}

func outSec(s Secret) outSecret {
	o := outSecret{PasswordFile: s.File, PasswordCommand: s.Command}
	if s.Inline != "" {
		o.Password = "***"
	}
	return o
}

func outDel(d Deliver) outDeliver {
	return outDeliver{SMTP: d.SMTP, LMTP: d.LMTP, MDA: d.MDA, Maildir: d.Maildir, Sessions: d.Sessions, TLS: d.TLS,
		outTrust: outTr(d.Trust), Domain: d.Domain}
}

func outSteps(steps []Step) []any {
	out := make([]any, 0, len(steps))
	for _, s := range steps {
		if len(s.Group) > 0 {
			out = append(out, outSteps(s.Group))
			continue
		}
		o := outStep{Name: s.Name, Timeout: durOpt(s.Timeout), OnError: string(s.OnError)}
		if s.Stage == StageExec {
			o.Exec = s.Argv
		} else {
			o.Stage = s.Stage
			if o.Name == s.Stage {
				o.Name = ""
			}
		}
		out = append(out, o)
	}
	return out
}

// Redacted returns the effective config (every default applied) as YAML,
// with inline passwords shown as ***, for `linkctl check`. Sections that
// were absent are left out, except flush, which `linkctl flush` can run
// without one.
func (c *Config) Redacted() ([]byte, error) {
	o := outConfig{
		Link:          outLink{Watch: c.Link.Watch, Settle: durStr(c.Link.Settle), Interval: durStr(c.Link.Interval), Policies: outPolicies(c.Link.Policies)},
		StateDir:      c.StateDir,
		ControlSocket: c.ControlSocket,
		MetricsFile:   c.MetricsFile,
		Log:           outLog(c.Log),
		Pipeline:      outSteps(c.Pipeline),
		Flush: outFlush{MTA: c.Flush.MTA, Wait: c.Flush.Wait, Timeout: durStr(c.Flush.Timeout), OnError: string(c.Flush.OnError),
			FlushCommand: c.Flush.FlushCommand, ListCommand: c.Flush.ListCommand},
	}
	if len(c.ETRN.Servers) > 0 {
		e := &outETRN{Quiet: durStr(c.ETRN.Quiet), QuietMax: durStr(c.ETRN.QuietMax), Ports: c.ETRN.Ports,
			CountLoopback: c.ETRN.CountLoopback, Parallel: c.ETRN.Parallel, Timeout: durOpt(c.ETRN.Timeout), OnError: string(c.ETRN.OnError)}
		for _, s := range c.ETRN.Servers {
			e.Servers = append(e.Servers, outETRNServer{Name: s.Name, Server: s.Server, Domains: s.Domains, TLS: s.TLS, outTrust: outTr(s.Trust),
				Helo: s.Helo, User: s.User, outSecret: outSec(s.Password), Timeout: durOpt(s.Timeout)})
		}
		o.ETRN = e
	}
	if len(c.Fetch.Accounts) > 0 {
		f := &outFetch{Parallel: c.Fetch.Parallel, Deliver: outDel(c.Fetch.Deliver), Received: c.Fetch.Received,
			Timeout: durOpt(c.Fetch.Timeout), OnError: string(c.Fetch.OnError),
			SessionFloor: durStr(c.Fetch.SessionFloor), MinRate: c.Fetch.MinRate, PerMessage: durStr(c.Fetch.PerMessage),
			SlotWait: durStr(c.Fetch.SlotWait), AckWindow: c.Fetch.AckWindow, RecordSync: durStr(c.Fetch.RecordSync)}
		for _, a := range c.Fetch.Accounts {
			oa := outAccount{Name: a.Name, Proto: a.Proto, Server: a.Server, TLS: a.TLS, outTrust: outTr(a.Trust), User: a.User, outSecret: outSec(a.Password),
				Auth: a.Auth, To: a.To, Keep: a.Keep, FetchAll: a.FetchAll, Limit: a.Limit, FetchLimit: a.FetchLimit, MaxMessages: a.MaxMessages,
				CommitEvery: a.CommitEvery, KeepDays: a.KeepDays, Folders: a.Folders, Unseen: a.Unseen, MarkSeen: a.MarkSeen,
				MoveTo: a.MoveTo, Expunge: a.Expunge, Idle: a.Idle, Compress: a.Compress, Plugin: a.Plugin,
				Timeout: durOpt(a.Timeout), LocalDomains: a.LocalDomains, Envelope: a.Envelope, QVirtual: a.QVirtual, Domains: a.Domains}
			if !sameDeliver(a.Deliver, c.Fetch.Deliver) {
				d := outDel(a.Deliver)
				oa.Deliver = &d
			}
			f.Accounts = append(f.Accounts, oa)
		}
		o.Fetch = f
	}
	if len(c.Drop.Command) > 0 || c.Drop.Interface != "" {
		o.Drop = &outDrop{Command: c.Drop.Command, Interface: c.Drop.Interface, Idle: durStr(c.Drop.Idle),
			Timeout: durOpt(c.Drop.Timeout), OnError: string(c.Drop.OnError)}
	}
	if len(c.Dial.Command) > 0 {
		o.Dial = outDialOf(c.Dial)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(o); err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "cannot print the config", err)
	}
	if err := enc.Close(); err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "cannot print the config", err)
	}
	return buf.Bytes(), nil
}

func sameDeliver(a, b Deliver) bool {
	if len(a.MDA) != len(b.MDA) {
		return false
	}
	for i := range a.MDA {
		if a.MDA[i] != b.MDA[i] {
			return false
		}
	}
	return a.SMTP == b.SMTP && a.LMTP == b.LMTP && a.Maildir == b.Maildir && a.Sessions == b.Sessions && a.TLS == b.TLS &&
		reflect.DeepEqual(a.Trust, b.Trust)
}

// Hosts lists the host names (without port) of every remote server the
// config talks to, ETRN relays first, then accounts, each once, for the
// reachability check of `linkctl check`.
func Hosts(c *Config) []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range Endpoints(c) {
		h, _, err := splitHostPort(e)
		if err != nil || seen[h] {
			continue
		}
		seen[h] = true
		out = append(out, h)
	}
	return out
}

// Endpoints lists host:port of every remote server (ETRN relays, then
// accounts without a plugin), each once.
func Endpoints(c *Config) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, s := range c.ETRN.Servers {
		add(s.Server)
	}
	for _, a := range c.Fetch.Accounts {
		if len(a.Plugin) == 0 {
			add(a.Server)
		}
	}
	return out
}

// outPolicies shows the link policies, the shorthand as its "*" policy.
func outPolicies(ps []LinkPolicy) []outPolicy {
	var out []outPolicy
	for _, p := range ps {
		o := outPolicy{Match: p.Match, Metered: string(p.Metered), MaxMessage: p.MaxMessage}
		if b := p.Budget; b.Run > 0 || b.Day > 0 || b.Month > 0 {
			o.Budget = &outBudget{Run: b.Run, Day: b.Day, Month: b.Month}
		}
		out = append(out, o)
	}
	return out
}
