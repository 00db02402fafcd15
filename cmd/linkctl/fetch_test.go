package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/internal/testpeer"
)

// TestFetchOneOff: `linkctl fetch --server ...` from the command line alone
// against a private Dovecot into an in-process SMTP sink, over POP3 and
// over IMAP (--proto imap --folder F): exit statuses 0 (mail), 1 (no mail)
// and 3 (wrong password). The IMAP case delivers to a bare local name,
// which SMTP delivery qualifies (deliver.domain, default localhost): the
// sink, like Exim, refuses an address without a domain.
func TestFetchOneOff(t *testing.T) {
	testpeer.Short(t)
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{Users: map[string]string{"u": "right"}})
	for _, tc := range []struct {
		name, folder, to, want string
		args                   []string
	}{
		{"pop3", "INBOX", "rcpt@sink.test", "rcpt@sink.test", []string{"--server", d.POP3Addr()}},
		{"imap", "Lists", "chavez", "chavez@localhost", []string{"--server", d.IMAPAddr(), "--proto", "imap", "--folder", "Lists"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := testpeer.StartSink(t, testpeer.SinkOptions{})
			for i := range 3 {
				d.AddMessage("u", tc.folder, []byte("Return-Path: <a@example.org>\nSubject: m\nMessage-ID: <"+tc.name+string(rune('a'+i))+"@t>\n\nbody\n"))
			}
			dir := t.TempDir()
			pass := filepath.Join(dir, "pass")
			os.WriteFile(pass, []byte("right\n"), 0o600)
			bad := filepath.Join(dir, "bad")
			os.WriteFile(bad, []byte("wrong\n"), 0o600)
			run := func(pw string) (int, string) {
				var out, errb bytes.Buffer
				args := append([]string{"fetch"}, tc.args...)
				args = append(args, "--tls", "none", "--user", "u", "--password-file", pw, "--deliver", "smtp:"+sink.Addr(),
					"--to", tc.to, "--state-dir", filepath.Join(dir, "state"))
				code := Main(context.Background(), args, nil, &out, &errb)
				return code, out.String() + errb.String()
			}
			if code, out := run(pass); code != 0 {
				t.Fatalf("exit %d:\n%s", code, out)
			} else if !strings.Contains(out, "3 messages") {
				t.Errorf("summary does not say 3 messages:\n%s", out)
			}
			if n := len(sink.Messages()); n != 3 {
				t.Fatalf("sink got %d messages", n)
			}
			if m := sink.Messages()[0]; m.From != "a@example.org" || len(m.To) != 1 || m.To[0] != tc.want {
				t.Errorf("envelope %q -> %v, want -> %s", m.From, m.To, tc.want)
			}
			if n := d.Count("u", tc.folder); n != 0 {
				t.Errorf("%d messages left in %s", n, tc.folder)
			}
			if code, out := run(pass); code != 1 {
				t.Errorf("no mail: exit %d, want 1:\n%s", code, out)
			}
			// Without --tls the server on loopback is plaintext, as in a
			// config (the one-off used to demand STARTTLS, which this
			// Dovecot does not offer).
			var out, errb bytes.Buffer
			args := append([]string{"fetch"}, tc.args...)
			args = append(args, "--user", "u", "--password-file", pass, "--deliver", "smtp:"+sink.Addr(),
				"--to", tc.to, "--state-dir", filepath.Join(dir, "state"))
			if code := Main(context.Background(), args, nil, &out, &errb); code != 1 {
				t.Errorf("no --tls on loopback: exit %d, want 1 (no mail):\n%s%s", code, out.String(), errb.String())
			}
			if code, out := run(bad); code != 3 {
				t.Errorf("wrong password: exit %d, want 3:\n%s", code, out)
			} else if strings.Contains(out, "wrong") {
				t.Errorf("the password leaked into the output:\n%s", out)
			}
		})
	}
}
