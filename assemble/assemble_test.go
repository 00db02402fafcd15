package assemble

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/fetch"
	"github.com/linkctl/linkctl/internal/authmech"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/scripted"
)

// logins records the login commands a refusing server was sent (USER,
// APOP, AUTH PLAIN, LOGIN, AUTHENTICATE XOAUTH2...), for the test to read
// after each run.
type logins struct {
	mu   sync.Mutex
	cmds []string
}

func (l *logins) add(cmd string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cmds = append(l.cmds, cmd)
}

// take returns the commands recorded since the last take.
func (l *logins) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.Join(l.cmds, ",")
	l.cmds = nil
	return s
}

// serve accepts connections on a loopback listener and runs session on
// each, with a deadline, until the test ends.
func serve(t *testing.T, session func(c net.Conn, r *bufio.Reader)) string {
	return scripted.Listen(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		session(c, bufio.NewReader(c))
	}).Addr().String()
}

// refusingPOP3 is a POP3 server on loopback that offers everything (APOP
// timestamp, USER, SASL) and refuses every login and command: whatever
// the client tries ends in a server's answer, never in a config error.
// The login commands it gets go to seen.
func refusingPOP3(t *testing.T, seen *logins) string {
	return serve(t, func(c net.Conn, r *bufio.Reader) {
		fmt.Fprint(c, "+OK <1.2@test> ready\r\n")
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(strings.ToUpper(l))
			if len(f) == 0 {
				f = []string{""}
			}
			switch f[0] {
			case "CAPA":
				fmt.Fprint(c, "+OK\r\nUSER\r\nSASL PLAIN LOGIN XOAUTH2 OAUTHBEARER\r\n.\r\n")
				continue
			case "QUIT":
				fmt.Fprint(c, "+OK bye\r\n")
				return
			case "USER", "APOP":
				seen.add(f[0])
			case "AUTH":
				seen.add(strings.Join(f[:min(2, len(f))], " "))
			}
			fmt.Fprint(c, "-ERR [AUTH] refused\r\n")
		}
	})
}

// refusingIMAP is refusingPOP3 for IMAP: it offers LOGIN and every SASL
// mechanism the client knows, takes each AUTHENTICATE through one
// continuation, and refuses every login (RFC 5530 AUTHENTICATIONFAILED).
func refusingIMAP(t *testing.T, seen *logins) string {
	const caps = "IMAP4rev1 AUTH=PLAIN AUTH=LOGIN AUTH=XOAUTH2 AUTH=OAUTHBEARER"
	return serve(t, func(c net.Conn, r *bufio.Reader) {
		fmt.Fprint(c, "* OK [CAPABILITY "+caps+"] ready\r\n")
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(strings.ToUpper(l))
			if len(f) < 2 {
				fmt.Fprint(c, "* BAD what\r\n")
				continue
			}
			tag := f[0]
			switch f[1] {
			case "CAPABILITY":
				fmt.Fprint(c, "* CAPABILITY "+caps+"\r\n"+tag+" OK done\r\n")
				continue
			case "LOGOUT":
				fmt.Fprint(c, "* BYE\r\n"+tag+" OK bye\r\n")
				return
			case "LOGIN":
				seen.add("LOGIN")
			case "AUTHENTICATE":
				seen.add(strings.Join(f[1:min(3, len(f))], " "))
				if len(f) == 3 { // no initial response: ask for it (RFC 3501 section 6.2.2)
					fmt.Fprint(c, "+ \r\n")
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
				}
			}
			fmt.Fprint(c, tag+" NO [AUTHENTICATIONFAILED] refused\r\n")
		}
	})
}

// authCandidates are auth values a user may write; the validator accepts
// some of them.
var authCandidates = []string{"auto", "password", "apop", "plain", "login", "cram-md5", "digest-md5",
	"xoauth2", "oauthbearer", "external", "gssapi", "ntlm", "PLAIN"}

// wireLogin is the login each mechanism sends to the refusing servers
// ("" for none: external arrives logged in). auto picks SASL PLAIN on POP3
// (the server lists it: one round trip) and LOGIN on IMAP; IMAP's login and
// password both mean the LOGIN command (RFC 3501 section 6.2.3).
var wireLogin = map[string]map[authmech.Mech]string{
	"pop3": {authmech.Auto: "AUTH PLAIN", authmech.Password: "USER", authmech.APOP: "APOP", authmech.Plain: "AUTH PLAIN",
		authmech.Login: "AUTH LOGIN", authmech.XOAuth2: "AUTH XOAUTH2", authmech.OAuthBearer: "AUTH OAUTHBEARER", authmech.External: ""},
	"imap": {authmech.Auto: "LOGIN", authmech.Password: "LOGIN", authmech.Plain: "AUTHENTICATE PLAIN", authmech.Login: "LOGIN",
		authmech.XOAuth2: "AUTHENTICATE XOAUTH2", authmech.OAuthBearer: "AUTHENTICATE OAUTHBEARER", authmech.External: ""},
}

// TestEveryCheckedAuthRuns: every proto and auth that `linkctl check`
// accepts reaches the server at run time as the login it names, and fails,
// if at all, with the server's answer (auth, protocol), never as a config
// error (exit 5). The candidates cover every authmech.All member, so a
// mechanism added there without a stage that speaks it fails here.
// Before issue 16, auth: cram-md5 passed check and failed here with
// "unknown auth".
func TestEveryCheckedAuthRuns(t *testing.T) {
	seen := &logins{}
	pop := refusingPOP3(t, seen)
	im := refusingIMAP(t, seen)
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("wrong\n"), 0o600)
	candidates := slices.Clone(authCandidates)
	for _, m := range authmech.All() {
		candidates = append(candidates, string(m), strings.ToUpper(string(m)))
	}
	ran := map[string]map[authmech.Mech]bool{"pop3": {}, "imap": {}}
	for _, proto := range []string{"pop3", "imap"} {
		addr := pop
		if proto == "imap" {
			addr = im
		}
		for _, auth := range candidates {
			yaml := fmt.Sprintf("state_dir: %s\nfetch:\n  deliver: {maildir: %s}\n  accounts:\n    - {name: a, proto: %s, server: \"%s\", user: alice, password_file: %s, auth: %s}\n",
				filepath.Join(dir, "state"), filepath.Join(dir, "Maildir"), proto, addr, pw, auth)
			cfg, err := config.Parse(filepath.Join(dir, "linkctl.yaml"), []byte(yaml))
			if err != nil {
				continue // refused by check: fine, that is where it belongs
			}
			mech := cfg.Fetch.Accounts[0].Auth
			want, known := wireLogin[proto][mech]
			if !known {
				t.Errorf("proto %s, auth %s: check accepts it as %q, which no stage speaks", proto, auth, mech)
				continue
			}
			ran[proto][mech] = true
			if proto == "imap" {
				if got := New(nil).imapOptions(cfg.Fetch.Accounts[0]).Auth; got != mech {
					t.Errorf("auth %s: the IMAP client gets auth %q, want %q", auth, got, mech)
				}
			}
			seen.take()
			opts, done := New(nil).FetchOptions(cfg, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			res, err := fetch.Run(ctx, opts, nil)
			cancel()
			done()
			errs := []error{err}
			for _, a := range res.Accounts {
				errs = append(errs, a.Err)
			}
			for _, e := range errs {
				if k := errkind.KindOf(e); e != nil && (k == errkind.Usage || k == errkind.Internal) {
					t.Errorf("proto %s, auth %s: passes check but fails at run time (%v error): %v", proto, auth, k, e)
				}
			}
			if got := seen.take(); got != want {
				t.Errorf("proto %s, auth %s: the server was sent login %q, want %q", proto, auth, got, want)
			}
		}
	}
	for proto, mechs := range wireLogin {
		for m := range mechs {
			if !ran[proto][m] {
				t.Errorf("proto %s, auth %s: refused by check though the %s stage speaks it", proto, m, proto)
			}
		}
	}
}

// TestOneConnectionForFetchAndIdle: an IMAP account's watcher connects
// exactly as its fetch does (same address, TLS, user, auth, plugin).
func TestOneConnectionForFetchAndIdle(t *testing.T) {
	cfg, err := config.Parse("/etc/linkctl/t.yaml", []byte(`fetch:
  accounts:
    - {name: w, proto: imap, server: imap.example.net, user: u, password_file: /p, to: me, idle: true, auth: plain, compress: off, folders: [INBOX, Lists]}
`))
	if err != nil {
		t.Fatal(err)
	}
	as := New(nil)
	idle := as.IdleAccounts(cfg)
	if len(idle) != 1 || strings.Join(idle[0].Folders, ",") != "INBOX,Lists" {
		t.Fatalf("idle accounts %+v", idle)
	}
	o := as.imapOptions(cfg.Fetch.Accounts[0])
	if o.Addr != "imap.example.net:993" || o.TLS != config.TLSImplicit || o.Auth != "plain" || o.Compress != "off" {
		t.Errorf("imap options %+v", o)
	}
	if accts := as.Accounts(cfg.Fetch.Accounts[0], nil); len(accts) != 2 || accts[1].Name != "w/Lists" {
		t.Errorf("accounts %+v", accts)
	}
}

// TestStepsFollowThePipeline: groups, only, on_error, the drop step
// always runs, and the runner's backstop lies behind the stage's timeout.
func TestStepsFollowThePipeline(t *testing.T) {
	cfg, err := config.Parse("/etc/linkctl/t.yaml", []byte(`pipeline:
  - [flush, etrn]
  - {stage: fetch, timeout: 10m, on_error: stop}
  - exec: [/bin/true]
  - drop
flush: {mta: postfix}
etrn: {servers: [{server: mx.example.net, domains: [example.org]}]}
fetch:
  accounts: [{proto: pop3, server: pop.example.net, user: u, password_file: /p, to: me}]
drop: {command: [poff]}
`))
	if err != nil {
		t.Fatal(err)
	}
	as := New(nil)
	steps, err := as.Steps(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 4 || len(steps[0].Group) != 2 || steps[0].Group[1].Stage.Name() != "etrn" ||
		steps[1].Timeout != 11*time.Minute || steps[2].Stage.Name() != "true" || !steps[3].Always {
		t.Errorf("steps %+v", steps)
	}
	only, err := as.Steps(cfg, []string{"etrn"})
	if err != nil || len(only) != 1 || only[0].Stage.Name() != "etrn" {
		t.Errorf("only etrn: %+v %v", only, err)
	}
	if _, err := as.Steps(cfg, []string{"nosuch"}); errkind.KindOf(err) != errkind.Usage || !strings.Contains(err.Error(), "it has: flush, etrn, fetch, true, exec, drop") {
		t.Errorf("unknown stage: %v", err)
	}
	d := as.ETRNOptions(cfg)
	if d.Servers[0].Addr != "mx.example.net:25" || d.Servers[0].TLS != config.TLSStartTLS || d.Parallel != config.DefaultETRNParallel {
		t.Errorf("etrn options %+v", d)
	}
	var ce config.Errors
	if errors.As(err, &ce) {
		t.Error("not a config.Errors")
	}
}
