package assemble

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/fetch"
	"github.com/linkctl/linkctl/fetch/imap/imaptest"
	"github.com/linkctl/linkctl/internal/errkind"
)

// refusingPOP3 is a POP3 server on loopback that offers everything (APOP
// timestamp, USER, SASL) and refuses every login and command: whatever
// the client tries ends in a server's answer, never in a config error.
func refusingPOP3(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				fmt.Fprint(c, "+OK <1.2@test> ready\r\n")
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch cmd, _, _ := strings.Cut(strings.ToUpper(strings.TrimSpace(l)), " "); cmd {
					case "CAPA":
						fmt.Fprint(c, "+OK\r\nUSER\r\nSASL PLAIN LOGIN XOAUTH2 OAUTHBEARER\r\n.\r\n")
					case "QUIT":
						fmt.Fprint(c, "+OK bye\r\n")
						return
					default:
						fmt.Fprint(c, "-ERR [AUTH] refused\r\n")
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// authCandidates are auth values a user may write; the validator accepts
// some of them.
var authCandidates = []string{"auto", "password", "apop", "plain", "login", "cram-md5", "digest-md5",
	"xoauth2", "oauthbearer", "external", "gssapi", "ntlm", "PLAIN"}

// TestEveryCheckedAuthRuns: every proto and auth that `linkctl check`
// accepts reaches the server at run time and fails, if at all, with the
// server's answer (auth, protocol), never as a config error (exit 5).
// Before issue 16, auth: cram-md5 passed check and failed here with
// "unknown auth".
func TestEveryCheckedAuthRuns(t *testing.T) {
	pop := refusingPOP3(t)
	im := imaptest.Start(t, imaptest.Options{UIDPlus: true})
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("wrong\n"), 0o600)
	ran := 0
	for _, proto := range []string{"pop3", "imap"} {
		addr := pop
		if proto == "imap" {
			addr = im.Addr
		}
		for _, auth := range authCandidates {
			yaml := fmt.Sprintf("state_dir: %s\nfetch:\n  deliver: {maildir: %s}\n  accounts:\n    - {name: a, proto: %s, server: \"%s\", user: alice, password_file: %s, auth: %s}\n",
				filepath.Join(dir, "state"), filepath.Join(dir, "Maildir"), proto, addr, pw, auth)
			cfg, err := config.Parse(filepath.Join(dir, "linkctl.yaml"), []byte(yaml))
			if err != nil {
				continue // refused by check: fine, that is where it belongs
			}
			ran++
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
				if e != nil && errkind.KindOf(e) == errkind.Usage {
					t.Errorf("proto %s, auth %s: passes check but fails at run time as a config error: %v", proto, auth, e)
				}
			}
		}
	}
	if ran < 10 {
		t.Errorf("only %d proto/auth pairs passed check: the test tests little", ran)
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
