package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/fetch/pop3/pop3test"
	"github.com/linkctl/linkctl/internal/exitcode"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// TestFetchLimitExits13: a fetch that stops at fetchlimit with mail left
// on the server exits 13, fetchmail's "poll terminated by a fetch limit",
// and says so; the next run, which takes the rest, exits 0. (linkctl used
// to exit 0 here, and gave 13 to internal errors.)
func TestFetchLimitExits13(t *testing.T) {
	srv := &pop3test.Server{User: "u", Pass: "right"}
	for i := range 3 {
		srv.Add([]byte(fmt.Sprintf("Return-Path: <a@example.org>\nSubject: m\nMessage-ID: <limit%d@t>\n\nbody\n", i)))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go srv.ServeListener(ln)
	sink := testpeer.StartSink(t, testpeer.SinkOptions{})
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	os.WriteFile(pass, []byte("right\n"), 0o600)
	run := func() (int, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), []string{"fetch", "--server", ln.Addr().String(), "--tls", "none",
			"--user", "u", "--password-file", pass, "--deliver", "smtp:" + sink.Addr(), "--to", "rcpt@sink.test",
			"--state-dir", filepath.Join(dir, "state"), "--fetchlimit", "2"}, nil, &out, &errb)
		return code, out.String() + errb.String()
	}
	code, out := run()
	if code != exitcode.FetchLimit {
		t.Fatalf("stopped at fetchlimit: exit %d, want %d:\n%s", code, exitcode.FetchLimit, out)
	}
	if !strings.Contains(out, "stopped at fetchlimit, 1 left for the next run") {
		t.Errorf("the summary does not say the fetch stopped at fetchlimit:\n%s", out)
	}
	if n := srv.Count(); n != 1 {
		t.Errorf("%d messages on the server after the first run, want 1", n)
	}
	if code, out := run(); code != 0 {
		t.Errorf("the rest, under the limit: exit %d, want 0:\n%s", code, out)
	}
}

// TestHelpListsExitStatuses: `linkctl --help` shows the exit statuses from
// the one table that also writes the README and the man page.
func TestHelpListsExitStatuses(t *testing.T) {
	var out, errb bytes.Buffer
	Main(context.Background(), []string{"--help"}, nil, &out, &errb)
	if got := out.String() + errb.String(); !strings.Contains(got, exitcode.Help(80)) {
		t.Errorf("--help lacks the exit status table:\n%s", got)
	}
}
