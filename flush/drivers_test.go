package flush

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linkctl/linkctl/internal/errkind"
)

// TestNewDriverAt: a named driver run from a chosen binary with a second
// instance's config before its own arguments, for every MTA and every
// command the driver runs.
func TestNewDriverAt(t *testing.T) {
	for _, tc := range []struct {
		mta, bin string
		args     []string
		flush    string
		lists    []string
	}{
		{Postfix, "/usr/sbin/postqueue", []string{"-c", "/etc/postfix-out"}, "/usr/sbin/postqueue -c /etc/postfix-out -f",
			[]string{"/usr/sbin/postqueue -c /etc/postfix-out -j"}},
		{Exim, "/usr/sbin/exim4", []string{"-C", "/etc/exim4/second.conf"}, "/usr/sbin/exim4 -C /etc/exim4/second.conf -qff",
			[]string{"/usr/sbin/exim4 -C /etc/exim4/second.conf -bp"}},
		{Sendmail, "/usr/sbin/sendmail", []string{"-C", "/etc/mail/out.cf"}, "/usr/sbin/sendmail -C /etc/mail/out.cf -q",
			[]string{"/usr/sbin/sendmail -C /etc/mail/out.cf -bp", "/usr/sbin/sendmail -C /etc/mail/out.cf -qQ -bp"}},
		{OpenSMTPD, "/opt/smtpctl", nil, "/opt/smtpctl schedule all", []string{"/opt/smtpctl show queue"}},
	} {
		d, err := NewDriverAt(tc.mta, tc.bin, tc.args, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.mta, err)
		}
		var lists []string
		for _, l := range append([][]string{d.List}, d.MoreLists...) {
			lists = append(lists, strings.Join(l, " "))
		}
		if got := strings.Join(d.Flush, " "); got != tc.flush || !reflect.DeepEqual(lists, tc.lists) {
			t.Errorf("%s: flush %q lists %q, want %q %q", tc.mta, got, lists, tc.flush, tc.lists)
		}
	}
	for _, mta := range []string{Auto, Command, ""} {
		if _, err := NewDriverAt(mta, "/usr/sbin/exim4", nil, []string{"x"}, nil); errkind.KindOf(err) != errkind.Usage {
			t.Errorf("command with mta %q: %v, want a usage error", mta, err)
		}
	}
}

// TestRunOptionsCommandArgsEnv: Options.Command, Args and Env reach the
// MTA's commands (a second instance without a wrapper script).
func TestRunOptionsCommandArgsEnv(t *testing.T) {
	dir := t.TempDir()
	bin := script(t, "exim4", `echo "$MTA_TEST|$*" >> `+dir+`/calls
case "$*" in *-bp*) ;; esac
`)
	_, err := Run(context.Background(), Options{MTA: Exim, Command: bin, Args: []string{"-C", "/etc/exim4/second.conf"},
		Env: []string{"MTA_TEST=second"}, Poll: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
	want := "second|-C /etc/exim4/second.conf -bp\nsecond|-C /etc/exim4/second.conf -qff\nsecond|-C /etc/exim4/second.conf -bp\n"
	if string(calls) != want {
		t.Errorf("commands run:\n%s\nwant:\n%s", calls, want)
	}
}

// TestListOptionsCommandArgsEnv: a listing without a queue run (dial on
// demand, linkctl plan) reads the same instance as the flush: the named
// driver's binary, arguments and environment.
func TestListOptionsCommandArgsEnv(t *testing.T) {
	dir := t.TempDir()
	bin := script(t, "exim4", `echo "$MTA_TEST|$*" >> `+dir+`/calls
`)
	if _, err := List(context.Background(), Options{MTA: Exim, Command: bin, Args: []string{"-C", "/etc/exim4/second.conf"},
		Env: []string{"MTA_TEST=second"}}); err != nil {
		t.Fatal(err)
	}
	calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
	if want := "second|-C /etc/exim4/second.conf -bp\n"; string(calls) != want {
		t.Errorf("commands run:\n%s\nwant:\n%s", calls, want)
	}
}

// TestRunSummaryFirstListingFails: when the listing before the flush
// fails, no queue run was started and the summary must not say one was.
func TestRunSummaryFirstListingFails(t *testing.T) {
	d, dir := fakeMTA(t, "")
	d.List = []string{script(t, "down", "echo 'postqueue: fatal: Queue report unavailable - mail system is down' >&2; exit 75\n")}
	res, err := Run(context.Background(), Options{Driver: &d}, nil)
	if err == nil || !strings.Contains(err.Error(), "mail system is down") {
		t.Errorf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "flushed")); err == nil {
		t.Error("the flush ran after the listing failed")
	}
	if s := res.Summary(); strings.Contains(s, "queue run started for") || !strings.Contains(s, "no queue run started") {
		t.Errorf("summary %q, want it to say no queue run was started", s)
	}
}

// TestRunMoreLists: quarantined mail only a second listing shows (sendmail
// -qQ -bp) is counted as held, not "nothing was queued".
func TestRunMoreLists(t *testing.T) {
	d, _ := fakeMTA(t, "")
	quar, err := os.ReadFile("testdata/sendmail-8.17.1.9-bp-qQ-quarantined.txt")
	if err != nil {
		t.Fatal(err)
	}
	empty, _ := os.ReadFile("testdata/sendmail-8.17.1.9-bp-empty.txt")
	d.List = []string{script(t, "bp", "cat <<'E'\n"+string(empty)+"E\n")}
	d.MoreLists = [][]string{{script(t, "qQ", "cat <<'E'\n"+string(quar)+"E\n")}}
	d.Parse, d.Sync = ParseSendmail, true
	res, err := Run(context.Background(), Options{Driver: &d}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Held == 0 || res.Before != 0 || !strings.Contains(res.Summary(), "held") {
		t.Errorf("result %+v, summary %q: want the quarantined mail counted as held", res, res.Summary())
	}
}

// TestRunInDeliveryElsewhere: a message another process is delivering
// (the driver's InDelivery) is waited for, not reported deferred after a
// foreground queue run that skipped it; once that delivery is over and
// the message gone, it counts as delivered.
func TestRunInDeliveryElsewhere(t *testing.T) {
	q := pj("A", "deferred", "", "x@far.test")
	d, dir := fakeMTA(t, q, q, q, "")
	d.Sync = true
	d.InDelivery = func(_ context.Context, _ *Runner, msgs []Message) map[string]bool {
		n, _ := os.ReadFile(filepath.Join(dir, "n"))
		// Locked during the flush's listing and the one after it.
		if s := strings.TrimSpace(string(n)); s == "2" || s == "3" {
			return map[string]bool{"A": true}
		}
		return nil
	}
	res, err := Run(context.Background(), Options{Driver: &d, Poll: time.Millisecond, Timeout: time.Minute}, nil)
	if err != nil || res.Delivered != 1 || len(res.Deferred) != 0 {
		t.Errorf("res %+v err %v: want the message waited for and delivered", res, err)
	}
}

// TestRunBeforeFlush: the driver's BeforeFlush runs before the flush.
func TestRunBeforeFlush(t *testing.T) {
	d, dir := fakeMTA(t, "")
	var order []string
	d.BeforeFlush = func(context.Context, *Runner) error {
		_, err := os.Stat(filepath.Join(dir, "flushed"))
		order = append(order, "resume", map[bool]string{true: "flushed", false: "not flushed"}[err == nil])
		return nil
	}
	if _, err := Run(context.Background(), Options{Driver: &d, Wait: WaitNone}, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, " ") != "resume not flushed" {
		t.Errorf("order %v", order)
	}
}

func TestDisabledRoutes(t *testing.T) {
	out := "1. [] <-> 127.0.0.1 (localhost) ND-- nconn=0 nerror=0 penalty=1 timeout=6s\n" +
		"2. [] <-> 192.0.2.7 (mx.far.test) ---- nconn=1 nerror=0 penalty=0 timeout=-\n" +
		"17. [192.0.2.1] <-> 192.0.2.9 (x) -D-- nconn=0 nerror=3 penalty=3 timeout=1m\n" +
		"garbage line\n3. bad\n"
	if got := disabledRoutes([]byte(out)); !reflect.DeepEqual(got, []string{"1", "17"}) {
		t.Errorf("disabled routes %v", got)
	}
}

func TestParseEximOption(t *testing.T) {
	if got := parseEximOption([]byte("spool_directory = /var/spool/exim4\n"), "spool_directory"); got != "/var/spool/exim4" {
		t.Errorf("got %q", got)
	}
}

// TestEximLocked: a -D file locked by another process (as an Exim
// delivery process locks it) is in delivery; unlocked it is not.
func TestEximLocked(t *testing.T) {
	if os.Getenv("FLUSH_TEST_LOCK") != "" {
		f, err := os.OpenFile(os.Getenv("FLUSH_TEST_LOCK"), os.O_RDWR, 0)
		if err != nil {
			os.Exit(2)
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK, Start: 0, Len: 19}
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	spool := t.TempDir()
	id := "1xa23a-0000Z1-2Y"
	os.MkdirAll(filepath.Join(spool, "input"), 0o755)
	p := filepath.Join(spool, "input", id+"-D")
	os.WriteFile(p, []byte(id+"-D\nbody\n"), 0o640)
	if eximLocked(spool, id) {
		t.Fatal("unlocked file reported locked")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestEximLocked$")
	cmd.Env = append(os.Environ(), "FLUSH_TEST_LOCK="+p)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if l, _ := bufio.NewReader(out).ReadString('\n'); l != "locked\n" {
		t.Fatalf("helper: %q", l)
	}
	if !eximLocked(spool, id) {
		t.Error("a -D file locked by another process is not reported in delivery")
	}
	if eximLocked(spool, "../x") || eximLocked(spool, "") {
		t.Error("a non-id built a path")
	}
}

// FuzzDisabledRoutes: whatever smtpctl prints, route ids are digits only
// (they become an argv element of `smtpctl resume route`).
func FuzzDisabledRoutes(f *testing.F) {
	f.Add([]byte("1. [] <-> 127.0.0.1 (localhost) ND-- nconn=0 nerror=0 penalty=1 timeout=6s\n"))
	f.Add([]byte("x. a ND-- nconn=\n-1. D--- nconn=0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, id := range disabledRoutes(b) {
			if id == "" || strings.Trim(id, "0123456789") != "" {
				t.Fatalf("route id %q", id)
			}
		}
	})
}

// FuzzParseEximOption never panics and returns a trimmed value.
func FuzzParseEximOption(f *testing.F) {
	f.Add([]byte("spool_directory = /var/spool/exim4\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if v := parseEximOption(b, "spool_directory"); v != strings.TrimSpace(v) {
			t.Fatalf("untrimmed %q", v)
		}
	})
}
