package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/internal/testpeer"
)

// Every in-process run writes one history record (linkctl run here), and
// `linkctl history --json` prints them with the documented keys.
func TestHistoryOfInProcessRuns(t *testing.T) {
	cfg := writeConfig(t, `pipeline:
  - exec: [sh, -c, "echo hello"]
  - {name: bad, exec: [sh, -c, "exit 3"], on_error: continue}
`)
	var runExit int
	for range 3 {
		_, _, runExit = linkctl(t, nil, "run", "--iface", "lo", "-c", cfg)
	}
	out, errOut, code := linkctl(t, nil, "history", "--json", "-n", "2", "-c", cfg)
	if code != 0 {
		t.Fatalf("history: exit %d: %s", code, errOut)
	}
	var recs []map[string]any
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatalf("history --json is not a JSON array: %v\n%s", err, out)
	}
	if len(recs) != 2 {
		t.Fatalf("-n 2 printed %d records", len(recs))
	}
	r := recs[1]
	for _, k := range []string{"start", "end", "seconds", "link", "cause", "result", "exit", "bytes_down", "bytes_up", "stages"} {
		if _, ok := r[k]; !ok {
			t.Errorf("record lacks %q: %v", k, r)
		}
	}
	if r["cause"] != "linkctl run" || r["link"] != "lo" || r["exit"] != float64(runExit) || runExit == 0 || len(r["stages"].([]any)) != 2 {
		t.Errorf("record %v", r)
	}
	if _, ok := r["link_rx"]; !ok {
		t.Errorf("no link counters for lo: %v", r)
	}
	text, _, _ := linkctl(t, nil, "history", "-c", cfg)
	if strings.Count(text, "linkctl run") != 3 || !strings.Contains(text, fmt.Sprintf("exit %d", runExit)) {
		t.Errorf("history text:\n%s", text)
	}
}

// `linkctl plan` against Dovecot: what it announces is what the following
// `linkctl fetch` moves, and the history then holds that run's bytes.
func TestPlanCommandDovecot(t *testing.T) {
	testpeer.Short(t)
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{Users: map[string]string{"alice": "pa"}})
	for i := range 5 {
		d.AddMessage("alice", "INBOX", []byte(fmt.Sprintf("Return-Path: <s@example.net>\nMessage-ID: <m%d@t>\nSubject: %d\n\n%s", i, i, strings.Repeat("some text of a mail\n", 100*(i+1)))))
	}
	dir := t.TempDir()
	maildir := filepath.Join(dir, "Maildir")
	cfg := writeConfig(t, fmt.Sprintf(`pipeline: [fetch]
fetch:
  deliver: {maildir: %s}
  accounts:
    - {name: isp, proto: pop3, server: %s, tls: none, user: alice, password_file: %s, to: alice, limit: 9000}
`, maildir, d.POP3Addr(), secretFile(t, dir, "pa", "pa")))
	out, errOut, code := linkctl(t, nil, "-c", cfg, "plan")
	t.Logf("linkctl plan:\n%s", out)
	if code != 0 || !strings.Contains(out, "isp (pop3 "+d.POP3Addr()+"): 4 messages") || !strings.Contains(out, "1 message, 10 kB over limit") ||
		!strings.Contains(out, "no history yet") || !strings.Contains(out, "budget: none configured") {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errOut)
	}
	js, _, code := linkctl(t, nil, "-c", cfg, "plan", "--json")
	var plan struct {
		Accounts []struct {
			Fetch struct{ Messages, Bytes int64 }
		}
		Fetch struct{ Messages, Bytes int64 }
		Rate  *struct{}
	}
	if err := json.Unmarshal([]byte(js), &plan); err != nil || code != 0 {
		t.Fatalf("plan --json: exit %d, %v\n%s", code, err, js)
	}
	if n := d.Count("alice", "INBOX"); n != 5 {
		t.Fatalf("plan changed the server: %d messages", n)
	}
	out, errOut, code = linkctl(t, nil, "-c", cfg, "fetch")
	if code != 0 {
		t.Fatalf("fetch: exit %d\n%s%s", code, out, errOut)
	}
	hist, _, _ := linkctl(t, nil, "-c", cfg, "history", "--json")
	var recs []struct {
		Accounts []struct {
			Name      string
			Messages  int64
			BytesDown int64 `json:"bytes_down"`
		}
	}
	if err := json.Unmarshal([]byte(hist), &recs); err != nil || len(recs) != 1 {
		t.Fatalf("history after one fetch: %v\n%s", err, hist)
	}
	acc := recs[0].Accounts
	if len(acc) != 1 || acc[0].Name != "isp" || acc[0].Messages != plan.Fetch.Messages ||
		acc[0].BytesDown < plan.Fetch.Bytes || acc[0].BytesDown > plan.Fetch.Bytes+4096 {
		t.Errorf("plan said %+v; the run's record: %+v", plan.Fetch, acc)
	}
	text, _, _ := linkctl(t, nil, "-c", cfg, "history")
	t.Logf("linkctl history:\n%s", text)
	// With the history, plan estimates the link time.
	out, _, _ = linkctl(t, nil, "-c", cfg, "plan")
	t.Logf("linkctl plan after the run:\n%s", out)
	if !strings.Contains(out, "nothing new") || !strings.Contains(out, "measured over 1 run") {
		t.Errorf("plan after the run:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), "state", "history.jsonl")); err != nil {
		t.Error(err)
	}
}
