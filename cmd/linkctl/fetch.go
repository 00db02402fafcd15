package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/fetch"
	"github.com/linkctl/linkctl/fetch/deliver"
	"github.com/linkctl/linkctl/fetch/odmr"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/pipeline"
)

func init() {
	registerStage("fetch", buildFetchStage)
	register(&command{
		Name:    "fetch",
		Args:    "[flags] [ACCOUNT...]",
		Summary: "pull POP3/IMAP mailboxes into the local mail system now",
		Help: `Without --server: fetches the accounts of the config (all, or the ACCOUNTs
named), as the pipeline's fetch stage would, under the same run lock.

With --server: a one-off fetch from the command line alone, no config needed:
  linkctl fetch --proto pop3 --server HOST[:PORT] --tls implicit|starttls|none \
      --user U --password-file F [--keep] [--fetchall] \
      [--deliver smtp:HOST:PORT|lmtp:PATH|maildir:PATH|mda:'ARGV...'] [--to LOCALUSER]
The seen-store lives in --state-dir. A message is deleted from the server only
after the local side accepted it and its UID was recorded.

Exit status: 0 mail fetched, 1 no mail, 2 network, 3 authentication, 10 local
delivery failed, 13 stopped at fetchlimit (see linkctl --help).`,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			o := oneOff{}
			fs.StringVar(&o.proto, "proto", "pop3", "one-off: pop3 or imap")
			fs.StringVar(&o.server, "server", "", "one-off: HOST[:PORT] of the mail server")
			fs.StringVar(&o.tls, "tls", "", "one-off: implicit, starttls or none (default starttls: no plaintext unless asked for)")
			fs.StringVar(&o.user, "user", "", "one-off: login name")
			fs.StringVar(&o.passwordFile, "password-file", "", "one-off: `file` whose first line is the password (mode 0600)")
			fs.StringVar(&o.auth, "auth", "auto", "one-off: auto, password, apop, plain, login, xoauth2, oauthbearer")
			fs.StringVar(&o.folder, "folder", "INBOX", "one-off IMAP: the folder")
			fs.BoolVar(&o.keep, "keep", false, "one-off: leave fetched mail on the server")
			fs.BoolVar(&o.fetchAll, "fetchall", false, "one-off: fetch old (already seen) messages too")
			fs.Int64Var(&o.limit, "limit", 0, "one-off: leave messages bigger than this many `bytes` on the server")
			fs.IntVar(&o.fetchLimit, "fetchlimit", 0, "one-off: at most this many messages")
			fs.IntVar(&o.commitEvery, "commit-every", 0, "one-off: end the session (QUIT) every N messages")
			fs.StringVar(&o.deliver, "deliver", "smtp:127.0.0.1:25", "one-off: smtp:HOST:PORT, lmtp:PATH|HOST:PORT, maildir:PATH or mda:'ARGV...'")
			fs.IntVar(&o.sessions, "sessions", 4, "one-off: local deliveries at once")
			fs.StringVar(&o.to, "to", "", "one-off: local recipient (default: the invoking user)")
			fs.StringVar(&o.stateDir, "state-dir", "", "one-off: where the seen-store lives (default "+config.DefaultStateDir()+")")
			fs.BoolVar(&o.noReceived, "no-received", false, "do not prepend a Received: line")
			fs.DurationVar(&o.timeout, "timeout", 0, "one-off: inactivity timeout per read/write (default 60s)")
			wait := fs.Bool("wait", false, "wait for a run in progress to end instead of exiting 8")
			return func(a *App, args []string) error {
				if o.server != "" {
					if len(args) > 0 {
						return errkind.New(errkind.Usage, false, "", "ACCOUNT names come from the config; with --server give no ACCOUNT (got %q)", args[0])
					}
					return a.fetchOneOff(o, *wait)
				}
				return a.fetchConfigured(args, *wait)
			}
		},
	})
}

// fetchConfigured runs the fetch stage of the config, for all accounts or
// the named ones.
func (a *App) fetchConfigured(names []string, wait bool) error {
	cfg, err := a.Config()
	if err != nil {
		return err
	}
	var known []string
	for _, acct := range cfg.Fetch.Accounts {
		known = append(known, acct.Name)
	}
	for _, n := range names {
		if !slices.Contains(known, n) {
			return errkind.New(errkind.Usage, false, "", "no account %q in %s (it has: %s)", n, cfg.File, strings.Join(known, ", "))
		}
	}
	if len(known) == 0 {
		return errkind.New(errkind.Usage, false, "", "%s has no fetch accounts", cfg.File)
	}
	stage := fetchStage("fetch", func() (fetch.Options, func(), error) { return a.fetchOptions(cfg, names) })
	return a.runOneStage(stage, RunLockPath(cfg), wait, "linkctl fetch")
}

// runOneStage runs stage alone under the run lock, rendering progress and
// the summary, and returns the run's exit status.
func (a *App) runOneStage(stage pipeline.Stage, lock string, wait bool, cause string) error {
	r := newRenderer(a.Stderr, a.Log)
	runner := pipeline.New(pipeline.Options{
		Steps:    []pipeline.Step{{Stage: stage}},
		LockPath: lock,
		Wait:     wait,
		Sink:     r.Sink,
		Logger:   a.Log,
	})
	rep, err := runner.Run(a.Ctx, pipeline.Request{Cause: cause})
	if errkind.KindOf(err) == errkind.Locked && len(rep.Stages) == 0 {
		return err
	}
	printSummary(a.Stdout, rep)
	if code := rep.ExitCode(); code != 0 {
		return exitStatus(code)
	}
	return nil
}

// buildFetchStage is the pipeline's fetch stage from the config.
func buildFetchStage(a *App, cfg *config.Config, s config.Step) (pipeline.Stage, error) {
	if len(cfg.Fetch.Accounts) == 0 {
		return nil, errkind.New(errkind.Usage, false, "", "%s:%d: the pipeline has fetch, but fetch has no accounts", cfg.File, s.Line)
	}
	name := s.Name
	if name == "" {
		name = "fetch"
	}
	return fetchStage(name, func() (fetch.Options, func(), error) { return a.fetchOptions(cfg, nil) }), nil
}

// fetchStage adapts fetch.Run to a pipeline stage. Options (and their
// delivery targets, whose sessions are pooled for one run) are built
// afresh for every run.
func fetchStage(name string, build func() (fetch.Options, func(), error)) pipeline.Stage {
	return pipeline.Func{StageName: name, Fn: func(ctx context.Context, sink event.Sink) (pipeline.Report, error) {
		opts, done, err := build()
		if err != nil {
			return pipeline.Report{}, err
		}
		defer done()
		res, err := fetch.Run(ctx, opts, sink)
		rep := pipeline.Report{Summary: res.Summary(), Counts: res.Counts()}
		switch {
		case err != nil:
		case res.NoMail():
			rep.Result = event.Nothing
		case res.AtFetchLimit():
			// Exit 13, as fetchmail: mail is left for the next run.
			rep.Result = event.Limited
		}
		return rep, err
	}}
}

// fetchOptions translates the config (the accounts named in only, or all)
// into fetch.Options. done closes the delivery targets.
func (a *App) fetchOptions(cfg *config.Config, only []string) (fetch.Options, func(), error) {
	targets := map[string]deliver.Target{}
	done := func() {
		for _, t := range targets {
			t.Close()
		}
	}
	opts := fetch.Options{
		Parallel: cfg.Fetch.Parallel,
		StateDir: cfg.StateDir,
		Received: cfg.Fetch.Received,
		Logger:   a.Log,
	}
	for _, ac := range cfg.Fetch.Accounts {
		if len(only) > 0 && !slices.Contains(only, ac.Name) {
			continue
		}
		key := fmt.Sprintf("%#v", ac.Deliver)
		tgt, ok := targets[key]
		if !ok {
			var err error
			tgt, err = newTarget(ac.Deliver, opts.StateDir, a)
			if err != nil {
				done()
				return opts, nil, fmt.Errorf("%s:%d: account %s: %w", cfg.File, ac.Line, ac.Name, err)
			}
			targets[key] = tgt
		}
		accts, err := a.fetchAccounts(ac, tgt)
		if err != nil {
			done()
			return opts, nil, fmt.Errorf("%s:%d: account %s: %w", cfg.File, ac.Line, ac.Name, err)
		}
		opts.Accounts = append(opts.Accounts, accts...)
	}
	return opts, done, nil
}

// fetchAccounts makes the engine's accounts for one config account: one,
// or for IMAP one per folder.
func (a *App) fetchAccounts(ac config.Account, tgt deliver.Target) ([]fetch.Account, error) {
	mode, err := netconn.ParseTLSMode(ac.TLS)
	if err != nil && ac.TLS != "" {
		return nil, errkind.Wrap(errkind.Usage, false, "tls", err)
	}
	pass := ac.Password
	password := func(ctx context.Context) (string, error) { return pass.Get(ctx) }
	var dial func(ctx context.Context) (net.Conn, error)
	if len(ac.Plugin) > 0 {
		argv := ac.Plugin
		host, port, _ := net.SplitHostPort(ac.Server)
		if host == "" {
			host = ac.Server
		}
		dial = func(ctx context.Context) (net.Conn, error) { return netconn.Plugin(ctx, argv, host, port) }
	}
	base := fetch.Account{
		Name: ac.Name, Proto: ac.Proto, Server: ac.Server, Target: tgt, To: ac.To,
		Keep: ac.Keep, KeepDays: ac.KeepDays, FetchAll: ac.FetchAll, Limit: ac.Limit,
		FetchLimit: ac.FetchLimit, CommitEvery: ac.CommitEvery, Workers: workersFor(ac.Deliver),
	}
	if ac.Envelope != "" && ac.Envelope != "none" {
		// Multidrop: recipients from the envelope header (issue 9).
		base.Multidrop = &fetch.Multidrop{Envelope: ac.Envelope, LocalDomains: ac.LocalDomains, QVirtual: ac.QVirtual}
	}
	switch strings.ToLower(ac.Proto) {
	case "odmr":
		// RFC 2645: the relay pushes over the turned-around connection
		// straight into the target; AUTH is required (odmr.Run checks).
		helo, _ := os.Hostname()
		base.Push = fetch.ODMRPush(odmr.Options{Addr: ac.Server, TLS: mode, Helo: helo, User: ac.User,
			Password: password, Domains: ac.Domains, Target: tgt, Timeout: ac.Timeout, Logger: a.Log,
			Account: ac.Name, Dial: dial})
		return []fetch.Account{base}, nil
	case "", "pop3":
		src := fetch.POP3Source{Addr: ac.Server, TLS: mode, User: ac.User, Password: password,
			Auth: ac.Auth, Timeout: ac.Timeout, Logger: a.Log, Dial: dial,
			// A plugin without a password (or auth: external) runs the
			// server as the user already: no login (fetchmail's auth ssh).
			PreAuth: ac.Auth == "external" || (len(ac.Plugin) > 0 && ac.Password.IsZero())}
		base.Open = src.Open
		return []fetch.Account{base}, nil
	case "imap":
		folders := ac.Folders
		if len(folders) == 0 {
			folders = []string{"INBOX"}
		}
		var out []fetch.Account
		for _, f := range folders {
			src := fetch.IMAPSource{Addr: ac.Server, TLS: mode, User: ac.User, Password: password,
				Auth: ac.Auth, Folder: f, Unseen: ac.Unseen, Keep: ac.Keep, MarkSeen: ac.MarkSeen,
				MoveTo: ac.MoveTo, Expunge: ac.Expunge, Compress: ac.Compress, Timeout: ac.Timeout,
				Logger: a.Log, Dial: dial}
			acct := base
			acct.Open = src.Open
			if len(folders) > 1 {
				acct.Name = ac.Name + "/" + f
			}
			out = append(out, acct)
		}
		return out, nil
	}
	return nil, errkind.New(errkind.Usage, false, "", "unknown proto %q (expected pop3, imap or odmr)", ac.Proto)
}

// workersFor is the number of deliveries an account keeps in flight:
// twice the target's sessions, so that while one delivery waits for the
// fsync of its seen-store record another already uses the session.
func workersFor(d config.Deliver) int {
	s := d.Sessions
	if s <= 0 {
		s = 4
	}
	return 2 * s
}

// newTarget builds the delivery target of a config Deliver.
func newTarget(d config.Deliver, stateDir string, a *App) (deliver.Target, error) {
	sessions := d.Sessions
	if sessions <= 0 {
		sessions = 4
	}
	switch {
	case d.SMTP != "":
		return deliver.NewSMTP(deliver.SMTPOptions{Addr: d.SMTP, Sessions: sessions, StartTLS: d.TLS == "starttls", Domain: d.Domain, Logger: a.Log}), nil
	case d.LMTP != "":
		return deliver.NewLMTP(deliver.LMTPOptions{Addr: d.LMTP, Sessions: sessions, Logger: a.Log}), nil
	case len(d.MDA) > 0:
		return deliver.NewMDA(deliver.MDAOptions{Argv: d.MDA, TempDir: stateDir, Logger: a.Log}), nil
	case d.Maildir != "":
		return deliver.NewMaildir(deliver.MaildirOptions{Path: d.Maildir, Logger: a.Log}), nil
	}
	return nil, errkind.New(errkind.Usage, false, "", "no delivery target (fetch.deliver: smtp, lmtp, mda or maildir)")
}

// oneOff holds the flags of a fetch from the command line alone.
type oneOff struct {
	proto, server, tls, user, passwordFile, auth, folder string
	keep, fetchAll, noReceived                           bool
	limit                                                int64
	fetchLimit, commitEvery, sessions                    int
	deliver, to, stateDir                                string
	timeout                                              time.Duration
}

// parseDeliver reads --deliver.
func parseDeliver(s string, sessions int) (config.Deliver, error) {
	kind, rest, ok := strings.Cut(s, ":")
	d := config.Deliver{Sessions: sessions}
	if ok && rest != "" {
		switch kind {
		case "smtp":
			d.SMTP, d.Domain = netconn.HostPort(rest, 25), config.DefaultDomain
			return d, nil
		case "lmtp":
			d.LMTP = rest
			return d, nil
		case "maildir":
			d.Maildir = rest
			return d, nil
		case "mda":
			d.MDA = strings.Fields(rest) // argv split on spaces: no shell, no quoting
			return d, nil
		}
	}
	return d, errkind.New(errkind.Usage, false, "", "--deliver %q: expected smtp:HOST:PORT, lmtp:PATH, maildir:PATH or mda:'ARGV...'", s)
}

func (a *App) fetchOneOff(o oneOff, wait bool) error {
	if o.user == "" {
		return errkind.New(errkind.Usage, false, "", "--server needs --user")
	}
	if o.passwordFile == "" {
		return errkind.New(errkind.Usage, false, "", "--server needs --password-file (a file whose first line is the password, mode 0600)")
	}
	mode := netconn.TLSStartTLS
	if o.tls != "" {
		m, err := netconn.ParseTLSMode(o.tls)
		if err != nil {
			return errkind.Wrap(errkind.Usage, false, "--tls", err)
		}
		mode = m
	}
	d, err := parseDeliver(o.deliver, o.sessions)
	if err != nil {
		return err
	}
	to := o.to
	if to == "" {
		to = os.Getenv("USER")
		if to == "" {
			to = "root"
		}
	}
	stateDir := o.stateDir
	if stateDir == "" {
		stateDir = config.DefaultStateDir()
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return errkind.Wrap(errkind.Usage, false, "cannot create the state directory "+stateDir, err)
	}
	ac := config.Account{
		Name: o.user + "@" + o.server, Proto: o.proto, Server: o.server, TLS: string(mode), User: o.user,
		Password: config.Secret{File: o.passwordFile}, Auth: o.auth, To: []string{to},
		Keep: o.keep, FetchAll: o.fetchAll, Limit: o.limit, FetchLimit: o.fetchLimit,
		CommitEvery: o.commitEvery, Deliver: d, Folders: []string{o.folder}, Timeout: o.timeout,
	}
	stage := fetchStage("fetch", func() (fetch.Options, func(), error) {
		tgt, err := newTarget(d, stateDir, a)
		if err != nil {
			return fetch.Options{}, nil, err
		}
		accts, err := a.fetchAccounts(ac, tgt)
		if err != nil {
			tgt.Close()
			return fetch.Options{}, nil, err
		}
		return fetch.Options{Accounts: accts, StateDir: stateDir, Received: !o.noReceived, Logger: a.Log},
			func() { tgt.Close() }, nil
	})
	return a.runOneStage(stage, filepath.Join(stateDir, "run.lock"), wait, "linkctl fetch --server "+o.server)
}
