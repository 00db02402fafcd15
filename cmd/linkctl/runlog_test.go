package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// logLines returns the lines of a text log whose message is msg (and, if
// stage is not empty, whose stage is stage).
func logLines(log, msg, stage string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, "msg="+fmt.Sprintf("%q", msg)+" ") {
			continue
		}
		if stage != "" && !strings.Contains(l+" ", " stage="+stage+" ") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// once asserts that msg (of stage) is logged exactly once, with every
// attribute in want, and returns the line.
func once(t *testing.T, log, msg, stage string, want ...string) {
	t.Helper()
	lines := logLines(log, msg, stage)
	if len(lines) != 1 {
		t.Errorf("%q (stage %q) logged %d times, want once:\n%s", msg, stage, len(lines), log)
		return
	}
	for _, w := range want {
		if !strings.Contains(lines[0], " "+w) {
			t.Errorf("%q lacks %s: %s", msg, w, lines[0])
		}
	}
}

// TestRunIsLoggedOnce: the log of one run (stderr not a terminal: one log
// line per event) has each boundary exactly once, with the cause, the
// interface, the run id, the result, the summary, the error and the
// duration (issue 16: "run started" and "stage ended" were logged twice,
// by the runner and by the renderer).
func TestRunIsLoggedOnce(t *testing.T) {
	t.Run("run", func(t *testing.T) {
		cfg := writeConfig(t, `pipeline:
  - exec: [sh, -c, "echo hello"]
  - {name: bad, exec: [sh, -c, "exit 3"], on_error: continue}
`)
		_, log, code := linkctl(t, nil, "run", "--iface", "ppp9", "-c", cfg)
		if code != 20 {
			t.Errorf("exit %d, want 20 (one stage failed)", code)
		}
		once(t, log, "run started", "", "run=1", `cause="linkctl run"`, "iface=ppp9")
		once(t, log, "stage started", "sh", "run=1")
		once(t, log, "stage ended", "sh", "run=1", "result=ok", `summary="exit 0"`, "elapsed=")
		once(t, log, "stage started", "bad", "run=1")
		once(t, log, "stage ended", "bad", "run=1", "result=permanent", `error="bad: `, "elapsed=")
		once(t, log, "run ended", "", "run=1", "result=permanent", `error="stage bad: `, "elapsed=")
	})
	// A stage run alone (linkctl flush, fetch, etrn) goes the same way.
	t.Run("flush", func(t *testing.T) {
		cfg := writeConfig(t, `pipeline: [flush]
flush:
  mta: command
  flush_command: ["true"]
  list_command: ["true"]
  timeout: 30s
`)
		_, log, code := linkctl(t, nil, "flush", "-c", cfg)
		if code != 1 {
			t.Errorf("exit %d, want 1 (nothing queued)", code)
		}
		once(t, log, "run started", "", "run=1", `cause="linkctl flush"`)
		once(t, log, "stage started", "flush", "run=1")
		once(t, log, "stage ended", "flush", "run=1", "result=nothing", `summary="command: nothing was queued"`, "elapsed=")
		once(t, log, "run ended", "", "run=1", "result=nothing", "elapsed=")
	})
	// Through a daemon: once in the daemon's log, once in `linkctl up`'s.
	t.Run("daemon", func(t *testing.T) {
		cfg := daemonConfig(t, `[sh, -c, "echo ran-by-daemon"]`)
		d, derr := startDaemon(t, cfg)
		_, upLog, code := linkctl(t, nil, "-c", cfg, "up", "ppp0")
		if code != 0 {
			t.Fatalf("up: exit %d\n%s", code, upLog)
		}
		if _, _, code := linkctl(t, nil, "-c", cfg, "quit"); code != 0 {
			t.Fatalf("quit exit %d", code)
		}
		done := make(chan error, 1)
		go func() { done <- d.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the daemon did not quit")
		}
		for who, log := range map[string]string{"daemon": derr.String(), "up": upLog} {
			t.Logf("%s's log:\n%s", who, log)
			once(t, log, "run started", "", "run=1", `cause="linkctl up"`, "iface=ppp0")
			once(t, log, "stage started", "sh", "run=1")
			once(t, log, "stage ended", "sh", "run=1", "result=ok", `summary="exit 0"`, "elapsed=")
			once(t, log, "run ended", "", "run=1", "result=ok", "elapsed=")
		}
	})
}
