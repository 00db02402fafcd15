package testpeer

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// SinkOptions shape an in-process SMTP/LMTP sink. The zero value accepts
// every message.
type SinkOptions struct {
	// LMTP makes the sink speak LMTP (RFC 2033): LHLO, and one reply per
	// accepted recipient after the final dot.
	LMTP bool

	// Reply, when set, is asked at each step of each transaction and may
	// return a 4xx/5xx to send instead of the success reply. msgNo counts
	// MAIL commands across all sessions, from 1; stage is "MAIL", "RCPT"
	// (once per recipient) or "DATA" (the reply after the final dot: the
	// 354 to the DATA command itself cannot be refused through go-smtp).
	// Under LMTP a "DATA" error applies to every recipient.
	Reply func(msgNo int, stage string) *smtp.SMTPError

	// RcptReply, when set, decides per recipient: at stage "RCPT" it may
	// refuse one address; under LMTP at stage "DATA" it gives that
	// recipient's own reply after the final dot (RFC 2033 section 4.2).
	// It is asked after Reply, which wins when both return an error.
	RcptReply func(msgNo int, stage, rcpt string) *smtp.SMTPError

	// CloseDuringData, when it returns true for msgNo, makes the sink read
	// the whole message and then drop the connection without a reply: the
	// worst moment for a client, all bytes sent and no verdict.
	CloseDuringData func(msgNo int) bool

	// Delay, when set, is slept before replying to stage ("MAIL", "RCPT",
	// "DATA") of msgNo: a slow MTA (fsync per message), or with a long
	// delay a hung one, for inactivity-timeout tests.
	Delay func(msgNo int, stage string) time.Duration

	// SMTPUTF8 makes the sink offer SMTPUTF8 (RFC 6531).
	SMTPUTF8 bool

	// TLS, when set, makes the sink offer STARTTLS with this config.
	TLS *tls.Config

	// MaxLineLength overrides go-smtp's default of 2000 octets; 0 means
	// 1 MiB, so that tests of long lines measure the client, not the sink.
	MaxLineLength int
	// slowRecord, in this package's tests, delays each recording: a sink
	// that replied before recording would be caught out by it.
	slowRecord time.Duration
}

// DelayData is a SinkOptions.Delay that holds every message's reply to
// DATA for d: a home MTA over a slow link, or one that fsyncs each
// message.
func DelayData(d time.Duration) func(msgNo int, stage string) time.Duration {
	return func(_ int, stage string) time.Duration {
		if stage == "DATA" {
			return d
		}
		return 0
	}
}

// SinkMessage is one accepted message as the sink received it.
type SinkMessage struct {
	MsgNo   int      // the transaction number (see SinkOptions.Reply)
	Session int      // the connection it came on, from 1
	From    string   // reverse path without brackets, "" for <>
	To      []string // recipients accepted (under LMTP: those that got 250 after DATA)
	Data    []byte   // exactly what arrived between DATA and the final dot, dot-unstuffed, CRLF kept
	TLS     bool     // the session had done STARTTLS
}

// Sink is an in-process SMTP (or LMTP) server on 127.0.0.1 that records
// every accepted message. It is stopped by the test's cleanup.
type Sink struct {
	opts     SinkOptions
	srv      *smtp.Server
	addr     string
	msgNo    atomic.Int64
	sessions atomic.Int64

	mu   sync.Mutex
	msgs []SinkMessage
}

// StartSink starts a sink on 127.0.0.1:0 and stops it when the test ends.
func StartSink(t testing.TB, opts SinkOptions) *Sink {
	t.Helper()
	s := &Sink{opts: opts}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "sink.test"
	srv.LMTP = opts.LMTP
	srv.TLSConfig = opts.TLS
	srv.EnableSMTPUTF8 = opts.SMTPUTF8
	srv.MaxLineLength = opts.MaxLineLength
	if srv.MaxLineLength == 0 {
		srv.MaxLineLength = 1 << 20
	}
	// A test that leaves a client hanging must not leave the sink's
	// goroutine blocked for ever.
	srv.ReadTimeout = 2 * time.Minute
	srv.WriteTimeout = 2 * time.Minute
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtp sink: listen on 127.0.0.1: %v", err)
	}
	s.srv = srv
	s.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return s
}

// Addr is the sink's host:port.
func (s *Sink) Addr() string { return s.addr }

// Messages returns the messages accepted so far, in the order their final
// reply was decided. A message is recorded before the client is told it
// was accepted, so a client that has its reply finds the message here.
func (s *Sink) Messages() []SinkMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SinkMessage(nil), s.msgs...)
}

// Clear forgets the messages recorded so far (long fuzz runs).
func (s *Sink) Clear() {
	s.mu.Lock()
	s.msgs = nil
	s.mu.Unlock()
}

// Sessions returns the number of connections accepted so far.
func (s *Sink) Sessions() int { return int(s.sessions.Load()) }

// Transactions returns the number of MAIL commands seen so far.
func (s *Sink) Transactions() int { return int(s.msgNo.Load()) }

// Close stops the sink now (a "sink down" mid-test); cleanup is then a no-op.
func (s *Sink) Close() error { return s.srv.Close() }

func (s *Sink) newSession(c *smtp.Conn) (smtp.Session, error) {
	n := s.sessions.Add(1)
	return &sinkSession{sink: s, conn: c, session: int(n)}, nil
}

type sinkSession struct {
	sink    *Sink
	conn    *smtp.Conn
	session int

	msgNo int
	from  string
	to    []string
}

var _ smtp.LMTPSession = (*sinkSession)(nil)

func (ss *sinkSession) decide(stage, rcpt string) error {
	o := &ss.sink.opts
	if o.Delay != nil {
		if d := o.Delay(ss.msgNo, stage); d > 0 {
			time.Sleep(d)
		}
	}
	if o.Reply != nil {
		if e := o.Reply(ss.msgNo, stage); e != nil {
			return e
		}
	}
	if o.RcptReply != nil && rcpt != "" {
		if e := o.RcptReply(ss.msgNo, stage, rcpt); e != nil {
			return e
		}
	}
	return nil
}

func (ss *sinkSession) Reset() {
	ss.from, ss.to, ss.msgNo = "", nil, 0
}

func (ss *sinkSession) Logout() error { return nil }

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.Reset()
	ss.msgNo = int(ss.sink.msgNo.Add(1))
	if err := ss.decide("MAIL", ""); err != nil {
		return err
	}
	ss.from = from
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.decide("RCPT", to); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

// readAll reads the message and, when the test asked for it, drops the
// connection instead of answering.
func (ss *sinkSession) readAll(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if f := ss.sink.opts.CloseDuringData; f != nil && f(ss.msgNo) {
		ss.conn.Conn().Close()
		return nil, &smtp.SMTPError{Code: 421, Message: "sink: dropped during DATA"}
	}
	return data, nil
}

func (ss *sinkSession) record(to []string, data []byte) {
	s := ss.sink
	if s.opts.slowRecord > 0 {
		time.Sleep(s.opts.slowRecord)
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, SinkMessage{
		MsgNo: ss.msgNo, Session: ss.session, From: ss.from,
		To: append([]string(nil), to...), Data: data,
	})
	s.msgs[len(s.msgs)-1].TLS = ss.isTLS()
	s.mu.Unlock()
}

func (ss *sinkSession) isTLS() bool {
	_, ok := ss.conn.TLSConnectionState()
	return ok
}

func (ss *sinkSession) Data(r io.Reader) error {
	data, err := ss.readAll(r)
	if err != nil {
		return err
	}
	if err := ss.decide("DATA", ""); err != nil {
		return err
	}
	ss.record(ss.to, data)
	return nil
}

func (ss *sinkSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	data, err := ss.readAll(r)
	if err != nil {
		return err
	}
	o := &ss.sink.opts
	if o.Delay != nil {
		if d := o.Delay(ss.msgNo, "DATA"); d > 0 {
			time.Sleep(d)
		}
	}
	if o.Reply != nil {
		if e := o.Reply(ss.msgNo, "DATA"); e != nil {
			return e
		}
	}
	// Decide every recipient and record the message before the first
	// reply goes out: go-smtp writes each status as soon as it is set, so
	// a client that has read its last reply may look at Messages() at
	// once, and must find the message there.
	var ok []string
	replies := make([]*smtp.SMTPError, len(ss.to))
	for i, rcpt := range ss.to {
		if o.RcptReply != nil {
			replies[i] = o.RcptReply(ss.msgNo, "DATA", rcpt)
		}
		if replies[i] == nil {
			ok = append(ok, rcpt)
		}
	}
	if len(ok) > 0 {
		ss.record(ok, data)
	}
	for i, rcpt := range ss.to {
		if replies[i] != nil {
			status.SetStatus(rcpt, replies[i])
		} else {
			status.SetStatus(rcpt, nil)
		}
	}
	return nil
}
