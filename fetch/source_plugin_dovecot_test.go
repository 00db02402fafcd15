package fetch

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// Dovecot's own pop3 run as a plugin, pre-authenticated (`doveadm exec
// pop3 -u USER`, an ssh tunnel in real life): first a tunnel that dies
// after a few kilobytes, in the middle of a message (the wrapper passes
// on only the first bytes, says on stderr what ssh would, and kills the
// group), then the whole tunnel. The cut run delivers nothing truncated
// and deletes nothing, its error quotes the tunnel's stderr; the next run
// gets every message exactly once and empties the maildrop.
func TestDovecotPOP3PluginDiesMidMessage(t *testing.T) {
	testpeer.Short(t)
	t.Parallel() // its own Dovecot
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{})
	var want []string
	for i := range 3 {
		id := fmt.Sprintf("<plug%d@test>", i)
		want = append(want, id)
		d.AddMessage("user", "INBOX", []byte("Message-ID: "+id+"\nSubject: plugin\n\n"+strings.Repeat("line of text\n", 400)))
	}
	argv := d.ExecArgv("user", "pop3")
	cut := append([]string{"/bin/sh", "-c",
		`n=$1; shift; "$@" | { dd bs=1 count="$n" 2>/dev/null; echo 'Connection to pop.example.net closed by remote host.' >&2; kill 0; }`,
		"tunnel", "9000"}, argv...)
	tgt := &fakeTarget{}
	dir := t.TempDir()
	account := func(argv []string) Account {
		src := POP3Source{Addr: "pop.example.net:110", TLS: netconn.TLSNone, User: "user", PreAuth: true, Timeout: 20 * time.Second,
			Dial: func(ctx context.Context) (net.Conn, error) { return netconn.Plugin(ctx, argv, "pop.example.net", "") }}
		return Account{Name: "tunnel", Proto: "pop3", Server: "pop.example.net", Open: src.Open, Target: tgt, To: []string{"user"}}
	}
	_, err := Run(context.Background(), Options{Accounts: []Account{account(cut)}, StateDir: dir}, nil)
	if err == nil || !strings.Contains(err.Error(), "closed by remote host") || errkind.KindOf(err) != errkind.Network {
		t.Fatalf("cut tunnel: err %v; want a network error quoting the tunnel's stderr", err)
	}
	for _, g := range tgt.got {
		if !strings.HasSuffix(string(g.data), strings.Repeat("line of text\n", 400)) {
			t.Fatalf("a truncated message was delivered:\n%.200s", g.data)
		}
	}
	if len(tgt.got) != 1 {
		t.Fatalf("the cut run delivered %d messages, want the 1 before the cut", len(tgt.got))
	}
	if n := d.Count("user", "INBOX"); n != 3 {
		t.Fatalf("%d messages left after the cut, want all 3", n)
	}
	if _, err := Run(context.Background(), Options{Accounts: []Account{account(argv)}, StateDir: dir}, nil); err != nil {
		t.Fatal(err)
	}
	if !sameIDs(tgt.ids(), want) {
		t.Fatalf("delivered %v, want each of %v once", tgt.ids(), want)
	}
	if n := d.Count("user", "INBOX"); n != 0 {
		t.Fatalf("%d messages left", n)
	}
}
