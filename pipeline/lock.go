package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linkctl/linkctl/internal/errkind"
)

// lockFile takes an exclusive flock on path. The kernel drops it when the
// process dies, so a kill -9 never leaves a stale lock behind. The holder
// writes its pid into the file so the error can name it.
func lockFile(ctx context.Context, path string, wait bool) (unlock func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "cannot create the state directory", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "cannot open the run lock", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, errkind.WrapPermanent(errkind.Internal, "cannot lock "+path, err)
		}
		if !wait {
			holder := readPid(f)
			f.Close()
			return nil, errkind.Temporary(errkind.Locked, "",
				"another linkctl run%s holds %s (use --wait to wait for it)", holder, path)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, context.Cause(ctx)
		case <-time.After(200 * time.Millisecond):
		}
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		f.Truncate(0)
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

func readPid(f *os.File) string {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid := strings.TrimSpace(string(buf[:n]))
	if _, err := strconv.Atoi(pid); err != nil {
		return ""
	}
	return fmt.Sprintf(" (pid %s)", pid)
}
