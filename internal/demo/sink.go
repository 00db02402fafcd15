package demo

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// sink is the demo's "local MTA": a go-smtp server that accepts every
// message and writes it into one Maildir (tmp/, fsync, rename into new/,
// as Maildir delivery is done). Both the relay's ETRN deliveries and the
// fetch stage's deliveries end up there.
type sink struct {
	srv     *smtp.Server
	ln      net.Listener
	maildir string
	seq     atomic.Int64
	mu      sync.Mutex
	files   []string
	// arrived receives one value per stored message (non-blocking).
	arrived chan struct{}
}

func startSink(maildir string) (*sink, error) {
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(maildir, d), 0o700); err != nil {
			return nil, fmt.Errorf("cannot create the demo Maildir: %w", err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cannot listen for the demo's local SMTP: %w", err)
	}
	s := &sink{ln: ln, maildir: maildir, arrived: make(chan struct{}, 64)}
	s.srv = smtp.NewServer(sinkBackend{s})
	s.srv.Domain = "localhost"
	s.srv.MaxLineLength = 10000
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	s.srv.MaxMessageBytes = 10 << 20
	go s.srv.Serve(ln)
	return s, nil
}

func (s *sink) addr() string { return s.ln.Addr().String() }

func (s *sink) close() error { return s.srv.Close() }

// store writes one message into the Maildir.
func (s *sink) store(from string, to []string, data []byte) error {
	host, _ := os.Hostname()
	name := fmt.Sprintf("%d.M%04dP%d.%s", time.Now().Unix(), s.seq.Add(1), os.Getpid(), host)
	tmp := filepath.Join(s.maildir, "tmp", name)
	var hdr bytes.Buffer
	fmt.Fprintf(&hdr, "Delivered-To: %s\n", first(to))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(hdr.Bytes(), bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))...)); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	dst := filepath.Join(s.maildir, "new", name)
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	s.mu.Lock()
	s.files = append(s.files, dst)
	s.mu.Unlock()
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	return nil
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.files)
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

type sinkBackend struct{ s *sink }

func (b sinkBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: b.s}, nil }

type sinkSession struct {
	s    *sink
	from string
	to   []string
}

func (x *sinkSession) Reset()        { x.from, x.to = "", nil }
func (x *sinkSession) Logout() error { return nil }
func (x *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}
func (x *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}
func (x *sinkSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := x.s.store(x.from, x.to, data); err != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot write the Maildir: " + err.Error()}
	}
	return nil
}
