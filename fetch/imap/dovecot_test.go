package imap

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/testpeer"
)

var words = strings.Fields(`the link is up and mail moves while it lasts a modem dial-up line
costs by the minute so every octet counts server client message folder fetch deliver queue relay
domain account password compress deflate idle expunge unseen archive report invoice meeting
tomorrow please find attached regards thanks yes no perhaps later today weekly summary of`)

// testMessage makes a plausible text message of about size octets with
// CRLF line ends, deterministic for seed.
func testMessage(seed uint64, size int) string {
	r := rand.New(rand.NewPCG(seed, 7))
	var b strings.Builder
	fmt.Fprintf(&b, "From: sender%d@example.org\r\nTo: rcpt@example.net\r\nSubject: test message %d\r\nMessage-ID: <%d@example.org>\r\n\r\n", seed, seed, seed)
	line := 0
	for b.Len() < size {
		w := words[r.IntN(len(words))]
		b.WriteString(w)
		line += len(w) + 1
		if line > 66 {
			b.WriteString("\r\n")
			line = 0
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

// pullAll logs in, fetches every message of INBOX, checks each body,
// deletes and expunges them, and returns the octets read on the wire.
func pullAll(t *testing.T, o Options, want map[string]bool) (read int64, compressed bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := Dial(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, list, err := cl.SelectList(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(want) {
		t.Fatalf("listed %d messages, want %d", len(list), len(want))
	}
	uids := make([]uint32, len(list))
	for i, e := range list {
		uids[i] = e.UID
	}
	seen := 0
	err = cl.Fetch(ctx, uids, func(uid uint32, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if !want[string(b)] {
			return fmt.Errorf("UID %d: body not among those stored (%d octets)", uid, len(b))
		}
		seen++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(want) {
		t.Fatalf("fetched %d, want %d", seen, len(want))
	}
	if err := cl.Store(ctx, uids, `\Deleted`, true); err != nil {
		t.Fatal(err)
	}
	if !cl.Has("UIDPLUS") {
		t.Fatal("Dovecot should offer UIDPLUS")
	}
	if err := cl.UIDExpunge(ctx, uids); err != nil {
		t.Fatal(err)
	}
	if err := cl.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	return cl.BytesRead(), cl.Compressed()
}

func fill(d *testpeer.Dovecot, n, size int) map[string]bool {
	want := map[string]bool{}
	for i := range n {
		m := testMessage(uint64(i), size)
		d.AddMessage("user", "INBOX", []byte(m))
		want[strings.ReplaceAll(m, "\r\n", "\n")] = true
	}
	return want
}

// TestDovecotCompress pulls the same mailbox from a real Dovecot with and
// without COMPRESS=DEFLATE (imap_zlib) and checks every message arrives
// intact both ways, the folder is empty afterwards, and the compressed
// session moved fewer octets over the wire.
func TestDovecotCompress(t *testing.T) {
	testpeer.Short(t)
	t.Parallel() // its own Dovecot
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{Compress: true})
	o := Options{Addr: d.IMAPAddr(), TLS: netconn.TLSNone, User: "user", Password: pass("password"),
		Timeout: 20 * time.Second, Logger: testLogger(t)}

	want := fill(d, 40, 6000)
	o.Compress = "off"
	plain, c := pullAll(t, o, want)
	if c {
		t.Fatal("compressed with compress: off")
	}
	if n := d.Count("user", "INBOX"); n != 0 {
		t.Fatalf("%d messages left after expunge", n)
	}

	want = fill(d, 40, 6000)
	o.Compress = "on"
	deflated, c := pullAll(t, o, want)
	if !c {
		t.Fatal("COMPRESS not active with imap_zlib and compress: on")
	}
	if n := d.Count("user", "INBOX"); n != 0 {
		t.Fatalf("%d messages left after expunge", n)
	}
	t.Logf("octets read: %d plain, %d with COMPRESS=DEFLATE (%.2f)", plain, deflated, float64(deflated)/float64(plain))
	if deflated >= plain {
		t.Fatalf("COMPRESS read %d octets, not fewer than %d without", deflated, plain)
	}
}

// TestDovecotStartTLSCompress layers deflate over TLS.
func TestDovecotStartTLSCompress(t *testing.T) {
	testpeer.Short(t)
	t.Parallel() // its own Dovecot
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{Compress: true, TLS: true})
	o := Options{Addr: d.IMAPAddr(), TLS: netconn.TLSStartTLS, TLSConfig: d.TLSConfig("127.0.0.1"),
		User: "user", Password: pass("password"), Timeout: 20 * time.Second, Logger: testLogger(t)}
	want := fill(d, 5, 3000)
	if _, c := pullAll(t, o, want); !c {
		t.Fatal("COMPRESS not active over STARTTLS")
	}
}

// TestDovecotIdle: a message delivered while Watch idles on a real Dovecot
// is reported (Dovecot's IDLE notices new Maildir files by inotify or by
// its mailbox_idle_check_interval poll).
func TestDovecotIdle(t *testing.T) {
	testpeer.Short(t)
	t.Parallel() // its own Dovecot
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{Compress: true})
	o := WatchOptions{Options: Options{Addr: d.IMAPAddr(), TLS: netconn.TLSNone, User: "user",
		Password: pass("password"), Timeout: 20 * time.Second, Logger: testLogger(t)}}
	d.AddMessage("user", "INBOX", []byte(testMessage(1, 500))) // the folder exists
	d.Count("user", "INBOX")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	notified := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, o, func() {
			select {
			case notified <- struct{}{}:
			default:
			}
		})
	}()
	// Deliver one message a second until Watch reports one (the first may
	// arrive before it is idling); a generous bound, not a timing test.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for i := 2; ; i++ {
		select {
		case <-notified:
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			return
		case err := <-done:
			t.Fatalf("Watch returned: %v", err)
		case <-tick.C:
			d.AddMessage("user", "INBOX", []byte(testMessage(uint64(i), 500)))
		case <-deadline:
			t.Fatalf("no notification within 30s of new mail\n%s", d.Log())
		}
	}
}

// TestDovecotPluginPreauth runs Dovecot's imap binary pre-authenticated
// on a pipe (fetchmail's plugin; an ssh tunnel in real life): PREAUTH
// greeting, no login, mail fetched and expunged. (doveadm exec does not
// apply "protocol imap" settings, so imap_zlib is not loaded here.)
func TestDovecotPluginPreauth(t *testing.T) {
	testpeer.Short(t)
	t.Parallel() // its own Dovecot
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{Compress: true})
	want := fill(d, 3, 2000)
	argv := d.ExecArgv("user", "imap")
	o := Options{Addr: "tunnel", TLS: netconn.TLSNone, User: "user", Auth: "external", Timeout: 20 * time.Second,
		Logger: testLogger(t),
		Dial:   func(ctx context.Context) (net.Conn, error) { return netconn.Plugin(ctx, argv, "", "") }}
	pullAll(t, o, want)
	if n := d.Count("user", "INBOX"); n != 0 {
		t.Fatalf("%d messages left", n)
	}
}
