package deliver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/linkctl/linkctl/internal/durable"
	"github.com/linkctl/linkctl/internal/errkind"
)

// MaildirOptions configure delivery into a Maildir.
type MaildirOptions struct {
	Path   string       // the Maildir (the directory holding cur/, new/, tmp/)
	Logger *slog.Logger // nil = discard
}

// NewMaildir returns a Target that writes each message into a Maildir,
// following the Maildir protocol (https://cr.yp.to/proto/maildir.html):
// create the file in tmp/ under a name unique to this host, process and
// moment, write it, fsync it, rename it into new/ (adding ",S=size", which
// Dovecot reads as the file's size), then fsync new/ so that the rename
// survives a crash. Only then is the message delivered. The rename is the
// commit point (WithCommitGate before it, WithCommitted after it);
// concurrent deliveries share the fsync of new/ (one covers every rename
// before it). A file left half
// written (disk full, source broken) is removed from tmp/. cur/, new/ and
// tmp/ are created (mode 0700) if missing. Running as root, files and
// directories are given to the owner of the Maildir directory.
//
// The envelope's recipients are not used: a Maildir is one mailbox. A
// full disk or an exceeded quota is a temporary failure.
func NewMaildir(opts MaildirOptions) Target {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	// The spec's escapes, so that a host name can never add a path
	// component or the ":2," info separator.
	host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)
	return &maildir{opts: opts, host: host, create: createTmp}
}

type maildir struct {
	opts MaildirOptions
	host string
	// create opens a new tmp/ file (tests inject a full disk here).
	create func(path string) (tmpFile, error)

	mu    sync.Mutex
	ready bool // cur/new/tmp exist
	pid   int
	// owner is the Maildir directory's owner when linkctl runs as root
	// and that owner is not root (chown), read once by prepare.
	owner *[2]int

	// dirMu makes the deliveries create their tmp/ files and rename them
	// into new/ one at a time in this process: the kernel does so anyway
	// (tmp/'s lock), but its waiters spin while the holder runs, and on
	// ext4 without a journal a create can run long (it skips the inodes
	// freed in the last minutes), so parallel deliveries burnt a core
	// doing nothing.
	dirMu sync.Mutex

	// Group commit of new/: renamed counts the renames into new/, synced
	// the first renamed count not yet known durable; one fsync of new/
	// covers every rename before it, so concurrent deliveries share it.
	syncMu  sync.Mutex
	renamed atomic.Uint64
	synced  uint64
}

// tmpFile is what Deliver needs of the file it writes in tmp/.
type tmpFile interface {
	io.Writer
	Chown(uid, gid int) error
	Sync() error
	Close() error
}

// createTmp creates a tmp/ file. It is a bare descriptor, not an
// *os.File: a regular file gains nothing from the runtime's poller, and
// registering each of thousands of files with it (an epoll_ctl refused,
// fcntl calls) was a third of the system calls of a delivery.
func createTmp(path string) (tmpFile, error) {
	fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return &rawFile{fd: fd, path: path}, nil
}

// rawFile is a file written through its descriptor (see createTmp).
type rawFile struct {
	fd   int
	path string
}

func (f *rawFile) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		w, err := syscall.Write(f.fd, p[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return n, &os.PathError{Op: "write", Path: f.path, Err: err}
		}
		n += w
	}
	return n, nil
}

func (f *rawFile) Chown(uid, gid int) error {
	if err := syscall.Fchown(f.fd, uid, gid); err != nil {
		return &os.PathError{Op: "chown", Path: f.path, Err: err}
	}
	return nil
}

func (f *rawFile) Sync() error {
	for {
		err := syscall.Fsync(f.fd)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "fsync", Path: f.path, Err: err}
		}
		return nil
	}
}

func (f *rawFile) Close() error {
	if err := syscall.Close(f.fd); err != nil {
		return &os.PathError{Op: "close", Path: f.path, Err: err}
	}
	return nil
}

// copyBufs are the buffers messages are copied through into tmp/ files
// (io.Copy would allocate 32 KiB per message).
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// maildirSeq makes names unique within the process, across targets.
var maildirSeq atomic.Uint64

func (m *maildir) Close() error { return nil }

func (m *maildir) op(what string) string { return "deliver to Maildir " + m.opts.Path + ": " + what }

func (m *maildir) fail(what string, err error) error {
	if isDiskFull(err) {
		// Temporary: space may be freed. The partial file is gone (see
		// Deliver) and the message stays on the server.
		return errkind.WrapTemporary(errkind.Delivery, m.op(what),
			fmt.Errorf("%w (the file system holding %s is full or over quota: free some space; the message stays on the server)", err, m.opts.Path))
	}
	return errkind.Wrap(errkind.Delivery, errors.Is(err, syscall.EIO) ||
		errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE), m.op(what), err)
}

func (m *maildir) prepare() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ready {
		return nil
	}
	var created []string
	for _, sub := range []string{"cur", "new", "tmp"} {
		dir := filepath.Join(m.opts.Path, sub)
		if _, err := os.Stat(dir); err == nil {
			continue
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return m.fail("creating "+sub+"/", err)
		}
		created = append(created, dir)
	}
	if err := m.readOwner(); err != nil {
		return m.fail("reading the owner of "+m.opts.Path, err)
	}
	for _, dir := range created {
		if m.owner != nil {
			os.Lchown(dir, m.owner[0], m.owner[1])
		}
	}
	m.pid = os.Getpid()
	m.ready = true
	return nil
}

// readOwner notes whom what root creates in a user's Maildir must be
// given to: a daemon running as root must not leave mail its user cannot
// read. Once per target: the owner of a Maildir does not change while
// mail is fetched into it.
func (m *maildir) readOwner() error {
	if m.owner != nil || os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(m.opts.Path)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
		m.owner = &[2]int{int(st.Uid), int(st.Gid)}
	}
	return nil
}

func (m *maildir) Deliver(ctx context.Context, _ Envelope, msg io.Reader) error {
	if err := m.prepare(); err != nil {
		return err
	}
	now := time.Now()
	// time.pid_seq.host: unique as long as the clock does not step back
	// while this process runs (the sequence covers one second's many).
	base := fmt.Sprintf("%d.%d_%d.%s", now.Unix(), m.pid, maildirSeq.Add(1), m.host)
	tmp := filepath.Join(m.opts.Path, "tmp", base)
	m.dirMu.Lock()
	f, err := m.create(tmp)
	m.dirMu.Unlock()
	if err != nil {
		return m.fail("creating tmp/"+base, err)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	src := &sourceReader{r: ctxReader{ctx, msg}}
	buf := copyBufs.Get().(*[]byte)
	size, err := io.CopyBuffer(f, src, *buf)
	copyBufs.Put(buf)
	if err != nil {
		if ctx.Err() != nil {
			return errkind.WrapTemporary(errkind.Delivery, m.op("writing tmp/"+base), context.Cause(ctx))
		}
		if src.err != nil {
			return sourceErr(m.op("writing tmp/"+base), src.err)
		}
		return m.fail("writing tmp/"+base, err)
	}
	if m.owner != nil {
		if err := f.Chown(m.owner[0], m.owner[1]); err != nil {
			return m.fail("giving tmp/"+base+" to the Maildir's owner", err)
		}
	}
	if err := f.Sync(); err != nil {
		return m.fail("fsync tmp/"+base, err)
	}
	if err := f.Close(); err != nil {
		return m.fail("closing tmp/"+base, err)
	}
	name := fmt.Sprintf("%s,S=%d", base, size)
	// The rename delivers: wait at the engine's commit gate first (see
	// WithCommitGate).
	if err := enterCommit(ctx); err != nil {
		return errkind.WrapTemporary(errkind.Delivery, m.op("waiting to move into new/"), err)
	}
	m.dirMu.Lock()
	err = os.Rename(tmp, filepath.Join(m.opts.Path, "new", name))
	m.dirMu.Unlock()
	if err != nil {
		return m.fail("moving into new/", err)
	}
	seq := m.renamed.Add(1)
	done = true
	// The commit point is passed: the caller may record the message now
	// (see WithCommitted) while new/ is synced.
	Committed(ctx)
	// The rename is durable only once the directory is synced.
	if err := m.syncNew(seq); err != nil {
		// The file is in new/ and may be read by the user's mail reader:
		// undoing would be worse than reporting. The error is temporary
		// and the retry may duplicate; nothing is lost.
		return m.fail("fsync new/ (the message may be delivered twice)", err)
	}
	return nil
}

// syncNew makes the seq-th rename into new/ durable: it fsyncs new/
// unless an fsync that began after that rename has succeeded meanwhile.
func (m *maildir) syncNew(seq uint64) error {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	if m.synced >= seq {
		return nil
	}
	upto := m.renamed.Load()
	if err := durable.SyncDir(filepath.Join(m.opts.Path, "new")); err != nil {
		return err
	}
	m.synced = upto
	return nil
}

// ctxReader stops a long copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, errkind.WrapTemporary(errkind.Delivery, "cancelled", context.Cause(c.ctx))
	}
	return c.r.Read(p)
}
