package fetch

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/linkctl/linkctl/fetch/deliver"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// kill9Kills is how many times TestKill9Targets kills the fetcher per
// delivery target (issue 15, deliverable 8: 20 kills at random moments).
const kill9Kills = 20

// kill9Sessions are the local delivery sessions (and MDA or Maildir
// deliveries) in flight at once, as in the finding: 4.
const kill9Sessions = 4

// TestKill9Targets kills a fetcher (this test binary re-executed) with
// SIGKILL at random moments while it delivers over 4 parallel sessions into
// a real Postfix (SMTP), Dovecot's LMTP, a Maildir and an MDA command, 20
// kills each, then finishes with a clean run. Nothing may be lost, and the
// duplicates may only be the messages whose acknowledgement was in flight
// at the kill: at most one per kill on average.
func TestKill9Targets(t *testing.T) {
	if os.Getenv("LINKCTL_KILL_CHILD") != "" {
		killTargetChild()
		return
	}
	testpeer.Short(t)
	t.Parallel()
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{Users: map[string]string{"u": "pw", "dst": "pw"}})
	for _, target := range []string{"smtp", "lmtp", "maildir", "mda"} {
		t.Run(target, func(t *testing.T) {
			var addr string
			var collect func(n int) []string // the Message-IDs that arrived, with repeats
			switch target {
			case "smtp":
				pf := testpeer.StartPostfix(t, testpeer.PostfixOptions{})
				addr = pf.Addr()
				collect = func(n int) []string {
					pf.WaitMessages(n, 60*time.Second)
					pf.WaitQueue(60*time.Second, "an empty queue", func(q []testpeer.PostfixQueued) bool { return len(q) == 0 })
					return idsOfFiles(t, pf.Messages())
				}
			case "lmtp":
				d.Clear("dst", "INBOX")
				addr = d.LMTPAddr()
				collect = func(int) []string { return idsOfFiles(t, maildirFiles(d.Maildir("dst", "INBOX"))) }
			default:
				dir := t.TempDir()
				for _, sub := range []string{"tmp", "new", "cur"} {
					if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
						t.Fatal(err)
					}
				}
				addr = dir
				collect = func(int) []string { return idsOfFiles(t, maildirFiles(dir)) }
			}
			d.Clear("u", "INBOX")
			want := fillDovecot(d, "u", "t"+target, 160)
			state := t.TempDir()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
			kills := 0
			for round := 0; kills < kill9Kills && round < 2*kill9Kills; round++ {
				cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Targets$")
				cmd.Env = append(os.Environ(), "LINKCTL_KILL_CHILD=1", "KC_STATE="+state, "KC_POP3="+d.POP3Addr(),
					"KC_TARGET="+target, "KC_ADDR="+addr)
				// Kill after 1 to 6 recorded messages plus a random
				// pause, so the kill falls at a random point of the
				// delivery stream.
				if !killAfter(t, cmd, 1+rng.IntN(6), time.Duration(rng.IntN(5000))*time.Microsecond) {
					kills++
				}
			}
			// A clean run finishes the job.
			tgt := killTarget(target, addr)
			defer tgt.Close()
			if _, err := Run(context.Background(), Options{StateDir: state,
				Accounts: []Account{killAccount(d.POP3Addr(), target, tgt)}}, nil); err != nil {
				t.Fatal(err)
			}
			dups := lostAndDuplicated(t, want, collect(len(want)))
			if kills == 0 {
				t.Fatal("no kill landed")
			}
			perKill := float64(dups) / float64(kills)
			t.Logf("%s: %d kills, %d duplicates, %.2f per kill (%d messages)", target, kills, dups, perKill, len(want))
			if perKill > 1 {
				t.Errorf("%s: %.2f duplicates per kill (%d over %d kills), want at most 1", target, perKill, dups, kills)
			}
			if n := d.Count("u", "INBOX"); n != 0 {
				t.Errorf("%d messages left on the server", n)
			}
		})
	}
}

// killTarget is the delivery target of TestKill9Targets for kind at addr
// (a Maildir directory for "maildir" and "mda").
func killTarget(kind, addr string) deliver.Target {
	switch kind {
	case "smtp":
		return deliver.NewSMTP(deliver.SMTPOptions{Addr: addr, Sessions: kill9Sessions})
	case "lmtp":
		return deliver.NewLMTP(deliver.LMTPOptions{Addr: addr, Sessions: kill9Sessions})
	case "maildir":
		return deliver.NewMaildir(deliver.MaildirOptions{Path: addr})
	}
	// An MDA that files the message the Maildir way and syncs it, as a
	// real one does before exiting 0.
	script := `f=$(mktemp -p "$1/tmp") && cat >"$f" && sync "$f" && mv "$f" "$1/new/"`
	return deliver.NewMDA(deliver.MDAOptions{Argv: []string{"/bin/sh", "-c", script, "mda", addr}})
}

// killAccount is the POP3 account of TestKill9Targets: the user's mail
// goes to "dst" (LMTP) or the sink's domain (SMTP).
func killAccount(pop3Addr, kind string, tgt deliver.Target) Account {
	a := pop3Account("u", pop3Addr, "u", tgt, 5*time.Second)
	if kind == "lmtp" {
		a.To = []string{"dst"}
	}
	a.Workers = 2 * kill9Sessions // as the CLI sets it: twice the sessions
	return a
}

// killTargetChild is the fetcher process of TestKill9Targets.
func killTargetChild() {
	kind := os.Getenv("KC_TARGET")
	tgt := killTarget(kind, os.Getenv("KC_ADDR"))
	_, err := Run(context.Background(), Options{StateDir: os.Getenv("KC_STATE"),
		Accounts: []Account{killAccount(os.Getenv("KC_POP3"), kind, tgt)}},
		func(ev event.Event) {
			if ev.Type == event.Message {
				fmt.Println("msg")
			}
		})
	fmt.Println("done", err)
	os.Exit(0)
}

// maildirFiles lists the messages in dir's new/ and cur/.
func maildirFiles(dir string) []string {
	var paths []string
	for _, sub := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range ents {
			if e.Type().IsRegular() {
				paths = append(paths, filepath.Join(dir, sub, e.Name()))
			}
		}
	}
	return paths
}

// idsOfFiles returns the Message-IDs of the message files, with repeats.
func idsOfFiles(t *testing.T, paths []string) []string {
	t.Helper()
	var ids []string
	for _, p := range paths {
		m, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if x := msgIDRe.FindSubmatch(m); x != nil {
			ids = append(ids, string(x[1]))
		} else {
			ids = append(ids, "?"+strconv.Itoa(len(m)))
		}
	}
	return ids
}
