package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/linkctl/linkctl/internal/errkind"
)

// lockStateDir takes state_dir/daemon.lock (an flock: the kernel releases it
// when the daemon dies, however it dies), so that one daemon runs per
// state_dir, and writes our pid into it for the message the next one shows.
func lockStateDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, errkind.WrapPermanent(errkind.Permission, "create state_dir "+dir, err)
	}
	path := filepath.Join(dir, "daemon.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, errkind.WrapPermanent(errkind.Permission, "open "+path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(b))
			if pid == "" {
				pid = "?"
			}
			return nil, errkind.Permanent(errkind.Locked, "",
				"another linkctl daemon (pid %s) already runs for state_dir %s: stop it first (linkctl quit)", pid, dir)
		}
		return nil, errkind.WrapPermanent(errkind.Internal, "lock "+path, err)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return func() { f.Close() }, nil
}
