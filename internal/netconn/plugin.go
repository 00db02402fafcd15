package netconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
)

// Plugin starts argv (fetchmail's `plugin`: `ssh %h /usr/sbin/imapd`,
// `doveadm exec imap -u USER`) and returns a net.Conn whose reads come from
// the command's stdout and whose writes go to its stdin: the protocol stream
// is the tunnel's business, so no TLS is layered on it. `%h` and `%p` are
// replaced by host and port, only as whole argv elements, so no value ever
// becomes a shell word. The command's stderr is kept (first 2 KiB) and
// quoted in the error when the stream ends unexpectedly.
//
// Close closes stdin, gives the command a moment to exit, then kills it.
func Plugin(ctx context.Context, argv []string, host, port string) (net.Conn, error) {
	if len(argv) == 0 {
		return nil, errkind.Permanent(errkind.Usage, "plugin", "empty plugin command")
	}
	args := make([]string, len(argv))
	for i, a := range argv {
		switch a {
		case "%h":
			a = host
		case "%p":
			a = port
		}
		args[i] = a
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "plugin", err)
	}
	// Our own pipe rather than StdoutPipe: Wait closes a StdoutPipe as
	// soon as the command exits, which would throw away what it wrote
	// last (and turn the end of the stream into "file already closed"
	// instead of an EOF that quotes the command's stderr). This read end
	// stays open until Close.
	stdout, childOut, err := os.Pipe()
	if err != nil {
		stdin.Close()
		return nil, errkind.WrapPermanent(errkind.Internal, "plugin", err)
	}
	cmd.Stdout = childOut
	c := &pluginConn{cmd: cmd, in: stdin, out: stdout, done: make(chan struct{}), name: args[0]}
	cmd.Stderr = &c.stderr
	err = cmd.Start()
	childOut.Close() // the child has its copy; EOF comes when it exits
	if err != nil {
		stdout.Close()
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return nil, errkind.Permanent(errkind.Usage, "plugin", "cannot run %s: not found (check the account's plugin command)", args[0])
		}
		return nil, errkind.WrapTemporary(errkind.Network, "plugin: cannot start "+args[0], err)
	}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

type pluginConn struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     io.ReadCloser
	stderr  limitedBuffer
	name    string
	done    chan struct{}
	waitErr error

	closeOnce sync.Once
	mu        sync.Mutex
	rdl, wdl  time.Time
}

func (c *pluginConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	dl := c.rdl
	c.mu.Unlock()
	n, err := c.withDeadline(dl, func() (int, error) { return c.out.Read(p) })
	if err == io.EOF {
		if msg := c.exitText(); msg != "" {
			return n, fmt.Errorf("%w (%s)", io.ErrUnexpectedEOF, msg)
		}
	}
	return n, err
}

func (c *pluginConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	dl := c.wdl
	c.mu.Unlock()
	return c.withDeadline(dl, func() (int, error) { return c.in.Write(p) })
}

// withDeadline runs a blocking pipe operation; pipes of a child have no
// deadlines of their own, so a deadline that passes kills the plugin (a
// stalled tunnel is as good as a cut link) and the call returns a timeout.
func (c *pluginConn) withDeadline(dl time.Time, op func() (int, error)) (int, error) {
	if dl.IsZero() {
		return op()
	}
	d := time.Until(dl)
	if d <= 0 {
		return 0, timeoutError{}
	}
	timedOut := make(chan struct{})
	t := time.AfterFunc(d, func() { close(timedOut); c.kill() })
	n, err := op()
	if !t.Stop() {
		<-timedOut
		return n, timeoutError{}
	}
	return n, err
}

func (c *pluginConn) exitText() string {
	select {
	case <-c.done:
	case <-time.After(time.Second):
		return ""
	}
	msg := ""
	if c.waitErr != nil {
		msg = c.name + ": " + c.waitErr.Error()
	}
	if s := strings.TrimSpace(c.stderr.String()); s != "" {
		if msg != "" {
			msg += ": "
		}
		msg += s
	}
	return msg
}

func (c *pluginConn) kill() {
	if c.cmd.Process != nil {
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	}
}

func (c *pluginConn) Close() error {
	c.closeOnce.Do(func() {
		c.in.Close()
		select {
		case <-c.done:
		case <-time.After(2 * time.Second):
			c.kill()
			<-c.done
		}
		c.out.Close()
	})
	return nil
}

func (c *pluginConn) LocalAddr() net.Addr  { return pluginAddr("plugin") }
func (c *pluginConn) RemoteAddr() net.Addr { return pluginAddr(c.name) }

func (c *pluginConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *pluginConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl = t
	c.mu.Unlock()
	return nil
}

func (c *pluginConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	return nil
}

// Pid is the plugin's process id (tests kill it to simulate a dying tunnel).
func (c *pluginConn) Pid() int { return c.cmd.Process.Pid }

type pluginAddr string

func (a pluginAddr) Network() string { return "plugin" }
func (a pluginAddr) String() string  { return string(a) }

type timeoutError struct{}

func (timeoutError) Error() string   { return "plugin: i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// limitedBuffer keeps the first 2 KiB written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 2048 - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// SplitPort splits "host:port" for Plugin's %h and %p; a bare host gets "".
func SplitPort(addr string) (host, port string) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, ""
	}
	if _, err := strconv.Atoi(p); err != nil {
		return addr, ""
	}
	return h, p
}
