package testpeer

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// CourierOptions shape a private Courier IMAP/POP3 server.
type CourierOptions struct {
	Users map[string]string // user -> password
}

// Courier is a private Courier IMAP 5 and POP3 run from the unpacked
// Debian packages: couriertcpd with imaplogin/imapd and
// courierpop3login/courierpop3d on loopback ports, and authdaemond with
// the userdb module. Courier reads compiled-in paths (/etc/courier,
// /usr/lib/courier-authlib, /run/courier), so everything runs in a
// private mount namespace where an overlay puts the test's own
// /etc/courier (authdaemonrc, userdb.dat, userdbshadow.dat) and a link
// to the unpacked auth modules on top of /etc and /usr/lib, and /run is
// the test's own directory. Mail is plain Maildir under Dir, owned by
// the users' uid (nobody).
type Courier struct {
	Version string
	Dir     string
	imap    string
	pop3    string
	t       testing.TB
	sh      *exec.Cmd
	seq     atomic.Int64
}

// courierUID is the uid and gid the test users' mail belongs to (nobody).
const courierUID = 65534

// StartCourier starts Courier; it is stopped when the test ends.
func StartCourier(t testing.TB, opts CourierOptions) *Courier {
	t.Helper()
	root, version := DebRoot(t, "courier")
	if root == "" {
		return nil
	}
	NeedBinary(t, "unshare", "util-linux")
	openssl := NeedBinary(t, "openssl", "openssl")
	c := &Courier{Version: version, t: t}
	c.Dir = peerDir(t)
	for _, d := range []string{"etc/courier", "etcwork", "lib", "libwork", "run/courier/authdaemon", "mail"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(root, "usr/lib/courier-authlib"), filepath.Join(c.Dir, "lib/courier-authlib")); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "LD_LIBRARY_PATH="+strings.Join([]string{
		filepath.Join(root, "usr/lib"), filepath.Join(root, "usr/lib/x86_64-linux-gnu"), filepath.Join(root, "lib/x86_64-linux-gnu")}, ":"))
	var users, shadow strings.Builder
	for u, pw := range opts.Users {
		home := filepath.Join(c.Dir, "mail", u)
		for _, d := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(home, "Maildir", d), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		filepath.Walk(home, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, courierUID, courierUID) })
		hash := strings.TrimSpace(runOut(t, exec.Command(openssl, "passwd", "-6", pw)))
		fmt.Fprintf(&users, "%s\tuid=%d|gid=%d|home=%s|mail=%s|_=\n", u, courierUID, courierUID, home, filepath.Join(home, "Maildir"))
		fmt.Fprintf(&shadow, "%s\tsystempw=%s\n", u, hash)
	}
	makedat := filepath.Join(root, "usr/lib/courier/courier-authlib/makedatprog")
	for _, db := range []struct{ name, content string }{{"userdb.dat", users.String()}, {"userdbshadow.dat", shadow.String()}} {
		cmd := exec.Command(makedat, "-", filepath.Join(c.Dir, db.name+".tmp"), filepath.Join(c.Dir, "etc/courier", db.name))
		cmd.Env = env
		cmd.Stdin = strings.NewReader(db.content + ".\n")
		runOut(t, cmd)
	}
	writeFile(t, filepath.Join(c.Dir, "etc/courier/authdaemonrc"),
		"authmodulelist=\"authuserdb\"\ndaemons=2\nauthdaemonvar=/run/courier/authdaemon\nDEBUG_LOGIN=0\nDEFAULTOPTIONS=\"\"\nLOGGEROPTS=\"\"\n", 0o644)
	c.imap, c.pop3 = ReservePort(t), ReservePort(t)
	_, imapPort, _ := strings.Cut(c.imap, ":")
	_, pop3Port, _ := strings.Cut(c.pop3, ":")
	script := `set -e
D=$1; R=$2
mount -t overlay overlay -o lowerdir=/etc,upperdir=$D/etc,workdir=$D/etcwork /etc
mount -t overlay overlay -o lowerdir=/usr/lib,upperdir=$D/lib,workdir=$D/libwork /usr/lib
mount --bind $D/run /run
$R/usr/lib/courier/courier-authlib/authdaemond >$D/authdaemond.log 2>&1 &
set -a; . $R/etc/courier/imapd; set +a
$R/usr/sbin/couriertcpd -pid=$D/imapd.pid -address=127.0.0.1 -nodnslookup -noidentlookup -maxprocs=20 $3 \
	$R/usr/lib/courier/courier/imaplogin $R/usr/bin/imapd Maildir
set -a; . $R/etc/courier/pop3d; set +a
$R/usr/sbin/couriertcpd -pid=$D/pop3d.pid -address=127.0.0.1 -nodnslookup -noidentlookup -maxprocs=20 $4 \
	$R/usr/lib/courier/courier/courierpop3login $R/usr/lib/courier/courier/courierpop3d Maildir
wait
`
	writeFile(t, filepath.Join(c.Dir, "run.sh"), script, 0o755)
	c.sh = privateMounts("sh", filepath.Join(c.Dir, "run.sh"), c.Dir, root, imapPort, pop3Port)
	c.sh.Env = env
	startDaemon(t, c.sh, filepath.Join(c.Dir, "courier.log"), "courier")
	// Cleanups run last first: the daemons before the shell's group.
	t.Cleanup(c.stopTCPD)
	waitPort(t, c.imap, "courier imapd "+version, c.Log)
	waitPort(t, c.pop3, "courier pop3d "+version, c.Log)
	return c
}

// IMAPAddr and POP3Addr are the servers' host:port (no TLS).
func (c *Courier) IMAPAddr() string { return c.imap }

// POP3Addr: see IMAPAddr.
func (c *Courier) POP3Addr() string { return c.pop3 }

// Maildir is user's Maildir.
func (c *Courier) Maildir(user string) string { return filepath.Join(c.Dir, "mail", user, "Maildir") }

// AddMessage delivers raw into user's INBOX (Maildir new/).
func (c *Courier) AddMessage(user string, raw []byte) {
	c.t.Helper()
	name := fmt.Sprintf("%d.M%dP%d.courier.test,S=%d", time.Now().Unix(), c.seq.Add(1), os.Getpid(), len(raw))
	tmp := filepath.Join(c.Maildir(user), "tmp", name)
	writeFile(c.t, tmp, string(raw), 0o600)
	if err := os.Chown(tmp, courierUID, courierUID); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.Maildir(user), "new", name)); err != nil {
		c.t.Fatal(err)
	}
}

// Count is the number of messages in user's INBOX.
func (c *Courier) Count(user string) int {
	n := 0
	for _, d := range []string{"new", "cur"} {
		es, _ := os.ReadDir(filepath.Join(c.Maildir(user), d))
		n += len(es)
	}
	return n
}

// Log is what the servers and authdaemond printed.
func (c *Courier) Log() string {
	a, _ := os.ReadFile(filepath.Join(c.Dir, "courier.log"))
	b, _ := os.ReadFile(filepath.Join(c.Dir, "authdaemond.log"))
	return string(a) + string(b)
}

// stopTCPD ends both couriertcpd daemons: they run in their own sessions,
// out of the shell's process group (their pid files say where).
func (c *Courier) stopTCPD() {
	for _, f := range []string{"imapd.pid", "pop3d.pid"} {
		b, err := os.ReadFile(filepath.Join(c.Dir, f))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGTERM)
		}
	}
}
