package testpeer

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// pop3Session logs in on c and returns the replies to STAT and RETR 1.
func pop3Session(t *testing.T, c net.Conn, user, pass string) (stat string, body string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tp := textproto.NewConn(c)
	line := func() string {
		l, err := tp.ReadLine()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return l
	}
	if g := line(); !strings.HasPrefix(g, "+OK") {
		t.Fatalf("greeting %q", g)
	}
	for _, cmd := range []string{"USER " + user, "PASS " + pass} {
		tp.PrintfLine("%s", cmd)
		if r := line(); !strings.HasPrefix(r, "+OK") {
			t.Fatalf("%s: %q", strings.Fields(cmd)[0], r)
		}
	}
	tp.PrintfLine("STAT")
	stat = line()
	tp.PrintfLine("RETR 1")
	if r := line(); strings.HasPrefix(r, "+OK") {
		lines, err := tp.ReadDotLines()
		if err != nil {
			t.Fatal(err)
		}
		body = strings.Join(lines, "\n")
	}
	tp.PrintfLine("QUIT")
	line()
	return stat, body
}

func TestDovecotPOP3AndCount(t *testing.T) {
	t.Parallel()
	d := StartDovecot(t, DovecotOptions{Users: map[string]string{"alice": "s3cret", "bob": "pw"}})
	for i := range 3 {
		d.AddMessage("alice", "INBOX", fmt.Appendf(nil, "From: a@example.org\nMessage-ID: <%d@test>\nSubject: m%d\n\nbody %d\n", i, i, i))
	}
	if n := d.Count("alice", "INBOX"); n != 3 {
		t.Fatalf("alice has %d messages, want 3", n)
	}
	if n := d.Count("bob", "INBOX"); n != 0 {
		t.Fatalf("bob has %d messages, want 0", n)
	}
	c, err := net.Dial("tcp", d.POP3Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stat, body := pop3Session(t, c, "alice", "s3cret")
	if !strings.HasPrefix(stat, "+OK 3 ") {
		t.Errorf("STAT = %q, want 3 messages", stat)
	}
	if !strings.Contains(body, "Message-ID: <0@test>") {
		t.Errorf("RETR 1 = %q, want the first message", body)
	}
	d.Clear("alice", "INBOX")
	if n := d.Count("alice", "INBOX"); n != 0 {
		t.Fatalf("after Clear alice has %d messages", n)
	}
}

func TestDovecotTLSAndLMTP(t *testing.T) {
	t.Parallel()
	d := StartDovecot(t, DovecotOptions{Users: map[string]string{"carol": "pw"}, TLS: true, Compress: true})
	// LMTP delivery lands in the Maildir.
	c, err := net.Dial("tcp", d.LMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tp := textproto.NewConn(c)
	expect := func(code int) {
		t.Helper()
		if _, _, err := tp.ReadResponse(code); err != nil {
			t.Fatalf("lmtp: %v", err)
		}
	}
	expect(220)
	for _, step := range []struct {
		cmd  string
		code int
	}{{"LHLO test", 250}, {"MAIL FROM:<a@example.org>", 250}, {"RCPT TO:<carol>", 250}, {"DATA", 354}} {
		tp.PrintfLine("%s", step.cmd)
		expect(step.code)
	}
	w := tp.DotWriter()
	fmt.Fprint(w, "Subject: via lmtp\n\nhi\n")
	w.Close()
	expect(250)
	c.Close()
	if n := d.Count("carol", "INBOX"); n != 1 {
		t.Fatalf("carol has %d messages after LMTP, want 1", n)
	}

	tc, err := tls.Dial("tcp", d.POP3SAddr(), d.TLSConfig("127.0.0.1"))
	if err != nil {
		t.Fatalf("POP3S with the test CA: %v", err)
	}
	defer tc.Close()
	stat, body := pop3Session(t, tc, "carol", "pw")
	if !strings.HasPrefix(stat, "+OK 1 ") || !strings.Contains(body, "via lmtp") {
		t.Errorf("STAT %q body %q", stat, body)
	}

	// IMAP advertises COMPRESS with the plugin (after login).
	ic, err := tls.Dial("tcp", d.IMAPSAddr(), d.TLSConfig("localhost"))
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	ic.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(ic)
	r.ReadString('\n')
	fmt.Fprint(ic, "a LOGIN carol pw\r\n")
	var caps string
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		caps += l
		if strings.HasPrefix(l, "a ") {
			break
		}
	}
	if !strings.Contains(caps, "COMPRESS=DEFLATE") {
		t.Errorf("no COMPRESS=DEFLATE after login: %q", caps)
	}
}
