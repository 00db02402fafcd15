package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
)

// Handler serves one request. send streams an event to the client; it
// never blocks (a full queue drops the event for this client). ctx ends
// when the server shuts down.
type Handler func(ctx context.Context, req Request, send func(event.Event)) Reply

// Server is a listening control socket.
type Server struct {
	ln   *net.UnixListener
	path string
	uid  int
	log  *slog.Logger
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[*net.UnixConn]struct{} // open connections, for the shutdown
}

// shutdownWait is how long Serve, once its ctx is done, lets the open
// connections finish their reply before it closes them: a client that
// sends nothing (its request read waits 10 s) or stops reading must not
// hold up the daemon's exit (issue 15: SIGTERM ends the daemon within
// 10 s).
const shutdownWait = time.Second

// Listen creates the control socket at path with mode 0600 (its directory is
// created 0755 if missing). A socket file left by a daemon that died is
// replaced; one a live daemon answers on is not (errkind.Locked).
func Listen(path string, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, errkind.WrapPermanent(errkind.Permission, "create the control socket's directory", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, errkind.Permanent(errkind.Usage, "control socket "+path, "exists and is not a socket: remove it or change control_socket")
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, errkind.Permanent(errkind.Locked, "control socket "+path, "another daemon is listening on it")
		}
		os.Remove(path) // stale: nobody answers
	}
	// The umask keeps the socket private from its creation on: a chmod
	// after bind leaves a moment where anyone may connect. (The process is
	// starting: no other goroutine creates files yet.)
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, errkind.WrapPermanent(errkind.Permission, "listen on the control socket "+path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, errkind.WrapPermanent(errkind.Permission, "chmod the control socket "+path, err)
	}
	return &Server{ln: ln, path: path, uid: os.Geteuid(), log: log}, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Serve accepts connections until ctx is done, then closes the listener
// (removing the socket file) and waits for the connections' handlers.
func (s *Server) Serve(ctx context.Context, h Handler) error {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	defer s.drain()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Warn("control socket: accept failed", "err", err)
			select {
			case <-time.After(100 * time.Millisecond): // EMFILE: do not spin
			case <-ctx.Done():
				return nil
			}
			continue
		}
		s.mu.Lock()
		if s.conns == nil {
			s.conns = map[*net.UnixConn]struct{}{}
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			s.serveConn(ctx, c, h)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		})
	}
}

// drain waits for the connections' handlers, for shutdownWait at most,
// then closes the connections still open so that their reads and writes
// fail, and waits for the handlers to notice.
func (s *Server) drain() {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(shutdownWait):
	}
	s.mu.Lock()
	n := len(s.conns)
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.log.Warn("control socket: closed connections still open at shutdown", "connections", n)
	<-done
}

// Close stops listening and removes the socket file.
func (s *Server) Close() error { return s.ln.Close() }

// peerUID returns the uid of the process at the other end (SO_PEERCRED:
// the credentials it had when it connected, which it cannot forge).
func peerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	return cred.Uid, nil
}

func (s *Server) serveConn(ctx context.Context, c *net.UnixConn, h Handler) {
	defer c.Close()
	w := &respWriter{c: c}
	uid, err := peerUID(c)
	if err != nil {
		s.log.Warn("control socket: cannot read the peer's credentials", "err", err)
		w.write(Response{Done: true, Exit: int(errkind.Internal), Error: "cannot check your credentials"})
		return
	}
	if uid != 0 && int(uid) != s.uid {
		s.log.Warn("control socket: refused a client", "uid", uid)
		w.final(refused(uid, s.uid))
		return
	}

	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(io.LimitReader(c, MaxRequest+1), MaxRequest+1)
	line, err := br.ReadSlice('\n')
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		msg := "no request line within 10s"
		if errors.Is(err, bufio.ErrBufferFull) || len(line) > MaxRequest {
			msg = "request too long"
		}
		w.final(Reply{Exit: int(errkind.Protocol), Error: msg})
		return
	}
	req, err := ParseRequest(line)
	if err != nil {
		w.final(Reply{Exit: errkind.ExitCode(err), Error: err.Error()})
		return
	}
	c.SetReadDeadline(time.Time{})
	s.log.Debug("control request", "op", req.Op, "iface", req.Iface, "wait", req.Wait, "uid", uid)

	// Events go through a bounded queue to one writer goroutine, so that
	// the pipeline's sink never waits for this client.
	q := make(chan event.Event, 256)
	var dropped int
	var mu sync.Mutex
	closed := false
	send := func(e event.Event) {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return
		}
		select {
		case q <- e:
		default:
			dropped++
		}
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		tick := time.NewTicker(Keepalive)
		defer tick.Stop()
		for {
			select {
			case e, ok := <-q:
				if !ok {
					return
				}
				w.write(Response{Event: &e})
			case <-tick.C:
				w.write(Response{Keepalive: true})
			}
		}
	}()
	rep := h(ctx, req, send)
	mu.Lock()
	closed = true
	close(q)
	mu.Unlock()
	<-writerDone
	if dropped > 0 {
		s.log.Debug("control socket: a slow client missed events", "dropped", dropped)
	}
	w.final(rep)
}

// respWriter writes response lines with a deadline; after the first failed
// write (the client went away) it writes nothing more.
type respWriter struct {
	c      net.Conn
	failed bool
}

func (w *respWriter) write(r Response) {
	if w.failed {
		return
	}
	b, err := json.Marshal(r)
	if err != nil {
		b, _ = json.Marshal(Response{Done: r.Done, Exit: int(errkind.Internal), Error: "cannot encode the reply: " + err.Error()})
	}
	w.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := w.c.Write(append(b, '\n')); err != nil {
		w.failed = true
	}
}

func (w *respWriter) final(rep Reply) {
	r := Response{Done: true, Exit: rep.Exit, Error: rep.Error, Text: rep.Text, Stopping: rep.Stopping}
	if rep.Status != nil {
		b, err := json.Marshal(rep.Status)
		if err != nil {
			r.Exit, r.Error = int(errkind.Internal), "cannot encode the status: "+err.Error()
		} else {
			r.Status = b
		}
	}
	w.write(r)
}
