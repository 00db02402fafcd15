package assemble

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/drop"
	"github.com/linkctl/linkctl/etrn"
	"github.com/linkctl/linkctl/fetch"
	"github.com/linkctl/linkctl/fetch/deliver"
	"github.com/linkctl/linkctl/flush"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/meter"
	"github.com/linkctl/linkctl/pipeline"
)

// FlushOptions translates the flush section.
func (as *Assembler) FlushOptions(cfg *config.Config) flush.Options {
	return flush.Options{
		MTA: cfg.Flush.MTA, Wait: cfg.Flush.Wait, Timeout: cfg.Flush.Timeout,
		FlushCommand: cfg.Flush.FlushCommand, ListCommand: cfg.Flush.ListCommand, Logger: as.Logger,
		Command: cfg.Flush.Command, Args: cfg.Flush.Args, Env: cfg.Flush.Env,
	}
}

// FlushStage adapts flush.Run to a pipeline stage.
func FlushStage(name string, opts flush.Options) pipeline.Stage {
	return pipeline.Func{StageName: name, Fn: func(ctx context.Context, sink event.Sink) (pipeline.Report, error) {
		res, err := flush.Run(ctx, opts, sink)
		rep := pipeline.Report{Summary: res.Summary(), Counts: res.Counts()}
		if err == nil && res.Waited && res.Before == 0 {
			rep.Result = event.Nothing
		}
		// Deferred mail comes back as errkind.Deferred (exit 21): the
		// pipeline still goes on to the next stages, and the MTA retries it.
		return rep, err
	}}
}

// ETRNServer is one relay of the etrn section as the ETRN client takes it.
// The password is read when the session needs it.
func ETRNServer(s config.ETRNServer) etrn.Server {
	srv := etrn.Server{Name: s.Name, Addr: s.Server, Domains: s.Domains, TLS: s.TLS, Helo: s.Helo, User: s.User, Timeout: s.Timeout,
		TLSConfig: tlsConfig(s.Trust, s.Server)}
	if s.User != "" {
		srv.Password = s.Password.Get
	}
	return srv
}

// ETRNOptions translates the etrn section.
func (as *Assembler) ETRNOptions(cfg *config.Config) etrn.StageOptions {
	opts := etrn.StageOptions{
		Quiet: cfg.ETRN.Quiet, QuietMax: cfg.ETRN.QuietMax, Ports: cfg.ETRN.Ports,
		CountLoopback: cfg.ETRN.CountLoopback, Parallel: cfg.ETRN.Parallel, Logger: as.Logger,
		StateDir: cfg.StateDir, // the learned quiet window
	}
	for _, s := range cfg.ETRN.Servers {
		opts.Servers = append(opts.Servers, ETRNServer(s))
	}
	return opts
}

// ETRNStage is the pipeline's etrn stage.
func (as *Assembler) ETRNStage(name string, cfg *config.Config) pipeline.Stage {
	opts := as.ETRNOptions(cfg)
	return pipeline.Func{StageName: name, Fn: func(ctx context.Context, sink event.Sink) (pipeline.Report, error) {
		res, err := etrn.RunStage(ctx, opts, sink)
		rep := pipeline.Report{Summary: res.Summary(), Counts: res.Counts()}
		if err == nil && res.NothingWaiting {
			rep.Result = event.Nothing
		}
		return rep, err
	}}
}

// FetchStage is the fetch stage of the accounts named in only (all when
// empty). Its options, and the delivery targets whose sessions are pooled
// for one run, are built afresh for every run.
func (as *Assembler) FetchStage(name string, cfg *config.Config, only []string) pipeline.Stage {
	return pipeline.Func{StageName: name, Fn: func(ctx context.Context, sink event.Sink) (pipeline.Report, error) {
		mr, err := meterFor(ctx)
		if err != nil {
			return pipeline.Report{}, err
		}
		opts, done := as.FetchOptions(cfg, only)
		defer done()
		if metered, _ := mr.Metered(); metered {
			// A metered link: as many messages as the budgets allow,
			// the smallest first; the rest waits for another link.
			opts.Order, opts.Admit = fetch.SmallestFirst, mr.Admit
		}
		res, err := fetch.Run(ctx, opts, sink)
		for _, a := range res.Accounts {
			mr.Count(name, a.Account, a.BytesDown)
		}
		rep := pipeline.Report{Summary: res.Summary(), Counts: res.Counts(), Accounts: res.AccountCounts()}
		switch {
		case err != nil:
		case res.NoMail() && !res.AtBudget():
			rep.Result = event.Nothing
		case res.AtFetchLimit() || res.AtBudget():
			// Exit 13, as fetchmail: mail is left for the next run (or
			// for an unmetered link).
			rep.Result = event.Limited
		}
		return rep, err
	}}
}

// FetchOptions translates the fetch section (the accounts named in only,
// or all) into fetch.Options; done closes the delivery targets. Accounts
// with the same delivery target share it.
func (as *Assembler) FetchOptions(cfg *config.Config, only []string) (opts fetch.Options, done func()) {
	targets := map[string]deliver.Target{}
	done = func() {
		for _, t := range targets {
			t.Close()
		}
	}
	opts = fetch.Options{
		Parallel: cfg.Fetch.Parallel,
		StateDir: cfg.StateDir,
		Received: cfg.Fetch.Received,
		Logger:   as.Logger,

		RunTimeout:   cfg.Fetch.Timeout,
		SessionFloor: cfg.Fetch.SessionFloor,
		MinRate:      cfg.Fetch.MinRate,
		PerMessage:   cfg.Fetch.PerMessage,
		SlotWait:     cfg.Fetch.SlotWait,
		AckWindow:    cfg.Fetch.AckWindow,
		RecordSync:   recordSync(cfg.Fetch.RecordSync),
	}
	for _, ac := range cfg.Fetch.Accounts {
		if len(only) > 0 && !slices.Contains(only, ac.Name) {
			continue
		}
		key := fmt.Sprintf("%#v", ac.Deliver)
		tgt, ok := targets[key]
		if !ok {
			tgt = as.Target(ac.Deliver, cfg.StateDir)
			targets[key] = tgt
		}
		opts.Accounts = append(opts.Accounts, as.Accounts(ac, tgt)...)
	}
	return opts, done
}

// Target is the delivery target of a config Deliver (validation leaves
// exactly one of SMTP, LMTP, MDA, Maildir set). MDA spool files go to
// stateDir.
func (as *Assembler) Target(d config.Deliver, stateDir string) deliver.Target {
	switch {
	case d.SMTP != "":
		return deliver.NewSMTP(deliver.SMTPOptions{Addr: d.SMTP, Sessions: d.Sessions, StartTLS: d.TLS == config.TLSStartTLS,
			Domain: d.Domain, TLSConfig: tlsConfig(d.Trust, d.SMTP), Logger: as.Logger})
	case d.LMTP != "":
		return deliver.NewLMTP(deliver.LMTPOptions{Addr: d.LMTP, Sessions: d.Sessions, Logger: as.Logger})
	case len(d.MDA) > 0:
		return deliver.NewMDA(deliver.MDAOptions{Argv: d.MDA, TempDir: stateDir, Logger: as.Logger})
	}
	return deliver.NewMaildir(deliver.MaildirOptions{Path: d.Maildir, Logger: as.Logger})
}

// DropStage is the pipeline's drop stage: the last one, which hangs up.
func (as *Assembler) DropStage(name string, cfg *config.Config) pipeline.Stage {
	opts := drop.Options{
		Command:   cfg.Drop.Command,
		Interface: cfg.Drop.Interface,
		Idle:      cfg.Drop.Idle,
		Logger:    as.Logger,
	}
	// Relays answering our ETRN deliver over inbound SMTP sessions: while
	// one is open the link must stay.
	if slices.Contains(StageNames(cfg.Pipeline), config.StageETRN) {
		opts.SMTPPorts = cfg.ETRN.Ports
		opts.CountLoopback = cfg.ETRN.CountLoopback
	}
	// The local MTA's queue run still delivering holds the link too.
	if slices.Contains(StageNames(cfg.Pipeline), config.StageFlush) {
		opts.OutboundPorts = drop.SMTPOutboundPorts
	}
	return pipeline.Func{StageName: name, Fn: func(ctx context.Context, sink event.Sink) (pipeline.Report, error) {
		o := opts
		// The link's counters go with the link: read them before the
		// hang-up.
		meter.RunFrom(ctx).Checkpoint()
		if d := as.daemon.Load(); d != nil {
			o.Busy = func() string { return (*d).Busy(name) }
			o.Superseded = (*d).Superseded
		}
		res, err := drop.Run(ctx, o, sink)
		rep := pipeline.Report{Summary: res.Summary}
		if err == nil && !res.Dropped {
			rep.Result = event.Skipped
		}
		return rep, err
	}}
}

// recordSync translates fetch.record_sync: 0 in the config is an fsync
// after every message, which the engine spells as a negative interval.
func recordSync(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
