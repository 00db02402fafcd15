package fetch

import (
	"context"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/scripted"
)

// TestIMAPSourceHostileBodies runs the engine's side of a pull (Open, List,
// Retrieve, Close) against servers that misbehave while sending bodies:
// the wedge of issue 15 (bodies without UIDs, then silence or a cut) and a
// stall that only the run's cancellation ends. Each must return within 2 s
// (the inactivity timeout is a minute) and ask the server to delete
// nothing, since nothing was delivered.
func TestIMAPSourceHostileBodies(t *testing.T) {
	head := []string{
		"S: * OK [CAPABILITY IMAP4rev1 UIDPLUS] ready",
		`C: L1 LOGIN "alice" "secret"`,
		"S: L1 OK [CAPABILITY IMAP4rev1 UIDPLUS] in",
		"C: T1 SELECT INBOX",
		"C~ T2 UID FETCH 1:* (UID ",
		"S: * 2 EXISTS",
		"S: * OK [UIDVALIDITY 42] ok",
		"S: T1 OK [READ-WRITE] selected",
		"S: * 1 FETCH (UID 5 RFC822.SIZE 3 FLAGS ())",
		"S: * 2 FETCH (UID 7 RFC822.SIZE 2 FLAGS ())",
		"S: T2 OK listed",
		"C: T3 UID FETCH 5,7 (UID BODY.PEEK[])",
	}
	cases := []struct {
		name   string
		tail   []string
		cancel bool
		want   string
	}{
		{"UID-less bodies, silence", []string{"RAW: * 1 FETCH (BODY[] {3}\r\nabc)\r\n* 2 FETCH (BODY[] {2}\r\nxy)\r\n", "HANG"}, false, "without a UID"},
		{"UID-less bodies, cut", []string{"RAW: * 1 FETCH (BODY[] {3}\r\nabc)\r\n* 2 FETCH (BODY[] {2}\r\nxy)\r\n", "CLOSE"}, false, "without a UID"},
		{"stall mid body, cancelled", []string{"RAW: * 1 FETCH (UID 5 BODY[] {3}\r\na", "HANG"}, true, "context canceled"},
		{"body under a UID not asked for", []string{"RAW: * 1 FETCH (UID 9 BODY[] {3}\r\nabc)\r\n", "HANG"}, false, "UID 9, which was not asked for"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := scripted.Start(t, append(slices.Clone(head), c.tail...))
			src := IMAPSource{Addr: "imap.test:143", TLS: netconn.TLSNone, User: "alice", Password: pw("secret"), Timeout: time.Minute,
				Dial: func(context.Context) (net.Conn, error) { return srv.Conn, nil }}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			mb, err := src.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := mb.List(ctx)
			if err != nil || len(msgs) != 2 {
				t.Fatalf("list %v, %v", msgs, err)
			}
			if c.cancel {
				time.AfterFunc(200*time.Millisecond, cancel)
			}
			var delivered []Message
			done := make(chan error, 1)
			start := time.Now()
			go func() {
				done <- mb.Retrieve(ctx, msgs, func(m Message, r io.Reader) error {
					if _, err := io.ReadAll(r); err != nil {
						return err
					}
					delivered = append(delivered, m)
					return nil
				})
			}()
			select {
			case err = <-done:
			case <-time.After(3 * time.Second):
				t.Fatal("Retrieve still running after 3s: wedged")
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Retrieve took %v", took)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Retrieve: %v, want an error saying %q", err, c.want)
			}
			if k := errkind.KindOf(err); k != errkind.Protocol && k != errkind.Network {
				t.Errorf("error kind %v: %v", k, err)
			}
			// The engine deletes what was delivered and commits.
			if err := mb.Delete(context.Background(), delivered); err != nil {
				t.Fatal(err)
			}
			closed := make(chan struct{})
			go func() { mb.Close(context.Background(), true); close(closed) }()
			select {
			case <-closed:
			case <-time.After(3 * time.Second):
				t.Fatal("Close still running after 3s")
			}
			for _, l := range srv.Lines() {
				if u := strings.ToUpper(l); strings.Contains(u, "STORE") || strings.Contains(u, "EXPUNGE") {
					t.Errorf("client sent %q after delivering %d messages", l, len(delivered))
				}
			}
		})
	}
}
