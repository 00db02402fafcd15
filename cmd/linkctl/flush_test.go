package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/testpeer"
)

// TestFlushCommandMTACommand: `linkctl flush` with mta: command runs the
// user's flush command and reads the user's listing until the message
// that was waiting is gone.
func TestFlushCommandMTACommand(t *testing.T) {
	dir := t.TempDir()
	listing := filepath.Join(dir, "queue")
	os.WriteFile(listing, []byte(`{"queue_name": "deferred", "queue_id": "ABC123", "sender": "me@home.test", "recipients": [{"address": "you@far.test", "delay_reason": "connect to relay: Connection refused"}]}`+"\n"), 0o644)
	cfg := writeConfig(t, fmt.Sprintf(`pipeline: [flush]
flush:
  mta: command
  flush_command: [sh, -c, ": > %s"]
  list_command: [cat, %s]
  timeout: 30s
`, listing, listing))
	out, errOut, code := linkctl(t, nil, "flush", "-c", cfg)
	if code != 0 || !strings.Contains(out, "1 of 1 delivered") || !strings.Contains(out, "drained") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestFlushCommandPostfixRelayDown: `linkctl flush` drives a private
// Postfix through MAIL_CONFIG; the relay is down, so the messages are
// deferred again and the command says why, promptly, exit 21 (outbound
// mail still deferred: issue 17).
func TestFlushCommandPostfixRelayDown(t *testing.T) {
	testpeer.Short(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	relay := l.Addr().String()
	l.Close()
	pf := testpeer.StartPostfix(t, testpeer.PostfixOptions{RelayDomains: []string{"relay.test"}, RelayAddr: relay})
	for i := range 2 {
		if err := pf.Send("me@home.test", []string{fmt.Sprintf("r%d@relay.test", i)}, "Subject: out\n\nhi\n"); err != nil {
			t.Fatal(err)
		}
	}
	pf.WaitQueue(20*time.Second, "2 deferred", func(q []testpeer.PostfixQueued) bool {
		return len(q) == 2 && q[0].Queue == "deferred" && q[1].Queue == "deferred"
	})
	cfg := writeConfig(t, "pipeline: [flush]\nflush: {mta: postfix, timeout: 30s}\n")
	out, errOut, code := linkctl(t, pf.Env(), "flush", "-c", cfg)
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	if code != 21 || !strings.Contains(out, "2 deferred") || !strings.Contains(out, "Connection refused") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
