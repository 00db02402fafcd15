package flush

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// eximInDelivery finds the messages another Exim process is delivering
// now. `exim -bp` does not mark them, and `exim -qff` skips them: a
// message whose spool file is locked is only logged ("Spool file for ID
// is locked (another process is handling this message)") and stays in
// the listing, which would read as deferred by this queue run. Exim's own
// test for "being delivered" is the fcntl write lock a delivery process
// holds on the message's -D spool file (exim spec, "Format of spool
// files"; deliver.c), so this asks the kernel the same question with
// F_GETLK, which reads nothing and takes no lock. The spool directory
// comes from `exim -bP spool_directory` (the same -C config as the other
// commands). Where the spool cannot be opened (linkctl not root and not
// in Exim's group) nothing is reported as in delivery: the old behaviour.
//
// Exiwhat was not used: it signals every Exim process and reads a file
// at a compiled-in path, and misses processes of another instance. The
// -J journal file is left behind by a crashed delivery, so it is no proof.
func eximInDelivery(base []string) func(context.Context, *Runner, []Message) map[string]bool {
	var mu sync.Mutex
	spool := ""
	return func(ctx context.Context, r *Runner, msgs []Message) map[string]bool {
		if len(msgs) == 0 {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if spool == "" {
			out, err := r.Run(ctx, append(slices.Clone(base), "-bP", "spool_directory"))
			if err != nil {
				return nil
			}
			spool = parseEximOption(out, "spool_directory")
			if spool == "" {
				return nil
			}
		}
		busy := map[string]bool{}
		for _, m := range msgs {
			if eximLocked(spool, m.ID) {
				busy[m.ID] = true
			}
		}
		return busy
	}
}

// parseEximOption reads "name = value" from `exim -bP name`.
func parseEximOption(out []byte, name string) string {
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// eximLocked reports whether a process holds a lock on message id's -D
// file, in spool/input or (split_spool_directory) spool/input/X.
func eximLocked(spool, id string) bool {
	if id == "" || strings.ContainsAny(id, "/.") {
		return false // not an Exim message id: never build a path from it
	}
	paths := []string{filepath.Join(spool, "input", id+"-D")}
	if len(id) > 5 {
		paths = append(paths, filepath.Join(spool, "input", id[5:6], id+"-D"))
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		// A write lock conflicts with any lock another process holds.
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
		err = unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk)
		f.Close()
		return err == nil && lk.Type != unix.F_UNLCK
	}
	return false
}
