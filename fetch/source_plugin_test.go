package fetch

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
)

// halfPOP3 is a plugin (a tunnel command such as `ssh %h pop3d`) that
// plays a POP3 server, sends message 1 whole, then half of message 2 and
// dies the way ssh does when the far end goes away: a word on stderr and
// exit 255. It logs the commands it got to $1.
const halfPOP3 = `log=$1
printf '+OK ready\r\n'
while IFS= read -r l; do
  printf '%s\n' "$l" >>"$log"
  case "$l" in
  CAPA*) printf '+OK\r\nUIDL\r\nUSER\r\n.\r\n';;
  USER*) printf '+OK\r\n';;
  PASS*) printf '+OK logged in\r\n';;
  STAT*) printf '+OK 2 100\r\n';;
  UIDL*) printf '+OK\r\n1 u1\r\n2 u2\r\n.\r\n';;
  LIST*) printf '+OK\r\n1 50\r\n2 50\r\n.\r\n';;
  "RETR 1"*) printf '+OK 50\r\nMessage-ID: <p1@test>\r\n\r\nwhole\r\n.\r\n';;
  RETR*) printf '+OK 50\r\nMessage-ID: <p2@test>\r\n\r\nthe first half of'
         echo 'Connection to pop.example.net closed by remote host.' >&2
         exit 255;;
  *) printf -- '-ERR unexpected\r\n';;
  esac
done
`

// The hidden danger of a tunnel: the plugin dies in the middle of a
// message. The cut message is never delivered (not even in part), nothing
// is deleted (no DELE, no QUIT went out), the error quotes what the plugin
// said on stderr, and the message delivered before the cut is recorded so
// the next run does not fetch it twice.
func TestPluginDiesMidMessage(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "half-pop3.sh")
	os.WriteFile(script, []byte(halfPOP3), 0o700)
	cmdLog := filepath.Join(dir, "commands")
	argv := []string{"/bin/sh", script, cmdLog}
	src := POP3Source{Addr: "pop.example.net:110", TLS: netconn.TLSNone, User: "alice", Password: pw("pw"), Auth: "password",
		Timeout: 5 * time.Second,
		Dial: func(ctx context.Context) (net.Conn, error) {
			return netconn.Plugin(ctx, argv, "pop.example.net", "110")
		}}
	tgt := &fakeTarget{}
	acct := Account{Name: "tunnel", Proto: "pop3", Server: "pop.example.net", Open: src.Open, Target: tgt, To: []string{"chavez"}}
	res, err := Run(context.Background(), Options{Accounts: []Account{acct}, StateDir: dir, Workers: 1}, nil)
	if err == nil || !strings.Contains(err.Error(), "closed by remote host") {
		t.Fatalf("err %v; want the plugin's stderr quoted", err)
	}
	if errkind.KindOf(err) != errkind.Network || !errkind.IsTemporary(err) {
		t.Errorf("err %v: kind %v, temporary %v; want a temporary network error", err, errkind.KindOf(err), errkind.IsTemporary(err))
	}
	t.Log(err)
	if ids := tgt.ids(); len(ids) != 1 || ids[0] != "<p1@test>" {
		t.Fatalf("delivered %v; want only the whole message", ids)
	}
	if a := res.Accounts[0]; a.Fetched != 1 || a.Deleted != 0 {
		t.Errorf("result %+v", a)
	}
	cmds, _ := os.ReadFile(cmdLog)
	if strings.Contains(string(cmds), "DELE") || strings.Contains(string(cmds), "QUIT") {
		t.Errorf("the plugin got a deletion:\n%s", cmds)
	}
	// The next run (the tunnel is back: here it dies again at message 2)
	// does not deliver message 1 a second time.
	Run(context.Background(), Options{Accounts: []Account{acct}, StateDir: dir, Workers: 1}, nil)
	if ids := tgt.ids(); len(ids) != 1 {
		t.Fatalf("after a second run delivered %v", ids)
	}
}
