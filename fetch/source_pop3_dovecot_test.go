package fetch

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/authmech"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/logx"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// TestPOP3SourceDovecot runs real sessions against a private Dovecot on
// loopback: STARTTLS and implicit TLS, each auth method Dovecot offers,
// pipelined UIDL/LIST/RETR/DELE, commit with QUIT and rollback by drop.
func TestPOP3SourceDovecot(t *testing.T) {
	testpeer.Short(t)
	t.Parallel() // its own Dovecot
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{
		Users: map[string]string{"alice": "alice-pw"},
		TLS:   true,
		// apop makes the greeting carry a timestamp (RFC 1939 section 7).
		Mechanisms: []string{"plain", "login", "apop"},
		Extra:      "auth_failure_delay = 0\n",
	})
	want := map[string]bool{}
	add := func(raw string) {
		d.AddMessage("alice", "INBOX", []byte(raw))
		want[strings.ReplaceAll(raw, "\r\n", "\n")] = true
	}
	add("Subject: one\r\n\r\nplain body\r\n")
	add("Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n")
	add("Subject: lf only\n\nunix line ends\n")
	big := "Subject: big\n\n" + strings.Repeat(strings.Repeat("z", 99)+"\n", 20000) // 2 MB
	add(big)
	add("Subject: five\r\n\r\nlast\r\n")

	ctx := context.Background()
	src := POP3Source{
		Addr: d.POP3Addr(), TLS: netconn.TLSStartTLS, TLSConfig: &tls.Config{RootCAs: d.CAPool()},
		User: "alice", Password: pw("alice-pw"), Timeout: 10 * time.Second,
		Logger: pop3TestLogger(t),
	}

	open := func(t *testing.T, s POP3Source) (Mailbox, []Message) {
		t.Helper()
		mb, err := s.Open(ctx)
		if err != nil {
			t.Fatalf("Open: %v\n%s", err, d.Log())
		}
		msgs, err := mb.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		return mb, msgs
	}

	t.Run("retrieve-all", func(t *testing.T) {
		mb, msgs := open(t, src)
		defer mb.Close(ctx, false)
		if len(msgs) != 5 {
			t.Fatalf("%d messages listed, want 5", len(msgs))
		}
		uids := map[string]bool{}
		for _, m := range msgs {
			uids[m.UID] = true
		}
		if len(uids) != 5 {
			t.Errorf("UIDs not distinct: %v", msgs)
		}
		got := map[string]bool{}
		err := mb.Retrieve(ctx, msgs, func(m Message, r io.Reader) error {
			b, err := io.ReadAll(r)
			got[string(b)] = true
			if bytes.Contains(b, []byte("\r")) {
				t.Errorf("message %d has CR: not LF-normalised", m.Num)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for w := range want {
			if !got[w] {
				t.Errorf("message not retrieved intact: %q", w[:min(len(w), 40)])
			}
		}
	})

	t.Run("drop-rolls-back", func(t *testing.T) {
		mb, msgs := open(t, src)
		if err := mb.Delete(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		if err := mb.Close(ctx, false); err != nil {
			t.Fatal(err)
		}
		if n := d.Count("alice", "INBOX"); n != 5 {
			t.Errorf("%d messages after a drop without QUIT, want 5", n)
		}
	})

	for _, auth := range []authmech.Mech{authmech.Auto, authmech.Password, authmech.Plain, authmech.Login, authmech.APOP} {
		t.Run("auth-"+string(auth), func(t *testing.T) {
			s := src
			s.Auth = auth
			mb, msgs := open(t, s)
			if len(msgs) != 5 {
				t.Errorf("%d messages", len(msgs))
			}
			if err := mb.Close(ctx, true); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("implicit-tls-delete-commit", func(t *testing.T) {
		s := src
		s.Addr, s.TLS = d.POP3SAddr(), netconn.TLSImplicit
		mb, msgs := open(t, s)
		if err := mb.Delete(ctx, msgs[:3]); err != nil {
			t.Fatal(err)
		}
		if err := mb.Close(ctx, true); err != nil {
			t.Fatal(err)
		}
		if n := d.Count("alice", "INBOX"); n != 2 {
			t.Errorf("%d messages after deleting 3 of 5 and QUIT, want 2", n)
		}
		mb, rest := open(t, s)
		defer mb.Close(ctx, true)
		for _, m := range rest {
			for _, gone := range msgs[:3] {
				if m.UID == gone.UID {
					t.Errorf("deleted UID %s still listed", m.UID)
				}
			}
		}
	})

	// Last: Dovecot delays later logins from an address after a failure.
	t.Run("wrong-password", func(t *testing.T) {
		s := src
		s.Password = pw("nope")
		_, err := s.Open(ctx)
		if errkind.KindOf(err) != errkind.Auth || errkind.IsTemporary(err) {
			t.Fatalf("err %v", err)
		}
	})
}

// pop3TestLogger sends trace transcripts to t.Log (shown with -v or on
// failure), which also shows that no password reaches them.
func pop3TestLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(pop3TestWriter{t}, &slog.HandlerOptions{Level: logx.LevelTrace}))
}

type pop3TestWriter struct{ t *testing.T }

func (w pop3TestWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
