package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/linkctl/linkctl/assemble"
	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/etrn"
	"github.com/linkctl/linkctl/internal/errkind"
)

func init() {
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

TLS is as in a config's etrn server: none for a relay on loopback, implicit on
port 465, else STARTTLS, and required: a relay that does not offer it is an
error. --tls none talks plaintext (and allows AUTH over it). -v prints the SMTP
transcript, with AUTH shown as ***. No config is needed.

Exit status: 0 every request accepted, 7 one refused, 2 network, 3
authentication, 4 protocol error.`,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			var f config.ETRNFlags
			fs.StringVar(&f.TLS, "tls", "", "starttls, implicit or none (default none on loopback, else starttls, implicit on port 465)")
			fs.StringVar(&f.TLSPin, "tls-pin", "", "`sha256//BASE64` pin of the relay's key, as `linkctl pin` prints it")
			fs.StringVar(&f.CAFile, "ca-file", "", "PEM `file` of the CAs to trust instead of the system's")
			fs.IntVar(&f.Port, "port", 0, "relay `port` (default 25, 465 with --tls implicit)")
			fs.StringVar(&f.Helo, "helo", "", "EHLO `name` (default this host's FQDN)")
			fs.StringVar(&f.User, "user", "", "AUTH user name")
			fs.StringVar(&f.PasswordFile, "password-file", "", "`file` whose first line is the AUTH password (mode 0600)")
			fs.DurationVar(&f.Timeout, "timeout", 30*time.Second, "per read/write and connect timeout")
			force := fs.Bool("force", false, "send ETRN even if the relay does not offer it")
			return func(a *App, args []string) error {
				if len(args) < 2 {
					return errkind.Permanent(errkind.Usage, "", "need HOST[:PORT] and at least one DOMAIN (linkctl etrn --help)")
				}
				if f.User != "" && f.PasswordFile == "" {
					return errkind.Permanent(errkind.Usage, "", "--user needs --password-file")
				}
				f.Server, f.Domains = args[0], args[1:]
				cfg, err := config.OneOffETRN(f)
				if err != nil {
					return err
				}
				srv := assemble.ETRNServer(cfg.ETRN.Servers[0])
				srv.Force = *force
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
	addr := srv.Addr // host:port, resolved by the config
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
