package assemble

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/testpeer"
	"github.com/linkctl/linkctl/meter"
	"github.com/linkctl/linkctl/pipeline"
)

// budgetMsg is a message of about n bytes whose subject names it.
func budgetMsg(name string, n int) string {
	return fmt.Sprintf("Subject: %s\r\nMessage-ID: <%s@budget.test>\r\n\r\n%s\r\n", name, name, strings.Repeat("b", n))
}

// subjects lists the Subject of every message in a Maildir (new/ and cur/).
func subjects(t *testing.T, dirs ...string) []string {
	t.Helper()
	var out []string
	for _, d := range dirs {
		for _, sub := range []string{"new", "cur"} {
			ents, _ := os.ReadDir(filepath.Join(d, sub))
			for _, e := range ents {
				b, err := os.ReadFile(filepath.Join(d, sub, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range strings.Split(string(b), "\n") {
					if s, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "Subject: "); ok {
						out = append(out, s)
						break
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// A metered link with a run budget that fits the 3 smallest of 5
// messages, against a real Dovecot over POP3, through the whole
// assembly (config -> Around -> fetch stage): the 3 smallest are
// delivered, the 2 biggest stay on the server (never deleted), the run
// says why and exits 13; a new process (a new Assembler and meter on the
// same state_dir) keeps the day's spending and holds back what no longer
// fits the day; a run on a link with no policy then takes the rest.
// Nothing is ever deleted that was not delivered.
func TestBudgetDovecot(t *testing.T) {
	testpeer.Short(t)
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{Users: map[string]string{"alice": "alice-pw"}})
	// In server order, m6k and m1k would fill the run budget and crowd
	// out m2k and m3k: smallest first takes three.
	sizes := map[string]int{"m6k": 6000, "m1k": 1000, "m30k": 30000, "m3k": 3000, "m2k": 2000}
	for _, name := range []string{"m6k", "m1k", "m30k", "m3k", "m2k"} {
		d.AddMessage("alice", "INBOX", []byte(budgetMsg(name, sizes[name])))
	}
	dir := t.TempDir()
	box := filepath.Join(dir, "Maildir")
	yaml := fmt.Sprintf(`link:
  watch: [wwan9]
  policies:
    - {match: "wwan*", metered: true, budget: {run: 8k, day: 12k}, max_message: 25k}
state_dir: %s
fetch:
  deliver: {maildir: %s}
  accounts:
    - {name: isp, proto: pop3, server: "%s", user: alice, password: alice-pw}
pipeline: [fetch]
`, filepath.Join(dir, "state"), box, d.POP3Addr())
	cfg, err := config.Parse(filepath.Join(dir, "linkctl.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	run := func(iface string) pipeline.RunReport {
		t.Helper()
		as := New(log) // a new process each time
		steps, err := as.Steps(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := pipeline.New(pipeline.Options{Steps: steps, Around: as.Around(cfg), Logger: log})
		rep, _ := r.Run(context.Background(), pipeline.Request{Cause: "test", Iface: iface})
		return rep
	}
	written := 5
	// Every message is on the server or delivered, once: nothing was
	// deleted that was not delivered.
	checkDisjoint := func(stage string) {
		t.Helper()
		got := subjects(t, box)
		if n := d.Count("alice", "INBOX"); n+len(got) != written || len(slices.Compact(got)) != len(got) {
			t.Errorf("%s: %d on the server + %v delivered, %d written", stage, n, got, written)
		}
	}

	// Run 1: the run budget (8k) fits m1k+m2k+m3k (about 6.2k with
	// headers), not m6k besides; m30k is over max_message.
	rep := run("wwan9")
	if got := subjects(t, box); !slices.Equal(got, []string{"m1k", "m2k", "m3k"}) {
		t.Fatalf("run 1 delivered %v, want the 3 smallest\n%s", got, rep.Stages[0].Summary)
	}
	if n := d.Count("alice", "INBOX"); n != 2 {
		t.Fatalf("run 1: %d messages on the server, want the 2 held", n)
	}
	if rep.ExitCode() != int(errkind.FetchLimit) {
		t.Errorf("run 1 exit %d, want 13", rep.ExitCode())
	}
	if s := rep.Stages[0].Summary; !strings.Contains(s, "left 2 messages (36 kB) for an unmetered link: the run budget has 2.0 KiB left") {
		t.Errorf("run 1 summary %q does not say what was left and why", s)
	}
	checkDisjoint("run 1")

	// Run 2, a new process: a 5k message arrives; the day has 12k -
	// about 5k left (run 1 spent its messages and the protocol octets
	// around them), so it fits; m6k still does not.
	d.AddMessage("alice", "INBOX", []byte(budgetMsg("m5k", 5000)))
	written++
	rep = run("wwan9")
	if got := subjects(t, box); !slices.Equal(got, []string{"m1k", "m2k", "m3k", "m5k"}) {
		t.Fatalf("run 2 delivered %v\n%s", got, rep.Stages[0].Summary)
	}
	// Run 3: the day has less than 1 kB left: a 1k message is held.
	d.AddMessage("alice", "INBOX", []byte(budgetMsg("m1k-b", 1000)))
	written++
	rep = run("wwan9")
	if s := rep.Stages[0].Summary; !strings.Contains(s, "left 3 messages") || !strings.Contains(s, "the day budget has") {
		t.Errorf("run 3 summary %q: want 3 left, the day budget named", s)
	}
	checkDisjoint("run 3")
	st, err := meter.New(New(nil).MeterOptions(cfg)).Status(context.Background())
	// Spent: the messages admitted plus the protocol octets around them
	// (a session that fetches nothing still logs in and lists: a few
	// hundred octets, never a message, past the budget).
	if err != nil || len(st) != 1 || st[0].Spent.Day < 11000 || st[0].Spent.Day > 12288+1024 || st[0].Spent.Day != st[0].Spent.Month {
		t.Errorf("status after 3 runs: %+v, %v; want 11k to the day budget plus one listing spent today", st, err)
	}
	t.Logf("status: %+v", st[0])

	// A link without a policy (unmetered): the rest comes, all of it.
	rep = run("eth9")
	if got := subjects(t, box); len(got) != 7 || d.Count("alice", "INBOX") != 0 {
		t.Fatalf("unmetered run delivered %v, %d left on the server\n%s", got, d.Count("alice", "INBOX"), rep.Stages[0].Summary)
	}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
