package main

import (
	"flag"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/pipeline"
)

func init() {
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
			var o config.FetchFlags
			fs.StringVar(&o.Proto, "proto", "pop3", "one-off: pop3 or imap")
			fs.StringVar(&o.Server, "server", "", "one-off: HOST[:PORT] of the mail server")
			fs.StringVar(&o.TLS, "tls", "", "one-off: implicit, starttls or none (default as in the config: none on loopback, else what the port implies, else implicit)")
			fs.StringVar(&o.User, "user", "", "one-off: login name")
			fs.StringVar(&o.PasswordFile, "password-file", "", "one-off: `file` whose first line is the password (mode 0600)")
			fs.StringVar(&o.Auth, "auth", string(config.AuthAuto), "one-off: auto, password, apop, plain, login, xoauth2, oauthbearer")
			fs.StringVar(&o.Folder, "folder", "", "one-off IMAP: the folder (default INBOX)")
			fs.BoolVar(&o.Keep, "keep", false, "one-off: leave fetched mail on the server")
			fs.BoolVar(&o.FetchAll, "fetchall", false, "one-off: fetch old (already seen) messages too")
			fs.Int64Var(&o.Limit, "limit", 0, "one-off: leave messages bigger than this many `bytes` on the server")
			fs.IntVar(&o.FetchLimit, "fetchlimit", 0, "one-off: at most this many messages")
			fs.IntVar(&o.CommitEvery, "commit-every", 0, "one-off: end the session (QUIT) every N messages")
			fs.StringVar(&o.Deliver, "deliver", "smtp:"+config.DefaultSMTP, "one-off: smtp:HOST:PORT, lmtp:PATH|HOST:PORT, maildir:PATH or mda:'ARGV...'")
			fs.IntVar(&o.Sessions, "sessions", config.DefaultSessions, "one-off: local deliveries at once")
			fs.StringVar(&o.To, "to", "", "one-off: local recipient (default: the invoking user)")
			fs.StringVar(&o.StateDir, "state-dir", "", "one-off: where the seen-store lives (default "+config.DefaultStateDir()+")")
			fs.BoolVar(&o.NoReceived, "no-received", false, "do not prepend a Received: line")
			fs.DurationVar(&o.Timeout, "timeout", 0, "one-off: inactivity timeout per read/write (default 60s)")
			fs.StringVar(&o.TLSPin, "tls-pin", "", "one-off: `sha256//BASE64` pin of the server's key, as `linkctl pin` prints it")
			fs.StringVar(&o.CAFile, "ca-file", "", "one-off: PEM `file` of the CAs to trust instead of the system's")
			wait := fs.Bool("wait", false, "wait for a run in progress to end instead of exiting 8")
			return func(a *App, args []string) error {
				if o.Server != "" {
					if len(args) > 0 {
						return errkind.Permanent(errkind.Usage, "", "ACCOUNT names come from the config; with --server give no ACCOUNT (got %q)", args[0])
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
	known, err := knownAccounts(cfg, names)
	if err != nil {
		return err
	}
	if len(known) == 0 {
		return errkind.Permanent(errkind.Usage, "", "%s has no fetch accounts", cfg.File)
	}
	stage := a.assembler().FetchStage("fetch", cfg, names)
	return a.runOneStage(stage, cfg, wait, "linkctl fetch")
}

// knownAccounts returns the names of cfg's fetch accounts, or a usage
// error for the first of names that is not one of them.
func knownAccounts(cfg *config.Config, names []string) ([]string, error) {
	var known []string
	for _, acct := range cfg.Fetch.Accounts {
		known = append(known, acct.Name)
	}
	for _, n := range names {
		if !slices.Contains(known, n) {
			return nil, errkind.Permanent(errkind.Usage, "", "no account %q in %s (it has: %s)", n, cfg.File, strings.Join(known, ", "))
		}
	}
	return known, nil
}

// runOneStage runs stage alone under cfg's run lock, rendering progress
// and the summary, records the run in cfg's history, and returns the
// run's exit status.
func (a *App) runOneStage(stage pipeline.Stage, cfg *config.Config, wait bool, cause string) error {
	r := newRenderer(a.Stderr, a.Log)
	opts := pipeline.Options{
		Steps:    []pipeline.Step{{Stage: stage}},
		LockPath: RunLockPath(cfg),
		Wait:     wait,
		Sink:     r.Sink,
		Logger:   a.Log,
		Around:   a.assembler().Around(cfg),
	}
	runner := pipeline.New(opts)
	hist := a.assembler().Recorder(cfg).Begin(upLink(cfg))
	rep, err := runner.Run(a.Ctx, pipeline.Request{Cause: cause})
	if errkind.KindOf(err) == errkind.Locked && len(rep.Stages) == 0 {
		return err
	}
	hist.End(rep, time.Time{})
	printSummary(a.Stdout, rep)
	if code := rep.ExitCode(); code != 0 {
		return exitStatus(code)
	}
	return nil
}

// fetchOneOff runs a fetch from the command line alone: the flags are
// validated as a config with that one account (config.OneOffFetch), so
// they take the config's defaults and checks.
func (a *App) fetchOneOff(o config.FetchFlags, wait bool) error {
	if o.User == "" {
		return errkind.Permanent(errkind.Usage, "", "--server needs --user")
	}
	if o.PasswordFile == "" {
		return errkind.Permanent(errkind.Usage, "", "--server needs --password-file (a file whose first line is the password, mode 0600)")
	}
	cfg, err := config.OneOffFetch(o)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return errkind.WrapPermanent(errkind.Usage, "cannot create the state directory "+cfg.StateDir, err)
	}
	stage := a.assembler().FetchStage("fetch", cfg, nil)
	return a.runOneStage(stage, cfg, wait, "linkctl fetch --server "+o.Server)
}
