package flush

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
)

// script writes an executable test fixture (the fake MTA command).
func script(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunnerErrors(t *testing.T) {
	r := &Runner{Timeout: 5 * time.Second}
	ctx := context.Background()

	out, err := r.Run(ctx, []string{script(t, "ok", "echo \"$MAIL_CONFIG|$1\"\n"), "a b"})
	if err != nil || string(out) != "|a b\n" {
		t.Errorf("ok: %q %v (arguments must arrive whole, no shell)", out, err)
	}
	r.Env = []string{"MAIL_CONFIG=/etc/postfix-out"}
	if out, _ := r.Run(ctx, []string{script(t, "env", "echo \"$MAIL_CONFIG\"\n")}); string(out) != "/etc/postfix-out\n" {
		t.Errorf("env: %q", out)
	}

	_, err = r.Run(ctx, []string{script(t, "tempfail", "echo 'postqueue: fatal: mail system is down' >&2; exit 75\n")})
	if !errkind.IsTemporary(err) || !strings.Contains(err.Error(), "mail system is down") || !strings.Contains(err.Error(), "exit status 75") {
		t.Errorf("exit 75: %v (temporary %v)", err, errkind.IsTemporary(err))
	}
	_, err = r.Run(ctx, []string{script(t, "fail", "echo 'bad option' >&2; exit 64\n")})
	if errkind.IsTemporary(err) || !strings.Contains(err.Error(), "bad option") {
		t.Errorf("exit 64: %v", err)
	}
	_, err = r.Run(ctx, []string{"/nonexistent/postqueue", "-f"})
	if errkind.KindOf(err) != errkind.Usage || errkind.IsTemporary(err) || !strings.Contains(err.Error(), "is the MTA installed") {
		t.Errorf("missing: %v", err)
	}
	r.Timeout = 100 * time.Millisecond
	_, err = r.Run(ctx, []string{script(t, "hang", "exec sleep 30\n")})
	if !errkind.IsTemporary(err) || !strings.Contains(err.Error(), "no answer after") {
		t.Errorf("hang: %v", err)
	}
}

func TestNewDriver(t *testing.T) {
	for _, mta := range []string{Postfix, Sendmail, Exim, OpenSMTPD} {
		d, err := NewDriver(mta, nil, nil)
		if err != nil || d.Name != mta || len(d.Flush) == 0 || len(d.List) == 0 {
			t.Errorf("%s: %+v %v", mta, d, err)
		}
	}
	if _, err := NewDriver(Command, nil, nil); errkind.KindOf(err) != errkind.Usage {
		t.Errorf("command without flush_command: %v", err)
	}
	if _, err := NewDriver("qmail", nil, nil); errkind.KindOf(err) != errkind.Usage {
		t.Errorf("unknown: %v", err)
	}
	// auto finds what is installed here, and says so in Name.
	if d, err := NewDriver(Auto, nil, nil); err == nil && (d.Name == Auto || d.Found == "") {
		t.Errorf("auto did not say which MTA it found: %+v", d)
	}
	d, _ := NewDriver(Postfix, nil, nil)
	if strings.Join(d.Flush, " ") != "postqueue -f" || strings.Join(d.List, " ") != "postqueue -j" {
		t.Errorf("postfix driver: %v / %v", d.Flush, d.List)
	}
}

// wantDeferred checks the error of a queue run that left mail deferred:
// exit status 21 for the connection script, temporary.
func wantDeferred(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrDeferred) || errkind.KindOf(err) != errkind.Deferred || errkind.ExitCode(err) != 21 || !errkind.IsTemporary(err) {
		t.Fatalf("err = %v (kind %v), want outbound mail still deferred (exit 21, temporary)", err, errkind.KindOf(err))
	}
}

// otherQueueRun starts cmd, a queue run of the MTA's other than the
// stage's own (as a ppp ip-up hook starts one when the link comes up), and
// waits until delivering says that it has the message in delivery. The
// test's cleanup kills it.
func otherQueueRun(t *testing.T, cmd *exec.Cmd, delivering func() bool, log func() string) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for !delivering() {
		if time.Now().After(deadline) {
			t.Fatalf("the other queue run never had the message in delivery\n%s", log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeMTA builds a driver whose list command prints listing[0] before the
// flush and then listing[1], [2], ... on each later call (the last one
// repeats), and whose flush command records that it ran.
func fakeMTA(t *testing.T, listings ...string) (Driver, string) {
	t.Helper()
	dir := t.TempDir()
	for i, l := range listings {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), []byte(l), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "n"), []byte("0"), 0o644)
	list := script(t, "list", fmt.Sprintf(`d=%s; n=$(cat $d/n); f=$d/$n; [ -f $f ] || f=$d/%d; cat $f; echo $((n+1)) > $d/n
`, dir, len(listings)-1))
	flush := script(t, "flush", fmt.Sprintf("touch %s/flushed\n", dir))
	return Driver{Name: "fake", Flush: []string{flush}, List: []string{list}, Parse: ParsePostfixJSON}, dir
}

func pj(id, queue, reason string, rcpts ...string) string {
	var rs []string
	for _, r := range rcpts {
		rs = append(rs, fmt.Sprintf(`{"address": %q, "delay_reason": %q}`, r, reason))
	}
	return fmt.Sprintf(`{"queue_name": %q, "queue_id": %q, "arrival_time": 1, "message_size": 300, "sender": "a@home.test", "recipients": [%s]}`+"\n",
		queue, id, strings.Join(rs, ", "))
}

// TestRunDrains: three deferred messages, one on hold; the flush delivers
// two (seen active, then gone), the third is deferred again with a new
// reason; a message queued meanwhile is counted as new.
func TestRunDrains(t *testing.T) {
	refused := "connect to 192.0.2.1[192.0.2.1]:25: Connection refused"
	d, dir := fakeMTA(t,
		pj("A", "deferred", refused, "x@far.test")+pj("B", "deferred", refused, "y@far.test", "z@far.test")+pj("C", "deferred", refused, "w@far.test")+pj("H", "hold", "", "h@far.test"),
		pj("A", "active", "", "x@far.test")+pj("B", "active", "", "y@far.test")+pj("C", "deferred", refused, "w@far.test")+pj("H", "hold", "", "h@far.test"),
		pj("C", "deferred", "host far.test said: 452 mailbox full", "w@far.test")+pj("H", "hold", "", "h@far.test")+pj("N", "incoming", "", "n@far.test"),
	)
	res, err := Run(context.Background(), Options{Driver: &d, Poll: time.Millisecond, Settle: time.Hour, Timeout: time.Minute}, nil)
	wantDeferred(t, err)
	if _, err := os.Stat(filepath.Join(dir, "flushed")); err != nil {
		t.Error("flush command did not run")
	}
	if !res.Drained || res.Before != 3 || res.Delivered != 2 || len(res.Deferred) != 1 || res.Held != 1 || res.New != 1 || res.Waiting != 0 {
		t.Errorf("result = %+v", res)
	}
	if res.Deferred[0].ID != "C" || !strings.Contains(res.Summary(), "1 deferred: host far.test said: 452 mailbox full") {
		t.Errorf("summary %q", res.Summary())
	}
}

// TestRunSettles: a background queue run that re-defers everything
// faster than a poll (same reason, never seen active) is over once
// nothing has been in delivery for Settle.
func TestRunSettles(t *testing.T) {
	refused := "connect to 127.0.0.1[127.0.0.1]:2599: Connection refused"
	q := pj("A", "deferred", refused, "x@far.test") + pj("B", "deferred", refused, "y@far.test")
	d, _ := fakeMTA(t, q, q)
	res, err := Run(context.Background(), Options{Driver: &d, Poll: time.Millisecond, Settle: 20 * time.Millisecond, Timeout: time.Minute}, nil)
	wantDeferred(t, err)
	if !res.Drained || len(res.Deferred) != 2 || res.Elapsed < 20*time.Millisecond || !strings.Contains(res.Summary(), "2 deferred: "+refused) {
		t.Errorf("result = %+v, summary %q", res, res.Summary())
	}
}

// TestRunTimeout: a message that stays in delivery ends the wait at
// Timeout with a temporary error.
func TestRunTimeout(t *testing.T) {
	d, _ := fakeMTA(t, pj("A", "deferred", "x", "x@far.test"), pj("A", "active", "", "x@far.test"))
	res, err := Run(context.Background(), Options{Driver: &d, Poll: time.Millisecond, Timeout: 30 * time.Millisecond}, nil)
	if err == nil || !errkind.IsTemporary(err) || !strings.Contains(err.Error(), "not drained after") || res.Drained || res.Waiting != 1 {
		t.Errorf("err = %v, result %+v", err, res)
	}
}

// TestRunNoWait only starts the queue run.
func TestRunNoWait(t *testing.T) {
	d, dir := fakeMTA(t, pj("A", "deferred", "x", "x@far.test"))
	res, err := Run(context.Background(), Options{Driver: &d, Wait: WaitNone}, nil)
	if err != nil || res.Waited || res.Before != 1 {
		t.Errorf("res %+v err %v", res, err)
	}
	if n, _ := os.ReadFile(filepath.Join(dir, "n")); string(n) != "1\n" {
		t.Errorf("listed %s times, want once (the snapshot)", n)
	}
}

// TestRunSyncDriver: for an MTA whose flush runs the queue in the
// foreground, one listing after it is the answer.
func TestRunSyncDriver(t *testing.T) {
	d, _ := fakeMTA(t, pj("A", "deferred", "x", "x@far.test")+pj("B", "deferred", "x", "y@far.test"), pj("B", "deferred", "x", "y@far.test"))
	d.Sync = true
	res, err := Run(context.Background(), Options{Driver: &d, Poll: time.Hour, Settle: time.Hour}, nil)
	wantDeferred(t, err)
	if !res.Drained || res.Delivered != 1 || len(res.Deferred) != 1 {
		t.Errorf("res %+v err %v", res, err)
	}
}

// TestRunFlushFails: the flush command's failure is the stage's error.
func TestRunFlushFails(t *testing.T) {
	d, _ := fakeMTA(t, "")
	d.Flush = []string{script(t, "down", "echo 'postqueue: fatal: Cannot flush mail queue - mail system is down' >&2; exit 69\n")}
	_, err := Run(context.Background(), Options{Driver: &d}, nil)
	if err == nil || !strings.Contains(err.Error(), "mail system is down") {
		t.Errorf("err = %v", err)
	}
}
