package deliver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// wire is what an SMTP server must receive between DATA and the final dot
// (after dot-unstuffing) for a message given with LF line endings: CRLF
// line endings, and a final CRLF added when the message lacks one (RFC 5321
// section 4.1.1.4 needs it before the terminating dot).
func wire(msg string) string {
	s := strings.ReplaceAll(msg, "\n", "\r\n")
	if !strings.HasSuffix(s, "\r\n") {
		s += "\r\n"
	}
	return s
}

func newSMTPTarget(t testing.TB, addr string, sessions int) Target {
	t.Helper()
	tg := NewSMTP(SMTPOptions{Addr: addr, Sessions: sessions, LocalName: "linkctl.test", Timeout: 5 * time.Second})
	t.Cleanup(func() { tg.Close() })
	return tg
}

func TestSMTPByteExact(t *testing.T) {
	sink := testpeer.StartSink(t, testpeer.SinkOptions{})
	tg := newSMTPTarget(t, sink.Addr(), 1)
	msgs := []string{
		"Subject: plain\n\nhello\n",
		"Subject: dots\n\n.\n..\n.leading\n. space\nend\n",
		"Subject: no final newline\n\nlast line",
		"Subject: 8bit \xe4\xf6\xfc\n\nK\xc3\xa4se \xff\x00\x80\n",
		"Subject: long\n\n" + strings.Repeat("x", 5000) + "\n",
		"Subject: blank lines\n\n\n\n\n",
		".starts with a dot\n",
	}
	for i, m := range msgs {
		if err := tg.Deliver(context.Background(), Envelope{From: "a@x.test", To: []string{"u@sink.test"}}, strings.NewReader(m)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	got := sink.Messages()
	if len(got) != len(msgs) {
		t.Fatalf("sink got %d messages, want %d", len(got), len(msgs))
	}
	for i, m := range msgs {
		if string(got[i].Data) != wire(m) {
			t.Errorf("message %d: sink got %q, want %q", i, got[i].Data, wire(m))
		}
	}
	if sink.Sessions() != 1 {
		t.Errorf("%d sessions for %d messages delivered one after another, want 1 kept open", sink.Sessions(), len(msgs))
	}
}

func TestSMTPEnvelope(t *testing.T) {
	sink := testpeer.StartSink(t, testpeer.SinkOptions{})
	tg := newSMTPTarget(t, sink.Addr(), 1)
	err := tg.Deliver(context.Background(), Envelope{From: "", To: []string{"a@sink.test", "b@sink.test", "a@sink.test"}}, strings.NewReader("x\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := sink.Messages()[0]
	if m.From != "" || strings.Join(m.To, ",") != "a@sink.test,b@sink.test" {
		t.Errorf("envelope from %q to %v, want <> to a,b once each", m.From, m.To)
	}
	err = tg.Deliver(context.Background(), Envelope{From: "x@y"}, strings.NewReader("x\n"))
	if err == nil || errkind.IsTemporary(err) || errkind.KindOf(err) != errkind.Delivery {
		t.Errorf("no recipients: err %v, want a permanent delivery error", err)
	}
}

// Bare names ("chavez", a multidrop local part) are qualified with Domain
// in both MAIL FROM and RCPT TO: the sink, like Exim, refuses a path
// without a domain (RFC 5321 section 4.1.2), and without Domain the
// delivery fails and the message stays where it was.
func TestSMTPQualifiesBareNames(t *testing.T) {
	sink := testpeer.StartSink(t, testpeer.SinkOptions{})
	bare := newSMTPTarget(t, sink.Addr(), 1)
	if err := bare.Deliver(context.Background(), Envelope{From: "root", To: []string{"chavez"}}, strings.NewReader("x\n")); err == nil {
		t.Fatal("bare names without Domain: delivered; the sink should refuse them, or this test proves nothing")
	}
	tg := NewSMTP(SMTPOptions{Addr: sink.Addr(), LocalName: "linkctl.test", Domain: "localhost", Timeout: 5 * time.Second})
	defer tg.Close()
	env := Envelope{From: "root", To: []string{"chavez", "chavez@localhost", "ann@example.org"}}
	if err := tg.Deliver(context.Background(), env, strings.NewReader("x\n")); err != nil {
		t.Fatal(err)
	}
	m := sink.Messages()
	if len(m) != 1 || m[0].From != "root@localhost" || strings.Join(m[0].To, ",") != "chavez@localhost,ann@example.org" {
		t.Fatalf("sink got %+v, want one message from root@localhost to chavez@localhost (once) and ann@example.org", m)
	}
}

// Every refusal, at every step: the message is not delivered, the error
// carries the reply and its verdict (4xx temporary, 5xx permanent), and
// the session survives (RSET) for the next message.
func TestSMTPRefusals(t *testing.T) {
	for _, stage := range []string{"MAIL", "RCPT", "DATA"} {
		for _, code := range []int{451, 452, 550, 554} {
			t.Run(fmt.Sprintf("%s-%d", stage, code), func(t *testing.T) {
				sink := testpeer.StartSink(t, testpeer.SinkOptions{Reply: func(n int, st string) *smtp.SMTPError {
					if n == 1 && st == stage {
						return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 7, 1}, Message: "refused by test"}
					}
					return nil
				}})
				tg := newSMTPTarget(t, sink.Addr(), 1)
				env := Envelope{From: "a@x.test", To: []string{"u@sink.test"}}
				err := tg.Deliver(context.Background(), env, strings.NewReader("Subject: 1\n\nbody\n"))
				if err == nil {
					t.Fatal("delivered although the server refused")
				}
				if errkind.KindOf(err) != errkind.Delivery || errkind.IsTemporary(err) != (code < 500) {
					t.Errorf("err %v: kind %v temporary %v, want delivery, temporary=%v", err, errkind.KindOf(err), errkind.IsTemporary(err), code < 500)
				}
				want := fmt.Sprintf("%d %d.7.1 refused by test", code, code/100)
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err %q does not quote the reply %q", err, want)
				}
				var se *smtp.SMTPError
				if !errors.As(err, &se) || se.Code != code {
					t.Errorf("err %v: no *smtp.SMTPError with code %d in the chain", err, code)
				}
				if len(sink.Messages()) != 0 {
					t.Fatal("sink recorded a refused message")
				}
				if err := tg.Deliver(context.Background(), env, strings.NewReader("Subject: 2\n\nbody\n")); err != nil {
					t.Fatalf("next message: %v", err)
				}
				if len(sink.Messages()) != 1 || sink.Sessions() != 1 {
					t.Errorf("after the refusal: %d messages over %d sessions, want 1 over 1", len(sink.Messages()), sink.Sessions())
				}
			})
		}
	}
}

func TestSMTPRcptRefusedAbortsAll(t *testing.T) {
	sink := testpeer.StartSink(t, testpeer.SinkOptions{RcptReply: func(n int, st, rcpt string) *smtp.SMTPError {
		if st == "RCPT" && rcpt == "bad@sink.test" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}})
	tg := newSMTPTarget(t, sink.Addr(), 1)
	err := tg.Deliver(context.Background(), Envelope{To: []string{"good@sink.test", "bad@sink.test"}}, strings.NewReader("x\n"))
	if err == nil || !strings.Contains(err.Error(), "bad@sink.test") {
		t.Fatalf("err %v, want one naming bad@sink.test", err)
	}
	if len(sink.Messages()) != 0 {
		t.Fatal("the message was delivered to the good recipient alone")
	}
}

func TestSMTPCloseDuringData(t *testing.T) {
	sink := testpeer.StartSink(t, testpeer.SinkOptions{CloseDuringData: func(n int) bool { return n == 1 }})
	tg := newSMTPTarget(t, sink.Addr(), 1)
	env := Envelope{To: []string{"u@sink.test"}}
	err := tg.Deliver(context.Background(), env, strings.NewReader("x\n"))
	if err == nil || !errkind.IsTemporary(err) || errkind.KindOf(err) != errkind.Delivery {
		t.Fatalf("err %v, want a temporary delivery error", err)
	}
	if len(sink.Messages()) != 0 {
		t.Fatal("sink recorded the message")
	}
	// The broken session is replaced.
	if err := tg.Deliver(context.Background(), env, strings.NewReader("y\n")); err != nil {
		t.Fatalf("next message: %v", err)
	}
	if sink.Sessions() != 2 {
		t.Errorf("%d sessions, want 2 (the dropped one replaced)", sink.Sessions())
	}
}

func TestSMTPSinkDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tg := newSMTPTarget(t, addr, 1)
	err = tg.Deliver(context.Background(), Envelope{To: []string{"u@x"}}, strings.NewReader("x\n"))
	if err == nil || !errkind.IsTemporary(err) || errkind.KindOf(err) != errkind.Delivery {
		t.Fatalf("err %v, want a temporary delivery error", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("err %q does not say where", err)
	}
}

// A sink that stops answering after the final dot: the inactivity deadline
// ends the wait with a temporary error, and the message is not counted.
func TestSMTPHungSink(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	sink := testpeer.StartSink(t, testpeer.SinkOptions{Delay: func(n int, st string) time.Duration {
		if st == "DATA" {
			<-release
		}
		return 0
	}})
	tg := NewSMTP(SMTPOptions{Addr: sink.Addr(), Timeout: 200 * time.Millisecond})
	defer tg.Close()
	err := tg.Deliver(context.Background(), Envelope{To: []string{"u@x"}}, strings.NewReader("x\n"))
	if err == nil || !errkind.IsTemporary(err) {
		t.Fatalf("err %v, want a temporary error from the inactivity deadline", err)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("err %v is not a deadline", err)
	}
}

func TestSMTPContextCancel(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	sink := testpeer.StartSink(t, testpeer.SinkOptions{Delay: func(n int, st string) time.Duration {
		if st == "RCPT" {
			<-release
		}
		return 0
	}})
	tg := newSMTPTarget(t, sink.Addr(), 1)
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		for sink.Transactions() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel(errors.New("link went down"))
	}()
	err := tg.Deliver(ctx, Envelope{To: []string{"u@x"}}, strings.NewReader("x\n"))
	if err == nil || !strings.Contains(err.Error(), "link went down") || !errkind.IsTemporary(err) {
		t.Fatalf("err %v, want a temporary error naming the cause", err)
	}
}

// failingReader yields some of a message, then fails as a broken POP3
// connection would.
type failingReader struct {
	data string
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.data == "" {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestSMTPSourceBreaksMidMessage(t *testing.T) {
	sink := testpeer.StartSink(t, testpeer.SinkOptions{})
	tg := newSMTPTarget(t, sink.Addr(), 1)
	srcErr := errkind.WrapTemporary(errkind.Network, "pop3 RETR 1", io.ErrUnexpectedEOF)
	err := tg.Deliver(context.Background(), Envelope{To: []string{"u@x"}},
		&failingReader{data: "Subject: half\n\nfirst part\n", err: srcErr})
	var se *SourceError
	if !errors.As(err, &se) || errkind.KindOf(err) != errkind.Network || !errkind.IsTemporary(err) {
		t.Fatalf("err %v, want a *SourceError keeping the source's class (network, temporary)", err)
	}
	if len(sink.Messages()) != 0 {
		t.Fatalf("the truncated message reached the MTA: %q", sink.Messages()[0].Data)
	}
	if err := tg.Deliver(context.Background(), Envelope{To: []string{"u@x"}}, strings.NewReader("whole\n")); err != nil {
		t.Fatalf("next message: %v", err)
	}
}

// A pooled session that the server ended while it sat idle (421 at MAIL
// here) is replaced transparently: nothing of the message was sent yet.
func TestSMTPStaleSessionReplaced(t *testing.T) {
	sink := testpeer.StartSink(t, testpeer.SinkOptions{Reply: func(n int, st string) *smtp.SMTPError {
		if n == 2 && st == "MAIL" {
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "idle timeout"}
		}
		return nil
	}})
	tg := newSMTPTarget(t, sink.Addr(), 1)
	for i := range 2 {
		if err := tg.Deliver(context.Background(), Envelope{To: []string{"u@x"}}, strings.NewReader(fmt.Sprintf("m%d\n", i))); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if len(sink.Messages()) != 2 || sink.Sessions() != 2 {
		t.Errorf("%d messages over %d sessions, want 2 over 2", len(sink.Messages()), sink.Sessions())
	}
}

func TestSMTPConcurrent(t *testing.T) {
	sink := testpeer.StartSink(t, testpeer.SinkOptions{Delay: func(int, string) time.Duration { return time.Millisecond }})
	tg := newSMTPTarget(t, sink.Addr(), 4)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				body := fmt.Sprintf("Subject: %d-%d\n\n.%s\n", w, i, strings.Repeat("y", w*100+i))
				if err := tg.Deliver(context.Background(), Envelope{To: []string{"u@x"}}, strings.NewReader(body)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := sink.Messages()
	if len(got) != workers*each {
		t.Fatalf("sink got %d messages, want %d", len(got), workers*each)
	}
	seen := map[string]bool{}
	for _, m := range got {
		subj, _, _ := strings.Cut(string(m.Data), "\r\n")
		var w, i int
		fmt.Sscanf(subj, "Subject: %d-%d", &w, &i)
		want := wire(fmt.Sprintf("Subject: %d-%d\n\n.%s\n", w, i, strings.Repeat("y", w*100+i)))
		if string(m.Data) != want || seen[subj] {
			t.Fatalf("message %q mangled or duplicated", subj)
		}
		seen[subj] = true
	}
	if n := sink.Sessions(); n > 4 || n < 2 {
		t.Errorf("%d sessions, want 2..4 (4 allowed, and 8 workers should use more than one)", n)
	}
}

func TestSMTPStartTLSRequiredButMissing(t *testing.T) {
	sink := testpeer.StartSink(t, testpeer.SinkOptions{})
	tg := NewSMTP(SMTPOptions{Addr: sink.Addr(), StartTLS: true, Timeout: 5 * time.Second})
	defer tg.Close()
	err := tg.Deliver(context.Background(), Envelope{To: []string{"u@x"}}, strings.NewReader("x\n"))
	if err == nil || errkind.IsTemporary(err) || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("err %v, want a permanent STARTTLS error (no plaintext fallback)", err)
	}
	if len(sink.Messages()) != 0 {
		t.Fatal("delivered in plaintext")
	}
}

func TestSMTPCloseQuits(t *testing.T) {
	sink := testpeer.StartSink(t, testpeer.SinkOptions{})
	tg := NewSMTP(SMTPOptions{Addr: sink.Addr(), Sessions: 2})
	if err := tg.Deliver(context.Background(), Envelope{To: []string{"u@x"}}, strings.NewReader("x\n")); err != nil {
		t.Fatal(err)
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	err := tg.Deliver(context.Background(), Envelope{To: []string{"u@x"}}, strings.NewReader("x\n"))
	if err == nil {
		t.Fatal("delivered after Close")
	}
}

func TestLMTPPartial(t *testing.T) {
	for _, tc := range []struct {
		code int
		temp bool
	}{{452, true}, {550, false}} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			sink := testpeer.StartSink(t, testpeer.SinkOptions{LMTP: true, RcptReply: func(n int, st, rcpt string) *smtp.SMTPError {
				if n == 1 && st == "DATA" && rcpt == "full@x" {
					return &smtp.SMTPError{Code: tc.code, EnhancedCode: smtp.EnhancedCode{tc.code / 100, 2, 2}, Message: "mailbox full"}
				}
				return nil
			}})
			tg := NewLMTP(LMTPOptions{Addr: sink.Addr(), Timeout: 5 * time.Second})
			defer tg.Close()
			env := Envelope{To: []string{"ok@x", "full@x", "ok@x"}}
			err := tg.Deliver(context.Background(), env, strings.NewReader("x\n"))
			var pe *PartialError
			if !errors.As(err, &pe) {
				t.Fatalf("err %v, want a *PartialError", err)
			}
			if strings.Join(pe.Accepted, ",") != "ok@x" || len(pe.Failed) != 1 || pe.Failed["full@x"] == nil {
				t.Errorf("partial: accepted %v failed %v", pe.Accepted, pe.Failed)
			}
			if errkind.IsTemporary(err) != tc.temp || errkind.KindOf(err) != errkind.Delivery {
				t.Errorf("err %v: temporary %v, want %v", err, errkind.IsTemporary(err), tc.temp)
			}
			if !strings.Contains(err.Error(), "full@x") || !strings.Contains(err.Error(), "mailbox full") {
				t.Errorf("err %q does not say who failed and why", err)
			}
			// All accepted the second time, on the same session.
			if err := tg.Deliver(context.Background(), env, strings.NewReader("x\n")); err != nil {
				t.Fatalf("retry: %v", err)
			}
			msgs := sink.Messages()
			if len(msgs) != 2 || strings.Join(msgs[1].To, ",") != "ok@x,full@x" || sink.Sessions() != 1 {
				t.Errorf("sink: %+v over %d sessions", msgs, sink.Sessions())
			}
		})
	}
}

func TestLMTPByteExact(t *testing.T) {
	sink := testpeer.StartSink(t, testpeer.SinkOptions{LMTP: true})
	tg := NewLMTP(LMTPOptions{Addr: sink.Addr(), Timeout: 5 * time.Second})
	defer tg.Close()
	msg := "Subject: x\n\n.dot\n\xe4\nno newline"
	if err := tg.Deliver(context.Background(), Envelope{From: "f@x", To: []string{"a@x"}}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if got := sink.Messages()[0].Data; string(got) != wire(msg) {
		t.Errorf("got %q, want %q", got, wire(msg))
	}
}

// FuzzSMTPRoundTrip checks, for any message with LF line endings, that
// what the server stores is exactly the message with CRLF endings: the
// dot-stuffing and line ending conversion on the way never change a byte.
func FuzzSMTPRoundTrip(f *testing.F) {
	for _, s := range []string{"", "x", ".", ".\n", "..\n.", "a\n.\n\nb", "\x00\xff\n", "\n\n"} {
		f.Add([]byte(s))
	}
	sink := testpeer.StartSink(f, testpeer.SinkOptions{})
	tg := newSMTPTarget(f, sink.Addr(), 1)
	f.Fuzz(func(t *testing.T, msg []byte) {
		// The Target contract: LF line endings, no CR.
		msg = bytes.ReplaceAll(msg, []byte("\r"), nil)
		sink.Clear()
		if err := tg.Deliver(context.Background(), Envelope{To: []string{"u@x"}}, bytes.NewReader(msg)); err != nil {
			t.Fatal(err)
		}
		msgs := sink.Messages()
		if len(msgs) != 1 {
			t.Fatalf("sink recorded %d messages, want 1", len(msgs))
		}
		got := msgs[0].Data
		if string(got) != wire(string(msg)) {
			t.Fatalf("sent %q, stored %q, want %q", msg, got, wire(string(msg)))
		}
	})
}

func TestLMTPCloseDuringData(t *testing.T) {
	sink := testpeer.StartSink(t, testpeer.SinkOptions{LMTP: true, CloseDuringData: func(n int) bool { return n == 1 }})
	tg := NewLMTP(LMTPOptions{Addr: "unix:/nonexistent/socket", Timeout: time.Second})
	err := tg.Deliver(context.Background(), Envelope{To: []string{"a@x"}}, strings.NewReader("x\n"))
	if err == nil || !errkind.IsTemporary(err) || !strings.Contains(err.Error(), "/nonexistent/socket") {
		t.Errorf("missing socket: err %v, want a temporary error naming the socket", err)
	}
	tg = NewLMTP(LMTPOptions{Addr: sink.Addr(), Timeout: 5 * time.Second})
	defer tg.Close()
	env := Envelope{To: []string{"a@x", "b@x"}}
	err = tg.Deliver(context.Background(), env, strings.NewReader("x\n"))
	var pe *PartialError
	if err == nil || !errkind.IsTemporary(err) || errors.As(err, &pe) {
		t.Fatalf("err %v, want a temporary error that is not a partial delivery", err)
	}
	if err := tg.Deliver(context.Background(), env, strings.NewReader("y\n")); err != nil {
		t.Fatalf("next message: %v", err)
	}
	if msgs := sink.Messages(); len(msgs) != 1 || string(msgs[0].Data) != "y\r\n" {
		t.Errorf("sink: %+v", msgs)
	}
}

func TestSMTPUTF8Addresses(t *testing.T) {
	env := Envelope{From: "jürgen@example.org", To: []string{"u@sink.test"}}
	plain := testpeer.StartSink(t, testpeer.SinkOptions{})
	err := newSMTPTarget(t, plain.Addr(), 1).Deliver(context.Background(), env, strings.NewReader("x\n"))
	if err == nil || errkind.IsTemporary(err) || !strings.Contains(err.Error(), "SMTPUTF8") {
		t.Fatalf("err %v, want a permanent error asking for SMTPUTF8", err)
	}
	utf8 := testpeer.StartSink(t, testpeer.SinkOptions{SMTPUTF8: true})
	if err := newSMTPTarget(t, utf8.Addr(), 1).Deliver(context.Background(), env, strings.NewReader("x\n")); err != nil {
		t.Fatal(err)
	}
	if m := utf8.Messages(); len(m) != 1 || m[0].From != env.From {
		t.Errorf("sink: %+v", m)
	}
}
