package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/daemon"
	"github.com/linkctl/linkctl/fetch"
	"github.com/linkctl/linkctl/fetch/imap"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
)

// idleAccounts are the accounts the daemon watches while the link is up:
// those with `idle: true` and proto imap (the others are warned about and
// fetched by the pipeline only). Each watches every folder it fetches and,
// on new mail, runs the fetch stage for that account alone, built afresh
// by fetchOptions like the pipeline's.
func (a *App) idleAccounts(cfg *config.Config) ([]daemon.IdleAccount, error) {
	var out []daemon.IdleAccount
	for _, ac := range cfg.Fetch.Accounts {
		if !ac.Idle {
			continue
		}
		if !strings.EqualFold(ac.Proto, "imap") {
			a.Log.Warn("idle: true needs proto imap: the account is fetched by the pipeline only",
				"account", ac.Name, "proto", ac.Proto, "config", fmt.Sprintf("%s:%d", cfg.File, ac.Line))
			continue
		}
		opts, err := a.idleIMAPOptions(ac)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: account %s: %w", cfg.File, ac.Line, ac.Name, err)
		}
		folders := ac.Folders
		if len(folders) == 0 {
			folders = []string{"INBOX"}
		}
		name := ac.Name
		interval := cfg.Link.Interval
		out = append(out, daemon.IdleAccount{
			Name:    name,
			Folders: folders,
			Watch: func(ctx context.Context, folder string, mode func(string), notify func()) error {
				wo := imap.WatchOptions{Options: opts, Folder: folder, Interval: interval, OnMode: mode}
				return imap.Watch(ctx, wo, notify)
			},
			Fetch: fetchStage("fetch", func() (fetch.Options, func(), error) {
				return a.fetchOptions(cfg, []string{name})
			}),
			Timeout: cfg.Fetch.Timeout,
		})
	}
	return out, nil
}

// idleIMAPOptions is how the watcher of ac connects: as the account's
// fetch does (fetchAccounts), TLS required unless the config says none.
func (a *App) idleIMAPOptions(ac config.Account) (imap.Options, error) {
	mode := netconn.TLSStartTLS
	if ac.TLS != "" {
		m, err := netconn.ParseTLSMode(ac.TLS)
		if err != nil {
			return imap.Options{}, errkind.Wrap(errkind.Usage, false, "tls", err)
		}
		mode = m
	}
	port := 143 // RFC 8314: 993 for implicit TLS
	if mode == netconn.TLSImplicit {
		port = 993
	}
	pass := ac.Password
	o := imap.Options{
		Addr: netconn.HostPort(ac.Server, port), TLS: mode, User: ac.User,
		Password: func(ctx context.Context) (string, error) { return pass.Get(ctx) },
		Auth:     ac.Auth, Compress: ac.Compress, Timeout: ac.Timeout, Logger: a.Log,
	}
	if len(ac.Plugin) > 0 {
		argv := ac.Plugin
		host, port, _ := net.SplitHostPort(ac.Server)
		if host == "" {
			host = ac.Server
		}
		o.Dial = func(ctx context.Context) (net.Conn, error) { return netconn.Plugin(ctx, argv, host, port) }
	}
	return o, nil
}

// printWatchers is the watchers' part of `linkctl status` (text form).
func printWatchers(w io.Writer, ws []daemon.WatcherStatus, pending []string) {
	if len(ws) == 0 && len(pending) == 0 {
		return
	}
	at := func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }
	fmt.Fprintln(w, "watchers (IMAP IDLE while the link is up):")
	for _, s := range ws {
		last := "no new mail yet"
		if !s.LastNotify.IsZero() {
			last = fmt.Sprintf("last new mail %s (%d notifications)", at(s.LastNotify), s.Notifications)
		}
		if s.Error != "" {
			last = s.Error
		}
		fmt.Fprintf(w, "  %-24s %-10s since %s  %s\n", s.Account+"/"+s.Folder, s.Mode, at(s.Since), last)
	}
	if len(pending) > 0 {
		fmt.Fprintf(w, "  fetch queued for: %s\n", strings.Join(pending, ", "))
	}
}
