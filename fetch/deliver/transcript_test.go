package deliver

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/scripted"
)

// scriptedTarget returns an SMTP (or LMTP) target whose one session is the
// scripted server.
func scriptedTarget(t *testing.T, lmtp bool, script []string) (Target, *scripted.Server) {
	srv := scripted.Start(t, script)
	var tg Target
	if lmtp {
		tg = NewLMTP(LMTPOptions{Addr: "mta.test:24", LocalName: "linkctl.test", Timeout: 2 * time.Second})
	} else {
		tg = NewSMTP(SMTPOptions{Addr: "mta.test:25", LocalName: "linkctl.test", Timeout: 2 * time.Second})
	}
	used := false
	tg.(*pool).dialer = func(context.Context) (net.Conn, error) {
		if used {
			t.Error("a second connection was opened")
			return nil, net.ErrClosed
		}
		used = true
		return srv.Conn, nil
	}
	return tg, srv
}

// The golden transcript of an SMTP session: two messages on one session
// with no RSET after a success (RFC 5321 section 4.1.1.4), dot-stuffing,
// a refused recipient followed by RSET, and QUIT at Close.
func TestSMTPTranscript(t *testing.T) {
	tg, srv := scriptedTarget(t, false, []string{
		"S: 220 mta.test ESMTP",
		"C: EHLO linkctl.test",
		"S: 250-mta.test",
		"S: 250 8BITMIME",
		"C: MAIL FROM:<a@x.test> BODY=8BITMIME",
		"S: 250 2.1.0 ok",
		"C: RCPT TO:<u@x.test>",
		"S: 250 2.1.5 ok",
		"C: DATA",
		"S: 354 go ahead",
		"C: Subject: one",
		"C: ",
		"C: ..dot",
		"C: last line without newline",
		"C: .",
		"S: 250 2.0.0 queued as A1",
		"C: MAIL FROM:<> BODY=8BITMIME",
		"S: 250 2.1.0 ok",
		"C: RCPT TO:<nobody@x.test>",
		"S: 550 5.1.1 no such user",
		"C: RSET",
		"S: 250 2.0.0 ok",
		// go-smtp greets again after RSET before its next command.
		"C: EHLO linkctl.test",
		"S: 250 mta.test",
		"C: QUIT",
		"S: 221 2.0.0 bye",
	})
	err := tg.Deliver(context.Background(), Envelope{From: "a@x.test", To: []string{"u@x.test"}},
		strings.NewReader("Subject: one\n\n.dot\nlast line without newline"))
	if err != nil {
		t.Fatal(err)
	}
	err = tg.Deliver(context.Background(), Envelope{To: []string{"nobody@x.test"}}, strings.NewReader("x\n"))
	if err == nil || errkind.IsTemporary(err) || !strings.Contains(err.Error(), "550 5.1.1 no such user") {
		t.Fatalf("err %v, want the permanent 550", err)
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	srv.Wait(t)
}

// A greeting that refuses service (RFC 5321 section 3.1: 554) is
// permanent; one that asks to come back later (421) is temporary.
func TestSMTPGreetingRefused(t *testing.T) {
	for _, tc := range []struct {
		line string
		temp bool
	}{{"S: 554 5.3.2 no service here", false}, {"S: 421 4.3.2 busy, try later", true}} {
		tg, srv := scriptedTarget(t, false, []string{tc.line, "CLOSE"})
		err := tg.Deliver(context.Background(), Envelope{To: []string{"u@x"}}, strings.NewReader("x\n"))
		if err == nil || errkind.IsTemporary(err) != tc.temp || !strings.Contains(err.Error(), tc.line[3:]) {
			t.Errorf("%s: err %v, want temporary=%v quoting the reply", tc.line, err, tc.temp)
		}
		srv.Wait(t)
	}
}

// The golden transcript of an LMTP session (RFC 2033): LHLO, one reply per
// recipient after the final dot, duplicates sent once.
func TestLMTPTranscript(t *testing.T) {
	tg, srv := scriptedTarget(t, true, []string{
		"S: 220 mta.test LMTP",
		"C: LHLO linkctl.test",
		"S: 250-mta.test",
		"S: 250 PIPELINING",
		"C: MAIL FROM:<f@x.test>",
		"S: 250 ok",
		"C: RCPT TO:<a@x.test>",
		"S: 250 ok",
		"C: RCPT TO:<b@x.test>",
		"S: 250 ok",
		"C: DATA",
		"S: 354 go",
		"C: hello",
		"C: .",
		"S: 250 2.0.0 <a@x.test> saved",
		"S: 452 4.2.2 <b@x.test> over quota",
		"C: RSET",
		"S: 250 ok",
		"C: LHLO linkctl.test",
		"S: 250 mta.test",
		"C: QUIT",
		"S: 221 bye",
	})
	err := tg.Deliver(context.Background(), Envelope{From: "f@x.test", To: []string{"a@x.test", "b@x.test", "a@x.test"}}, strings.NewReader("hello\n"))
	if err == nil || !errkind.IsTemporary(err) || !strings.Contains(err.Error(), "b@x.test") || !strings.Contains(err.Error(), "accepted for a@x.test") {
		t.Fatalf("err %v, want a temporary partial failure naming both", err)
	}
	tg.Close()
	srv.Wait(t)
}

// The connection drops after the first of two per-recipient replies: the
// outcome for the second is unknown, so the failure is temporary even
// though the reply read was a 5xx.
func TestLMTPDropAmongReplies(t *testing.T) {
	tg, srv := scriptedTarget(t, true, []string{
		"S: 220 mta.test LMTP",
		"C: LHLO linkctl.test",
		"S: 250 mta.test",
		"C: MAIL FROM:<f@x.test>",
		"S: 250 ok",
		"C: RCPT TO:<a@x.test>",
		"S: 250 ok",
		"C: RCPT TO:<b@x.test>",
		"S: 250 ok",
		"C: DATA",
		"S: 354 go",
		"C: hello",
		"C: .",
		"S: 550 5.1.1 <a@x.test> gone",
		"CLOSE",
	})
	defer tg.Close()
	err := tg.Deliver(context.Background(), Envelope{From: "f@x.test", To: []string{"a@x.test", "b@x.test"}}, strings.NewReader("hello\n"))
	if err == nil || !errkind.IsTemporary(err) {
		t.Fatalf("err %v, want temporary", err)
	}
	srv.Wait(t)
}
