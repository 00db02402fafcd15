package demo

import (
	"context"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/linkctl/linkctl/config"
)

func start(t *testing.T, o Options) *Env {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	e, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func dial(t *testing.T, addr string) *textproto.Conn {
	t.Helper()
	c, err := textproto.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// cmd sends a command and returns the first reply line.
func cmd(t *testing.T, c *textproto.Conn, line string) string {
	t.Helper()
	if err := c.PrintfLine("%s", line); err != nil {
		t.Fatal(err)
	}
	r, err := c.ReadLine()
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return r
}

func TestPOP3Session(t *testing.T) {
	e := start(t, Options{Fast: true})
	c := dial(t, e.POP3Addr)
	if l, _ := c.ReadLine(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("greeting %q", l)
	}
	if r := cmd(t, c, "CAPA"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("CAPA: %q", r)
	}
	caps, _ := c.ReadDotLines()
	if !strings.Contains(strings.Join(caps, " "), "PIPELINING") || !strings.Contains(strings.Join(caps, " "), "UIDL") {
		t.Errorf("CAPA = %q", caps)
	}
	if r := cmd(t, c, "STAT"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("STAT before login: %q", r)
	}
	cmd(t, c, "USER demo")
	if r := cmd(t, c, "PASS wrong"); !strings.HasPrefix(r, "-ERR [AUTH]") {
		t.Errorf("bad password: %q", r)
	}
	cmd(t, c, "USER demo")
	if r := cmd(t, c, "PASS demo"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("login: %q", r)
	}
	if r := cmd(t, c, "STAT"); !strings.HasPrefix(r, "+OK 4 ") {
		t.Errorf("STAT = %q", r)
	}
	cmd(t, c, "UIDL")
	uids, _ := c.ReadDotLines()
	if len(uids) != 4 || !strings.HasPrefix(uids[0], "1 demo-0001") {
		t.Errorf("UIDL = %q", uids)
	}
	// Pipelined: three commands in one write, answered in order.
	if _, err := c.W.WriteString("LIST 2\r\nRETR 1\r\nDELE 1\r\n"); err != nil {
		t.Fatal(err)
	}
	c.W.Flush()
	if l, _ := c.ReadLine(); !strings.HasPrefix(l, "+OK 2 ") {
		t.Errorf("LIST 2 = %q", l)
	}
	if l, _ := c.ReadLine(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("RETR 1 = %q", l)
	}
	body, err := c.ReadDotLines() // undoes the dot-stuffing
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(body, "\n")
	if !strings.Contains(text, "Subject: Sunday lunch") || !strings.Contains(text, "\n.signature follows") {
		t.Errorf("RETR 1 text:\n%s", text)
	}
	if l, _ := c.ReadLine(); !strings.HasPrefix(l, "+OK") {
		t.Errorf("DELE 1 = %q", l)
	}
	// A second session is refused while the maildrop is locked.
	c2 := dial(t, e.POP3Addr)
	c2.ReadLine()
	cmd(t, c2, "USER demo")
	if r := cmd(t, c2, "PASS demo"); !strings.HasPrefix(r, "-ERR [IN-USE]") {
		t.Errorf("second login: %q", r)
	}
	if r := cmd(t, c, "QUIT"); !strings.HasPrefix(r, "+OK") {
		t.Errorf("QUIT = %q", r)
	}
	if _, pop, _, _ := e.Left(); pop != 3 {
		t.Errorf("after DELE and QUIT %d messages left, want 3", pop)
	}
}

func TestPOP3NoQuitKeepsMail(t *testing.T) {
	e := start(t, Options{Fast: true})
	c := dial(t, e.POP3Addr)
	c.ReadLine()
	cmd(t, c, "USER demo")
	cmd(t, c, "PASS demo")
	cmd(t, c, "DELE 1")
	cmd(t, c, "DELE 2")
	c.Close() // the link dropped: no QUIT, no UPDATE state
	// A new session can log in once the server has seen the close, and
	// finds all four messages.
	var r string
	for range 200 {
		c2 := dial(t, e.POP3Addr)
		c2.ReadLine()
		cmd(t, c2, "USER demo")
		if r = cmd(t, c2, "PASS demo"); !strings.Contains(r, "IN-USE") {
			break
		}
		c2.Close()
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.HasPrefix(r, "+OK maildrop locked and ready, 4 messages") {
		t.Errorf("after a session without QUIT: %q", r)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second) // hang guard
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestETRNDeliversOverANewConnection(t *testing.T) {
	e := start(t, Options{Fast: true})
	c := dial(t, e.RelayAddr)
	c.ReadLine()
	if err := c.PrintfLine("EHLO client.example"); err != nil {
		t.Fatal(err)
	}
	_, ehlo, err := c.ReadResponse(250)
	if err != nil || !strings.Contains(ehlo, "ETRN") {
		t.Fatalf("EHLO: %v %q", err, ehlo)
	}
	for _, tc := range []struct{ arg, want string }{
		{"", "501 "},
		{"#outgoing", "458 "},
		{"other.example", "459 "},
	} {
		if r := cmd(t, c, strings.TrimSpace("ETRN "+tc.arg)); !strings.HasPrefix(r, tc.want) {
			t.Errorf("ETRN %s = %q, want %s", tc.arg, r, tc.want)
		}
	}
	if len(e.Delivered()) != 0 {
		t.Fatal("mail delivered before ETRN")
	}
	if r := cmd(t, c, "ETRN @demo.example"); !strings.HasPrefix(r, "253 ") || !strings.Contains(r, "3 pending") {
		t.Fatalf("ETRN = %q", r)
	}
	waitFor(t, "three deliveries into the Maildir", func() bool { return len(e.Delivered()) == 3 })
	if relay, _, _, _ := e.Left(); relay != 0 {
		t.Errorf("relay still holds %d", relay)
	}
	b, _ := os.ReadFile(e.Delivered()[0])
	if !strings.Contains(string(b), "Received: from client.isp.example by relay.demo.example") ||
		!strings.Contains(string(b), "\n.signature follows\n") || strings.Contains(string(b), "\r") {
		t.Errorf("delivered file:\n%s", b)
	}
	if r := cmd(t, c, "ETRN demo.example"); !strings.HasPrefix(r, "251 ") {
		t.Errorf("second ETRN = %q, want 251", r)
	}
	if r := cmd(t, c, "QUIT"); !strings.HasPrefix(r, "221") {
		t.Errorf("QUIT = %q", r)
	}
}

func TestSendQueueThroughTheModem(t *testing.T) {
	// Fast rates keep the test quick; the bytes still cross the proxies.
	e := start(t, Options{DownBPS: 10_000_000, UpBPS: 10_000_000, Delay: time.Millisecond})
	n, err := SendQueue(context.Background(), e.QueueDir, e.RelayAddr)
	if err != nil || n != 2 {
		t.Fatalf("SendQueue = %d, %v", n, err)
	}
	if _, _, _, q := e.Left(); q != 0 || e.Sent() != 2 {
		t.Errorf("queue left %d, relay accepted %d outbound", q, e.Sent())
	}
	if n, err := SendQueue(context.Background(), e.QueueDir, e.RelayAddr); n != 0 || err != nil {
		t.Errorf("empty queue: %d, %v", n, err)
	}
}

func TestIMAPServer(t *testing.T) {
	e := start(t, Options{DownBPS: 10_000_000, UpBPS: 10_000_000, Delay: time.Millisecond})
	c, err := imapclient.DialInsecure(e.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(User, Password).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 3 {
		t.Errorf("INBOX has %d messages, want 3", sel.NumMessages)
	}
	c.Logout().Wait()
}

// The config the CLI runs must be one linkctl accepts, with and without
// the flush and drop helpers.
func TestConfigParses(t *testing.T) {
	for _, self := range [][]string{nil, {"/usr/local/bin/linkctl", "demo"}} {
		e := start(t, Options{Fast: true, Self: self})
		cfg, err := config.Parse(e.ConfigFile, e.Config)
		if err != nil {
			t.Fatalf("config.Parse: %v\n%s", err, e.Config)
		}
		if len(cfg.Fetch.Accounts) != 2 || len(cfg.ETRN.Servers) != 1 {
			t.Errorf("parsed config: %+v", cfg)
		}
		if (self != nil) != (cfg.Flush.MTA == "command" && len(cfg.Drop.Command) > 0) {
			t.Errorf("self %v: flush %+v drop %+v", self, cfg.Flush, cfg.Drop)
		}
		fi, _ := os.Stat(e.ConfigFile)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("config mode %v, want 0600 (it holds the demo passwords)", fi.Mode().Perm())
		}
	}
}

func TestCloseRemovesOwnDir(t *testing.T) {
	e, err := Start(context.Background(), Options{Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := e.Dir
	if _, err := os.Stat(filepath.Join(dir, "linkctl.yaml")); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still there after Close", dir)
	}
}

func TestModemCountsBytesBothWays(t *testing.T) {
	e := start(t, Options{DownBPS: 10_000_000, UpBPS: 10_000_000, Delay: time.Millisecond})
	c := dial(t, e.POP3Addr)
	greeting, _ := c.ReadLine()
	cmd(t, c, "QUIT")
	waitFor(t, "the line to carry the session", func() bool {
		s := e.Line()
		return s.Down >= int64(len(greeting)+2+len("+OK bye\r\n")) && s.Up >= int64(len("QUIT\r\n"))
	})
	if s := e.Line(); s.Floor <= 0 || s.Busy < s.Floor {
		t.Errorf("line stats %+v: no floor, or busy less than the floor", s)
	}
}

func TestConfigSkipsStages(t *testing.T) {
	e := start(t, Options{Fast: true, Self: []string{"/bin/linkctl", "demo-helper"}, Skip: []string{"flush", "drop"}})
	cfg, err := config.Parse(e.ConfigFile, e.Config)
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, e.Config)
	}
	var names []string
	for _, s := range cfg.Pipeline {
		names = append(names, s.Name)
	}
	if strings.Join(names, " ") != "etrn fetch" {
		t.Errorf("pipeline %v, want etrn fetch", names)
	}
}

func TestListQueueIsPostqueueJSON(t *testing.T) {
	e := start(t, Options{Fast: true})
	var b strings.Builder
	if err := ListQueue(e.QueueDir, &b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"queue_id":"001"`) ||
		!strings.Contains(lines[0], `"recipients":[{"address":"anna@partner.example"`) {
		t.Errorf("listing:\n%s", b.String())
	}
	if _, err := SendQueue(context.Background(), e.QueueDir, e.RelayAddr); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := ListQueue(e.QueueDir, &b); err != nil || b.Len() != 0 {
		t.Errorf("empty queue listed %q, %v", b.String(), err)
	}
}
