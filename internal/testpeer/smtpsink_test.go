package testpeer

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func dialSink(t *testing.T, s *Sink, lmtp bool) *smtp.Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var c *smtp.Client
	if lmtp {
		c = smtp.NewClientLMTP(conn)
	} else {
		c = smtp.NewClient(conn)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(c *smtp.Client, from string, to []string, body string) error {
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	return w.Close()
}

func TestSinkRecordsExactBytes(t *testing.T) {
	s := StartSink(t, SinkOptions{})
	c := dialSink(t, s, false)
	body := "Subject: x\n\n.leading dot\n..two\nend"
	if err := send(c, "", []string{"a@x.test", "b@x.test"}, body); err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	want := "Subject: x\r\n\r\n.leading dot\r\n..two\r\nend\r\n"
	if string(m.Data) != want || m.From != "" || strings.Join(m.To, ",") != "a@x.test,b@x.test" {
		t.Errorf("got %+v data %q, want data %q", m, m.Data, want)
	}
	if m.MsgNo != 1 || m.Session != 1 || s.Sessions() != 1 || s.Transactions() != 1 {
		t.Errorf("numbering: %+v sessions %d", m, s.Sessions())
	}
}

func TestSinkReplyInjection(t *testing.T) {
	for _, stage := range []string{"MAIL", "RCPT", "DATA"} {
		t.Run(stage, func(t *testing.T) {
			s := StartSink(t, SinkOptions{Reply: func(n int, st string) *smtp.SMTPError {
				if n == 1 && st == stage {
					return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
				}
				return nil
			}})
			c := dialSink(t, s, false)
			err := send(c, "f@x.test", []string{"a@x.test"}, "hi\n")
			var se *smtp.SMTPError
			if !errors.As(err, &se) || se.Code != 451 {
				t.Fatalf("err = %v, want a 451", err)
			}
			if len(s.Messages()) != 0 {
				t.Fatal("a refused message was recorded")
			}
			if err := c.Reset(); err != nil {
				t.Fatal(err)
			}
			if err := send(c, "f@x.test", []string{"a@x.test"}, "hi\n"); err != nil {
				t.Fatalf("second message: %v", err)
			}
			if got := len(s.Messages()); got != 1 {
				t.Fatalf("got %d messages, want 1", got)
			}
		})
	}
}

func TestSinkCloseDuringData(t *testing.T) {
	s := StartSink(t, SinkOptions{CloseDuringData: func(n int) bool { return n == 1 }})
	c := dialSink(t, s, false)
	err := send(c, "f@x.test", []string{"a@x.test"}, "hi\n")
	if err == nil {
		t.Fatal("no error when the sink dropped the connection during DATA")
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		t.Fatalf("got a reply %v, want a dropped connection", se)
	}
	if len(s.Messages()) != 0 {
		t.Fatal("a dropped message was recorded")
	}
}

func TestSinkLMTPPerRecipient(t *testing.T) {
	s := StartSink(t, SinkOptions{LMTP: true, RcptReply: func(n int, st, rcpt string) *smtp.SMTPError {
		if st == "DATA" && rcpt == "full@x.test" {
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "over quota"}
		}
		return nil
	}})
	c := dialSink(t, s, true)
	err := send(c, "f@x.test", []string{"ok@x.test", "full@x.test"}, "hi\n")
	var le smtp.LMTPDataError
	if !errors.As(err, &le) || len(le) != 1 || le["full@x.test"] == nil || le["full@x.test"].Code != 452 {
		t.Fatalf("err = %v, want a 452 for full@x.test only", err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || strings.Join(msgs[0].To, ",") != "ok@x.test" {
		t.Fatalf("recorded %+v, want one message for ok@x.test", msgs)
	}
}

// TestSinkRecordsBeforeReplying: a client that has read its last reply
// finds the message in Messages() at once, over SMTP and LMTP, even when
// recording is slow. Under LMTP the sink used to record after the
// per-recipient replies had gone out, and TestLMTPPartial/452 in
// fetch/deliver now and then read it a moment too early.
func TestSinkRecordsBeforeReplying(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		t.Run(map[bool]string{false: "smtp", true: "lmtp"}[lmtp], func(t *testing.T) {
			s := StartSink(t, SinkOptions{LMTP: lmtp, slowRecord: 20 * time.Millisecond,
				RcptReply: func(_ int, stage, rcpt string) *smtp.SMTPError {
					if stage == "DATA" && rcpt == "full@x.test" {
						return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
					}
					return nil
				}})
			c := dialSink(t, s, lmtp)
			for i := 1; i <= 5; i++ {
				// Under LMTP the 452 for full@x.test comes back as an
				// error: expected.
				send(c, "f@x.test", []string{"ok@x.test", "full@x.test", "ok2@x.test"}, "Subject: x\r\n\r\nx\r\n")
				if n := len(s.Messages()); n != i {
					t.Fatalf("transaction %d: the client has every reply but the sink has %d messages", i, n)
				}
			}
		})
	}
}
