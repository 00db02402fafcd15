package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/internal/errkind"
)

func init() {
	register(&command{
		Name:    "init",
		Args:    "[--non-interactive] [-o FILE] [flags]",
		Summary: "write a config by answering a few questions",
		Help: `On a terminal, asks for the uplink interface, the local MTA, an ETRN relay and its
domains, and the mailboxes to fetch (server, protocol, TLS, user, password, local
recipient), tries to reach every server, and writes a config with mode 0600
(default: linkctl's default config path; -o to choose). Nothing is written without
a last confirmation.

--non-interactive takes the same answers from flags, for scripts:
  linkctl init --non-interactive --iface ppp0 --mta postfix \
      --etrn-server mail.isp.example --etrn-domain example.org \
      --proto pop3 --server pop.isp.example --user me --password-file /etc/linkctl/isp.pass \
      --to me --drop-command "poff isp"`,
		Setup: func(fs *flag.FlagSet) func(*App, []string) error {
			o := &initAnswers{}
			nonInteractive := fs.Bool("non-interactive", false, "take every answer from flags; never prompt")
			out := fs.String("o", "", "write the config to `file` (default: the default config path)")
			force := fs.Bool("force", false, "overwrite an existing config")
			noCheck := fs.Bool("no-check", false, "do not try to reach the servers")
			fs.StringVar(&o.iface, "iface", "default-route", "the uplink `interface` (ppp0, wwan*, wg0) or default-route")
			fs.StringVar(&o.mta, "mta", "auto", "local MTA: auto, postfix, sendmail, exim, opensmtpd, or none (no flush)")
			fs.StringVar(&o.etrnServer, "etrn-server", "", "relay to send ETRN to, `host[:port]`")
			etrnDomains := fs.String("etrn-domain", "", "domains the relay holds mail for (comma-separated)")
			fs.StringVar(&o.acct.proto, "proto", initProto, "mailbox protocol: pop3 or imap")
			fs.StringVar(&o.acct.server, "server", "", "mailbox server `host[:port]` (none: no fetch)")
			fs.StringVar(&o.acct.tls, "tls", "", "implicit, starttls or none (default: linkctl's choice for the port)")
			fs.StringVar(&o.acct.user, "user", "", "mailbox login name")
			fs.StringVar(&o.acct.passwordFile, "password-file", "", "file holding the mailbox password (mode 0600)")
			pwCmd := fs.String("password-command", "", "command printing the password (split on spaces, no shell)")
			fs.StringVar(&o.acct.to, "to", "", "local recipient of fetched mail (default: you)")
			fs.BoolVar(&o.acct.keep, "keep", false, "leave fetched mail on the server")
			fs.StringVar(&o.deliver, "deliver", "127.0.0.1:25", "local SMTP server fetched mail goes to")
			drop := fs.String("drop-command", "", "command that hangs up the link (split on spaces), e.g. \"poff isp\"")
			return func(a *App, args []string) error {
				if len(args) > 0 {
					return errkind.Permanent(errkind.Usage, "", "init takes no arguments (answers come from prompts or flags)")
				}
				o.etrnDomains = splitList(*etrnDomains)
				o.acct.passwordCommand = strings.Fields(*pwCmd)
				o.drop = strings.Fields(*drop)
				if o.acct.to == "" {
					o.acct.to = localUser()
				}
				if o.acct.server != "" {
					o.accounts = []initAccount{o.acct}
				}
				path := *out
				if path == "" {
					path = a.ConfigPath
				}
				return a.initConfig(o, path, *nonInteractive, *force, !*noCheck)
			}
		},
	})
}

// initProto is the protocol init proposes, at its prompt and for --proto.
// POP3: the mailboxes linkctl empties into the local MTA are ISP and relay
// mailboxes that every provider serves over POP3, and fetch-then-delete is
// POP3's own model; it costs the fewest bytes and round trips on a metered
// link (PIPELINING, no folder or flag traffic); and scripts that already
// call `init --non-interactive` without --proto keep their meaning. IMAP
// is one answer away (keep, folders, IDLE).
const initProto = string(config.POP3)

type initAccount struct {
	proto, server, tls, user string
	password, passwordFile   string
	passwordCommand          []string
	to                       string
	keep                     bool
}

type initAnswers struct {
	iface, mta  string
	etrnServer  string
	etrnDomains []string
	acct        initAccount // from flags
	accounts    []initAccount
	deliver     string
	drop        []string
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

func (a *App) initConfig(o *initAnswers, path string, nonInteractive, force, check bool) error {
	if _, err := os.Lstat(path); err == nil && !force {
		return errkind.Permanent(errkind.Usage, "", "%s exists: linkctl init does not overwrite a config (use --force, or -o FILE)", path)
	}
	var p *prompter
	if !nonInteractive {
		f, ok := a.Stdin.(*os.File)
		if !ok || !isTerminal(f) || !isTerminal(a.Stdout) {
			return errkind.Permanent(errkind.Usage, "", "init asks its questions on a terminal; use --non-interactive with flags in scripts")
		}
		p = &prompter{r: bufio.NewReader(f), w: a.Stdout, fd: int(f.Fd())}
		dir, err := filepath.Abs(filepath.Dir(path))
		if err != nil {
			dir = filepath.Dir(path)
		}
		if err := p.interview(o, dir); err != nil {
			return err
		}
	}
	yaml := o.yaml(false)
	cfg, err := config.Parse(path, yaml)
	if err != nil {
		return errkind.WrapPermanent(errkind.Usage, "these answers do not make a valid config", err)
	}
	if check {
		a.reachability(cfg)
	}
	if p != nil {
		// The preview is what a shoulder or a terminal's scrollback sees:
		// never the password typed at the hidden prompt.
		fmt.Fprintf(p.w, "\n%s\n", o.yaml(true))
		if !p.yes(fmt.Sprintf("Write this to %s?", path), true) {
			fmt.Fprintln(p.w, "Nothing written.")
			return exitStatus(errkind.NoMail) // not an error; nothing done
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return errkind.WrapPermanent(errkind.Internal, "cannot create "+filepath.Dir(path), err)
	}
	if err := writeFile0600(path, yaml, force); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "Wrote %s (mode 0600).\n", path)
	for _, ac := range o.accounts {
		if ac.passwordFile == "" {
			continue
		}
		if _, err := os.Stat(ac.passwordFile); err != nil {
			fmt.Fprintf(a.Stdout, "Put the password for %s on the first line of %s (chmod 600).\n", ac.user, ac.passwordFile)
		}
	}
	// Name the file: the next commands must read this config, not the
	// default one (or none).
	c := shQuote(path)
	fmt.Fprintf(a.Stdout, "Next: linkctl check -c %s, then linkctl run -c %s.\n", c, c)
	return nil
}

// shQuote quotes s for a POSIX shell when it needs it, so that a hint can
// be pasted as it is.
func shQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// reachability tries a TCP connection to every server: a hint, not a
// verdict (the link may well be down while the config is written).
func (a *App) reachability(cfg *config.Config) {
	for _, h := range probeAddrs(cfg) {
		ctx, cancel := context.WithTimeout(a.Ctx, 5*time.Second)
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", h)
		cancel()
		if err != nil {
			fmt.Fprintf(a.Stdout, "  %s: not reachable now (%v); fine if the link is down\n", h, err)
			continue
		}
		c.Close()
		fmt.Fprintf(a.Stdout, "  %s: reachable\n", h)
	}
}

// probeAddrs are the addresses the config written will dial, as the
// config resolved them (its ports, defaulted in one place), so the probe
// tries the port the daemon will use.
func probeAddrs(cfg *config.Config) []string {
	var hosts []string
	for _, s := range cfg.ETRN.Servers {
		hosts = append(hosts, s.Server)
	}
	for _, ac := range cfg.Fetch.Accounts {
		hosts = append(hosts, ac.Server)
	}
	return hosts
}

// yaml writes the answers as a linkctl.yaml; preview shows a typed
// password as *** (the file written holds it, mode 0600).
func (o *initAnswers) yaml(preview bool) []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	q := strconv.Quote
	list := func(v []string) string {
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = q(x)
		}
		return "[" + strings.Join(s, ", ") + "]"
	}
	w("# linkctl.yaml written by linkctl init. Every key: config/reference.yaml.\n")
	w("link:\n  watch: [%s]\n", q(o.iface))
	var steps []string
	if o.mta != "none" && o.mta != "" {
		steps = append(steps, "flush")
	}
	if o.etrnServer != "" {
		steps = append(steps, "etrn")
	}
	w("pipeline:\n")
	switch len(steps) {
	case 1:
		w("  - %s\n", steps[0])
	case 2:
		w("  - [%s]\n", strings.Join(steps, ", "))
	}
	if len(o.accounts) > 0 {
		w("  - fetch\n")
	}
	if len(o.drop) > 0 {
		w("  - drop\n")
	}
	if len(steps) > 0 && steps[0] == "flush" {
		w("flush:\n  mta: %s\n", o.mta)
	}
	if o.etrnServer != "" {
		w("etrn:\n  servers:\n    - server: %s\n      domains: %s\n", q(o.etrnServer), list(o.etrnDomains))
	}
	if len(o.accounts) > 0 {
		w("fetch:\n  deliver: {smtp: %s}\n  accounts:\n", q(o.deliver))
		for _, ac := range o.accounts {
			w("    - proto: %s\n      server: %s\n", ac.proto, q(ac.server))
			if ac.tls != "" {
				w("      tls: %s\n", ac.tls)
			}
			w("      user: %s\n", q(ac.user))
			switch {
			case ac.passwordFile != "":
				w("      password_file: %s\n", q(ac.passwordFile))
			case len(ac.passwordCommand) > 0:
				w("      password_command: %s\n", list(ac.passwordCommand))
			case ac.password != "" && preview:
				w("      password: \"***\"   # as typed; only in the file written (mode 0600)\n")
			case ac.password != "":
				w("      password: %s   # this file is mode 0600\n", q(ac.password))
			}
			w("      to: [%s]\n", q(ac.to))
			if ac.keep {
				w("      keep: true\n")
			}
		}
	}
	if len(o.drop) > 0 {
		w("drop:\n  command: %s\n", list(o.drop))
	}
	return b.Bytes()
}

// prompter asks questions on a terminal.
type prompter struct {
	r  *bufio.Reader
	w  io.Writer
	fd int
}

func (p *prompter) ask(question, def string) string {
	if def != "" {
		fmt.Fprintf(p.w, "%s [%s]: ", question, def)
	} else {
		fmt.Fprintf(p.w, "%s: ", question)
	}
	line, err := p.r.ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" || err != nil && line == "" {
		return def
	}
	return line
}

func (p *prompter) choose(question, def string, allowed ...string) string {
	for {
		v := strings.ToLower(p.ask(question+" ("+strings.Join(allowed, ", ")+")", def))
		for _, x := range allowed {
			if v == x {
				return v
			}
		}
		fmt.Fprintf(p.w, "  please answer one of: %s\n", strings.Join(allowed, ", "))
	}
}

func (p *prompter) yes(question string, def bool) bool {
	d := "y/N"
	if def {
		d = "Y/n"
	}
	v := strings.ToLower(p.ask(question+" ("+d+")", ""))
	if v == "" {
		return def
	}
	return strings.HasPrefix(v, "y")
}

// secret reads a line with the terminal's echo off. Echo goes off before
// the prompt is printed: whoever answers as soon as the prompt shows (a
// quick typist, expect(1), a test) must not see the answer echoed by the
// terminal in the moment between the two.
func (p *prompter) secret(question string) string {
	old, err := unix.IoctlGetTermios(p.fd, unix.TCGETS)
	if err == nil {
		quiet := *old
		quiet.Lflag &^= unix.ECHO
		quiet.Lflag |= unix.ICANON | unix.ECHONL
		_ = unix.IoctlSetTermios(p.fd, unix.TCSETS, &quiet)
		defer unix.IoctlSetTermios(p.fd, unix.TCSETS, old)
	}
	fmt.Fprintf(p.w, "%s: ", question)
	line, _ := p.r.ReadString('\n')
	return strings.TrimRight(line, "\r\n")
}

func (p *prompter) interview(o *initAnswers, dir string) error {
	fmt.Fprintln(p.w, "linkctl init: a few questions, then a config. Enter takes the [default].")
	fmt.Fprintln(p.w, "\nThe uplink: the interface that comes and goes (ppp0, wwan0, wg0), or default-route.")
	o.iface = p.ask("Uplink interface", o.iface)
	fmt.Fprintln(p.w, "\nThe local MTA holds outbound mail until the link is up; linkctl starts its queue run.")
	o.mta = p.choose("Local MTA", o.mta, "auto", "postfix", "exim", "sendmail", "opensmtpd", "none")
	fmt.Fprintln(p.w, "\nA relay (your ISP's MX) may hold mail for your domains until you ask with ETRN.")
	o.etrnServer = p.ask("ETRN relay host[:port] (Enter for none)", o.etrnServer)
	if o.etrnServer != "" {
		for len(o.etrnDomains) == 0 {
			o.etrnDomains = splitList(p.ask("Domains it holds mail for (space-separated)", strings.Join(o.etrnDomains, " ")))
		}
	}
	fmt.Fprintln(p.w, "\nMailboxes to fetch (POP3 or IMAP). Enter an empty server when done.")
	for {
		server := p.ask("Mailbox server host[:port]", "")
		if server == "" {
			break
		}
		ac := initAccount{server: server}
		ac.proto = p.choose("  Protocol", initProto, "pop3", "imap")
		ac.tls = p.choose("  TLS", "implicit", "implicit", "starttls", "none")
		for ac.user == "" {
			ac.user = p.ask("  User name", "")
		}
		ac.password = p.secret("  Password (not shown; Enter to name a file instead)")
		for ac.password == "" && (ac.passwordFile == "" || strings.HasPrefix(ac.passwordFile, "~")) {
			// No "~": the config is read by the daemon under systemd,
			// with no HOME and no home directories (config/paths.go).
			if ac.passwordFile != "" {
				fmt.Fprintln(p.w, "  please write the absolute path, e.g. "+filepath.Join(dir, ac.user+".pass"))
			}
			ac.passwordFile = p.ask("  Password file (mode 0600)", filepath.Join(dir, ac.user+".pass"))
		}
		ac.to = p.ask("  Deliver to local user", localUser())
		ac.keep = p.yes("  Keep fetched mail on the server?", false)
		o.accounts = append(o.accounts, ac)
	}
	if len(o.accounts) > 0 {
		o.deliver = p.ask("Fetched mail goes to the local SMTP server at", o.deliver)
	}
	fmt.Fprintln(p.w, "\nlinkctl can hang the link up when the mail is done (e.g. poff provider).")
	o.drop = strings.Fields(p.ask("Hang-up command (Enter for none)", strings.Join(o.drop, " ")))
	return nil
}
