package deliver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// readMaildir returns the contents of every message file in dir's new/
// and cur/.
func readMaildir(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"new", "cur"} {
		paths, _ := filepath.Glob(filepath.Join(dir, sub, "*"))
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(b))
		}
	}
	return out
}

// Real Dovecot LMTP, over TCP and over its unix socket: messages arrive
// byte for byte (Dovecot stores LF), an unknown recipient is refused at
// RCPT and nothing is delivered to the known one either.
func TestLMTPDovecot(t *testing.T) {
	testpeer.Short(t)
	t.Parallel() // its own Dovecot
	dc := testpeer.StartDovecot(t, testpeer.DovecotOptions{Users: map[string]string{"alice": "pw", "bob": "pw"}})
	body := "From: x@example.org\nSubject: via lmtp\n\n.a dot line\n\xc3\xa4 8bit\nlast"
	for i, addr := range []string{dc.LMTPAddr(), dc.LMTPPath()} {
		tg := NewLMTP(LMTPOptions{Addr: addr, Sessions: 2, Timeout: 10 * time.Second})
		err := tg.Deliver(context.Background(), Envelope{From: "x@example.org", To: []string{"alice", "bob", "alice"}}, strings.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v\n%s", addr, err, dc.Log())
		}
		tg.Close()
		for _, u := range []string{"alice", "bob"} {
			msgs := readMaildir(t, dc.Maildir(u, ""))
			if len(msgs) != i+1 {
				t.Fatalf("%s: %s has %d messages, want %d", addr, u, len(msgs), i+1)
			}
			found := false
			for _, m := range msgs {
				// Dovecot adds Return-Path and Delivered-To in front.
				found = found || strings.HasSuffix(m, body+"\n")
			}
			if !found {
				t.Errorf("%s: %s: message not stored byte for byte: %q", addr, u, msgs)
			}
		}
	}
	tg := NewLMTP(LMTPOptions{Addr: dc.LMTPAddr(), Timeout: 10 * time.Second})
	defer tg.Close()
	err := tg.Deliver(context.Background(), Envelope{To: []string{"alice", "nobody-here"}}, strings.NewReader(body))
	if err == nil || errkind.IsTemporary(err) || !strings.Contains(err.Error(), "nobody-here") {
		t.Fatalf("unknown user: err %v, want a permanent refusal naming the recipient", err)
	}
	if n := len(readMaildir(t, dc.Maildir("alice", ""))); n != 2 {
		t.Errorf("alice has %d messages after a refused transaction, want 2", n)
	}
}

// Real Postfix: accepted means queued; the message reaches its sink
// Maildir unchanged (Postfix adds its own headers in front).
func TestSMTPPostfix(t *testing.T) {
	testpeer.Short(t)
	t.Parallel() // its own Postfix
	pf := testpeer.StartPostfix(t, testpeer.PostfixOptions{})
	tg := NewSMTP(SMTPOptions{Addr: pf.Addr(), Sessions: 4, Timeout: 30 * time.Second})
	defer tg.Close()
	body := "From: x@example.org\nSubject: via smtp\nDate: Wed, 25 Nov 2026 04:16:40 +0000\nMessage-Id: <t1@example.org>\n\n.a dot line\nlast"
	if err := tg.Deliver(context.Background(), Envelope{From: "x@example.org", To: []string{"u@sink.test"}}, strings.NewReader(body)); err != nil {
		t.Fatalf("%v\n%s", err, pf.Log())
	}
	paths := pf.WaitMessages(1, 30*time.Second)
	b, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(b), body+"\n") {
		t.Errorf("stored %q, want it to end with %q", b, body+"\n")
	}
	// A recipient domain Postfix does not serve: refused (relay denied),
	// permanently.
	err = tg.Deliver(context.Background(), Envelope{To: []string{"u@elsewhere.example"}}, strings.NewReader(body))
	if err == nil || errkind.IsTemporary(err) {
		t.Errorf("relay attempt: err %v, want a permanent refusal", err)
	}
	var pe *PartialError
	if errors.As(err, &pe) {
		t.Errorf("SMTP returned a partial error: %v", err)
	}
}
