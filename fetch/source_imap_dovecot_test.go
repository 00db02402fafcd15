package fetch

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// TestIMAPSourceDovecot runs the Mailbox against a real Dovecot with
// STARTTLS and COMPRESS: every message arrives byte-exact (LF line ends),
// and a committed Close leaves the folder empty.
func TestIMAPSourceDovecot(t *testing.T) {
	testpeer.Short(t)
	t.Parallel() // its own Dovecot
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{TLS: true, Compress: true})
	var want []string
	for i := range 12 {
		m := fmt.Sprintf("From: a@example.org\r\nSubject: %d\r\n\r\n%s\r\n", i, strings.Repeat("line of text\r\n", 50*i+1))
		d.AddMessage("user", "INBOX", []byte(m))
		want = append(want, strings.ReplaceAll(m, "\r\n", "\n"))
	}
	src := IMAPSource{Addr: d.IMAPAddr(), TLS: netconn.TLSStartTLS, TLSConfig: d.TLSConfig("127.0.0.1"),
		User: "user", Password: pw("password"), Timeout: 20 * time.Second}
	_, got := runIMAP(t, src, true)
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	seen := map[string]bool{}
	for _, g := range got {
		seen[g] = true
	}
	for i, w := range want {
		if !seen[w] {
			t.Errorf("message %d not fetched intact", i)
		}
	}
	if n := d.Count("user", "INBOX"); n != 0 {
		t.Fatalf("%d messages left after a committed Close", n)
	}
	// A second run finds nothing.
	mb, err := src.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close(context.Background(), true)
	if l, err := mb.List(context.Background()); err != nil || len(l) != 0 {
		t.Fatalf("second run lists %v, %v", l, err)
	}
}

// TestIMAPSourceDovecotManyDeleted commits the deletion of more messages
// than go-imap buffers EXPUNGE responses for (128) in one pipelined
// STORE + UID EXPUNGE + LOGOUT against a real Dovecot: this hung once
// (see Client.Commit); now the folder ends empty.
func TestIMAPSourceDovecotManyDeleted(t *testing.T) {
	testpeer.Short(t)
	t.Parallel() // its own Dovecot
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{})
	const n = 400
	for i := range n {
		d.AddMessage("user", "INBOX", []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i)))
	}
	src := IMAPSource{Addr: d.IMAPAddr(), TLS: netconn.TLSNone, User: "user", Password: pw("password"), Timeout: 20 * time.Second}
	done := make(chan []string, 1)
	go func() {
		_, got := runIMAP(t, src, true)
		done <- got
	}()
	select {
	case got := <-done:
		if len(got) != n {
			t.Fatalf("fetched %d of %d", len(got), n)
		}
	case <-time.After(2 * time.Minute): // a hang guard, not a speed target
		panic("the commit of 400 deletions hung") // t.Fatal would hang in the client's cleanup
	}
	if left := d.Count("user", "INBOX"); left != 0 {
		t.Fatalf("%d messages left after the commit", left)
	}
}
