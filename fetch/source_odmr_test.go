package fetch

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkctl/linkctl/fetch/odmr"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/internal/netconn"
)

// odmrRelay plays an ODMR relay on a pipe: greeting, EHLO, AUTH, ATRN
// answered with atrn; on 250 it turns around and, as the SMTP client,
// sends the raw session text after (reading our replies line by line as
// it goes, so that the pipe never blocks).
func odmrRelay(t *testing.T, atrn string, after func(w io.Writer, r *bufio.Reader)) func(context.Context) (net.Conn, error) {
	return func(context.Context) (net.Conn, error) {
		ours, theirs := net.Pipe()
		t.Cleanup(func() { theirs.Close() })
		go func() {
			defer theirs.Close()
			theirs.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(theirs)
			say := func(s string) { io.WriteString(theirs, s+"\r\n") }
			say("220 relay.example.net ESMTP ODMR")
			r.ReadString('\n') // EHLO
			say("250-relay.example.net\r\n250-AUTH PLAIN\r\n250 ATRN")
			r.ReadString('\n') // AUTH PLAIN ...
			say("235 ok")
			if l, _ := r.ReadString('\n'); l != "ATRN example.org\r\n" {
				t.Errorf("relay got %q, want ATRN example.org", l)
			}
			say(atrn)
			if !strings.HasPrefix(atrn, "250") {
				r.ReadString('\n')
				say("221 bye")
				return
			}
			r.ReadString('\n') // our 220 greeting
			after(theirs, r)
		}()
		return ours, nil
	}
}

// readReply reads one (possibly multi-line) SMTP reply and returns its
// last line.
func readReply(r *bufio.Reader) string {
	for {
		l, err := r.ReadString('\n')
		if err != nil || len(l) < 4 || l[3] != '-' {
			return l
		}
	}
}

func sendMsg(w io.Writer, r *bufio.Reader, body string) string {
	for _, c := range []string{"MAIL FROM:<s@example.net>", "RCPT TO:<chavez@example.org>", "DATA"} {
		io.WriteString(w, c+"\r\n")
		readReply(r)
	}
	io.WriteString(w, body+".\r\n")
	return readReply(r)
}

func odmrAccount(tgt *fakeTarget, dial func(context.Context) (net.Conn, error)) Account {
	return Account{Name: "relay", Proto: "odmr", Server: "relay.example.net:366", Target: tgt,
		Push: ODMRPush(odmr.Options{Addr: "relay.example.net:366", TLS: netconn.TLSNone, Helo: "gw.example.org",
			User: "home", Password: pw("s3cret"), Domains: []string{"example.org"}, Target: tgt,
			Timeout: 5 * time.Second, Dial: dial})}
}

// An ODMR account runs in the same fan-out as a POP3 one: both deliver,
// the figures add up, the ODMR messages emit message events under the
// account's name.
func TestODMRAccountInFetchRun(t *testing.T) {
	e := newRunEnv(t, 2)
	relayTgt := &fakeTarget{}
	var replies []string
	dial := odmrRelay(t, "250 OK now reversing the connection", func(w io.Writer, r *bufio.Reader) {
		io.WriteString(w, "EHLO relay.example.net\r\n")
		readReply(r)
		replies = append(replies, sendMsg(w, r, "Message-ID: <o1@test>\r\n\r\none\r\n"))
		replies = append(replies, sendMsg(w, r, "Message-ID: <o2@test>\r\n\r\ntwo\r\n"))
		io.WriteString(w, "QUIT\r\n")
		readReply(r)
	})
	opts := Options{Accounts: []Account{e.acct, odmrAccount(relayTgt, dial)}, StateDir: e.dir}
	var mu sync.Mutex
	var evs []event.Event
	res, err := Run(context.Background(), opts, func(ev event.Event) { mu.Lock(); evs = append(evs, ev); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	if a := res.Accounts[1]; a.Fetched != 2 || a.Bytes == 0 || a.Err != nil || res.Fetched() != 4 {
		t.Fatalf("odmr %+v, fetched in all %d", a, res.Fetched())
	}
	if ids := relayTgt.ids(); len(ids) != 2 || ids[0] != "<o1@test>" {
		t.Fatalf("relay target got %v", ids)
	}
	for _, r := range replies {
		if !strings.HasPrefix(r, "250") {
			t.Errorf("relay got %q after DATA", r)
		}
	}
	n := 0
	for _, ev := range evs {
		if ev.Type == event.Message && ev.Account == "relay" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d message events for the relay account, want 2", n)
	}
	if !strings.Contains(res.Summary(), "relay: 2 messages") {
		t.Errorf("summary:\n%s", res.Summary())
	}
}

// 453 "you have no mail" is no mail (exit 1), not an error.
func TestODMRAccountNoMail(t *testing.T) {
	tgt := &fakeTarget{}
	res, err := Run(context.Background(), Options{Accounts: []Account{odmrAccount(tgt, odmrRelay(t, "453 You have no mail", nil))}, StateDir: t.TempDir()}, nil)
	if err != nil || !res.NoMail() {
		t.Fatalf("err %v, result %+v; want no mail", err, res.Accounts[0])
	}
}

// The hidden danger: the relay drops the connection in the middle of the
// second message's DATA. The first is delivered (and was answered 250);
// the cut one reaches the local side never (the relay still holds it: it
// got no 250), and the run ends with an error saying so.
func TestODMRAccountRelayDropsMidData(t *testing.T) {
	tgt := &fakeTarget{}
	dial := odmrRelay(t, "250 OK now reversing the connection", func(w io.Writer, r *bufio.Reader) {
		io.WriteString(w, "EHLO relay.example.net\r\n")
		readReply(r)
		sendMsg(w, r, "Message-ID: <whole@test>\r\n\r\nwhole\r\n")
		for _, c := range []string{"MAIL FROM:<s@example.net>", "RCPT TO:<chavez@example.org>", "DATA"} {
			io.WriteString(w, c+"\r\n")
			readReply(r)
		}
		io.WriteString(w, "Message-ID: <cut@test>\r\n\r\nthe first half of")
		// and the link is gone
	})
	res, err := Run(context.Background(), Options{Accounts: []Account{odmrAccount(tgt, dial)}, StateDir: t.TempDir()}, nil)
	if ids := tgt.ids(); len(ids) != 1 || ids[0] != "<whole@test>" {
		t.Fatalf("delivered %v, want only the whole message", ids)
	}
	if err == nil || res.Accounts[0].Fetched != 1 || res.Accounts[0].Failed != 1 || !strings.Contains(err.Error(), "not delivered") {
		t.Fatalf("err %v, result %+v; want 1 fetched, 1 failed and an error", err, res.Accounts[0])
	}
	if errkind.ExitCode(err) == 0 {
		t.Errorf("exit code 0 for %v", err)
	}
}
