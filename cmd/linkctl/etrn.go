package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/etrn"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/pipeline"
)

func init() {
	registerStage("etrn", buildETRNStage)
	register(&command{
		Name:    "etrn",
		Args:    "[flags] HOST[:PORT] DOMAIN...",
		Summary: "send ETRN to a relay by hand and explain its answers (-v: transcript)",
		Help: `Asks the relay HOST to start delivering the mail it holds for each DOMAIN
(SMTP ETRN, RFC 1985), and says in plain words what each reply means. A DOMAIN
is sent as written: example.org, @example.org (with its subdomains) or #queue.

The relay delivers over a new connection to your MX, later: "250 Queuing
started" (what Postfix answers for any domain it will flush) does not mean
mail was waiting. 459 means the relay does not list the domain (Postfix:
relay_domains + fast_flush_domains, smtpd_etrn_restrictions).

TLS is STARTTLS by default, and required: a relay that does not offer it is an
error. --tls none talks plaintext (and allows AUTH over it). -v prints the SMTP
transcript, with AUTH shown as ***. No config is needed.

Exit status: 0 every request accepted, 7 one refused, 2 network, 3
authentication, 4 protocol error.`,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			tlsMode := fs.String("tls", "starttls", "starttls, implicit or none")
			port := fs.Int("port", 0, "relay `port` (default 25, 465 with --tls implicit)")
			helo := fs.String("helo", "", "EHLO `name` (default this host's FQDN)")
			user := fs.String("user", "", "AUTH user name")
			passwordFile := fs.String("password-file", "", "`file` whose first line is the AUTH password (mode 0600)")
			timeout := fs.Duration("timeout", 30*time.Second, "per read/write and connect timeout")
			force := fs.Bool("force", false, "send ETRN even if the relay does not offer it")
			return func(a *App, args []string) error {
				if len(args) < 2 {
					return errkind.New(errkind.Usage, false, "", "need HOST[:PORT] and at least one DOMAIN (linkctl etrn --help)")
				}
				mode, err := netconn.ParseTLSMode(*tlsMode)
				if err != nil {
					return errkind.Wrap(errkind.Usage, false, "--tls", err)
				}
				srv := etrn.Server{Addr: args[0], Domains: args[1:], TLS: mode, Helo: *helo, User: *user,
					Timeout: *timeout, Force: *force}
				if *port != 0 {
					host := args[0]
					if h, _, err := net.SplitHostPort(host); err == nil {
						host = h
					}
					srv.Addr = net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(*port))
				}
				if *user != "" {
					if *passwordFile == "" {
						return errkind.New(errkind.Usage, false, "", "--user needs --password-file")
					}
					sec := config.Secret{File: *passwordFile}
					srv.Password = sec.Get
				}
				return a.etrnByHand(srv)
			}
		},
	})
}

// etrnByHand runs one ETRN session and prints each reply with its
// reading; -v (or -vv) adds the transcript.
func (a *App) etrnByHand(srv etrn.Server) error {
	var trace func(string)
	if a.Verbose >= 1 {
		trace = func(l string) { fmt.Fprintln(a.Stdout, "  "+l) }
	}
	addr := srv.DialAddr()
	mode := srv.TLS
	fmt.Fprintf(a.Stdout, "ETRN at %s (tls: %s)\n", addr, mode)
	res := etrn.Ask(a.Ctx, srv, trace, nil)
	sent := false
	for _, d := range res.Domains {
		if !d.Sent {
			continue
		}
		sent = true
		fmt.Fprintf(a.Stdout, "%s: %s\n    %s\n", d.Domain, d.Reply.String(), d.Reading)
	}
	if res.Err == nil {
		return nil
	}
	if sent {
		// The replies and their readings are the report; only the status
		// remains to be passed on.
		return exitStatus(errkind.ExitCode(res.Err))
	}
	return res.Err
}

// buildETRNStage is the pipeline's etrn stage from the config.
func buildETRNStage(a *App, cfg *config.Config, s config.Step) (pipeline.Stage, error) {
	if len(cfg.ETRN.Servers) == 0 {
		return nil, errkind.New(errkind.Usage, false, "", "%s:%d: the pipeline has etrn, but etrn has no servers", cfg.File, s.Line)
	}
	opts, err := etrnOptions(a, cfg)
	if err != nil {
		return nil, err
	}
	name := s.Name
	if name == "" {
		name = "etrn"
	}
	return pipeline.Func{StageName: name, Fn: func(ctx context.Context, sink event.Sink) (pipeline.Report, error) {
		res, err := etrn.RunStage(ctx, opts, sink)
		rep := pipeline.Report{Summary: res.Summary(), Counts: res.Counts()}
		if err == nil && res.NothingWaiting {
			rep.Result = event.Nothing
		}
		return rep, err
	}}, nil
}

// etrnOptions translates the config into etrn.StageOptions.
func etrnOptions(a *App, cfg *config.Config) (etrn.StageOptions, error) {
	opts := etrn.StageOptions{
		Quiet: cfg.ETRN.Quiet, QuietMax: cfg.ETRN.QuietMax, Ports: cfg.ETRN.Ports,
		CountLoopback: cfg.ETRN.CountLoopback, Parallel: cfg.ETRN.Parallel, Logger: a.Log,
	}
	for _, s := range cfg.ETRN.Servers {
		mode := netconn.TLSStartTLS
		if s.TLS != "" {
			m, err := netconn.ParseTLSMode(s.TLS)
			if err != nil {
				return opts, errkind.Wrap(errkind.Usage, false, fmt.Sprintf("%s:%d: etrn server %s", cfg.File, s.Line, s.Server), err)
			}
			mode = m
		}
		srv := etrn.Server{Addr: s.Server, Domains: s.Domains, TLS: mode, Helo: s.Helo, User: s.User, Timeout: s.Timeout}
		if s.User != "" {
			srv.Password = s.Password.Get // read when the session needs it
		}
		opts.Servers = append(opts.Servers, srv)
	}
	return opts, nil
}
