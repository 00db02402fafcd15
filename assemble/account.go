package assemble

import (
	"context"
	"net"
	"os"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/daemon"
	"github.com/linkctl/linkctl/fetch"
	"github.com/linkctl/linkctl/fetch/deliver"
	"github.com/linkctl/linkctl/fetch/imap"
	"github.com/linkctl/linkctl/fetch/odmr"
	"github.com/linkctl/linkctl/internal/netconn"
)

// dialer is how an account's connection is made: nil for TCP to
// ac.Server (the clients dial it, with TLS as ac.TLS says), or the
// account's plugin command, whose stdin/stdout is the stream (issue 9).
// The fetch stage and the IDLE watcher of the account both use it.
func dialer(ac config.Account) func(ctx context.Context) (net.Conn, error) {
	if len(ac.Plugin) == 0 {
		return nil
	}
	argv := ac.Plugin
	host, port, err := net.SplitHostPort(ac.Server)
	if err != nil { // validation resolves host:port; kept for safety
		host = ac.Server
	}
	return func(ctx context.Context) (net.Conn, error) { return netconn.Plugin(ctx, argv, host, port) }
}

func password(ac config.Account) func(ctx context.Context) (string, error) {
	pass := ac.Password
	return func(ctx context.Context) (string, error) { return pass.Get(ctx) }
}

// imapOptions is how an IMAP account connects and logs in: one
// description for its fetch (every folder) and its IDLE watchers.
func (as *Assembler) imapOptions(ac config.Account) imap.Options {
	return imap.Options{
		Addr: ac.Server, TLS: ac.TLS, TLSConfig: tlsConfig(ac.Trust, ac.Server), User: ac.User, Password: password(ac), Auth: ac.Auth,
		Compress: ac.Compress, Timeout: ac.Timeout, Logger: as.Logger, Dial: dialer(ac),
		MaxMessages: ac.MaxMessages,
	}
}

// workers is the number of deliveries an account keeps in flight: twice
// the target's sessions, so that while one delivery waits for the fsync of
// its seen-store record another already uses the session.
func workers(d config.Deliver) int { return 2 * d.Sessions }

// Accounts makes the fetch engine's accounts for one config account: one,
// or for IMAP one per folder, all delivering into tgt.
func (as *Assembler) Accounts(ac config.Account, tgt deliver.Target) []fetch.Account {
	base := fetch.Account{
		Name: ac.Name, Proto: string(ac.Proto), Server: ac.Server, Target: tgt, To: ac.To,
		Keep: ac.Keep, KeepDays: ac.KeepDays, FetchAll: ac.FetchAll, Limit: ac.Limit,
		FetchLimit: ac.FetchLimit, CommitEvery: ac.CommitEvery, Workers: workers(ac.Deliver),
	}
	if ac.Envelope != "" && ac.Envelope != "none" {
		// Multidrop: recipients from the envelope header (issue 9).
		base.Multidrop = &fetch.Multidrop{Envelope: ac.Envelope, LocalDomains: ac.LocalDomains, QVirtual: ac.QVirtual}
	}
	switch ac.Proto {
	case config.ODMR:
		// RFC 2645: the relay pushes over the turned-around connection
		// straight into the target; AUTH is required (odmr.Run checks).
		helo, _ := os.Hostname()
		base.Push = fetch.ODMRPush(odmr.Options{Addr: ac.Server, TLS: ac.TLS, TLSConfig: tlsConfig(ac.Trust, ac.Server), Helo: helo, User: ac.User,
			Password: password(ac), Domains: ac.Domains, Target: tgt, Timeout: ac.Timeout, Logger: as.Logger,
			Account: ac.Name, Dial: dialer(ac)})
		return []fetch.Account{base}
	case config.IMAP:
		o := as.imapOptions(ac)
		var out []fetch.Account
		for _, f := range ac.Folders {
			src := fetch.IMAPSource{Addr: o.Addr, TLS: o.TLS, TLSConfig: o.TLSConfig, User: o.User, Password: o.Password,
				Auth: o.Auth, Compress: o.Compress, Timeout: o.Timeout, Logger: o.Logger, Dial: o.Dial,
				MaxMessages: o.MaxMessages, Folder: f, Unseen: ac.Unseen, Keep: ac.Keep, MarkSeen: ac.MarkSeen,
				MoveTo: ac.MoveTo, Expunge: ac.Expunge}
			acct := base
			acct.Open = src.Open
			if len(ac.Folders) > 1 {
				acct.Name = ac.Name + "/" + f
			}
			out = append(out, acct)
		}
		return out
	}
	src := fetch.POP3Source{Addr: ac.Server, TLS: ac.TLS, TLSConfig: tlsConfig(ac.Trust, ac.Server), User: ac.User, Password: password(ac),
		Auth: ac.Auth, Timeout: ac.Timeout, Logger: as.Logger, Dial: dialer(ac), PreAuth: ac.PreAuth,
		MaxMessages: ac.MaxMessages}
	base.Open = src.Open
	return []fetch.Account{base}
}

// IdleAccounts are the accounts the daemon watches while the link is up:
// those with `idle: true` (validation allows it for IMAP only). Each
// watches every folder it fetches and, on new mail, runs the fetch stage
// for that account alone, built afresh like the pipeline's.
func (as *Assembler) IdleAccounts(cfg *config.Config) []daemon.IdleAccount {
	var out []daemon.IdleAccount
	for _, ac := range cfg.Fetch.Accounts {
		if !ac.Idle || ac.Proto != config.IMAP {
			continue
		}
		opts := as.imapOptions(ac)
		interval := cfg.Link.Interval
		out = append(out, daemon.IdleAccount{
			Name:    ac.Name,
			Folders: ac.Folders,
			Watch: func(ctx context.Context, folder string, mode func(string), notify func()) error {
				return imap.Watch(ctx, imap.WatchOptions{Options: opts, Folder: folder, Interval: interval, OnMode: mode}, notify)
			},
			Fetch:   as.FetchStage("fetch", cfg, []string{ac.Name}),
			Timeout: cfg.Fetch.Timeout,
		})
	}
	return out
}
