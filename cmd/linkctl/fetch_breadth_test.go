package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/testpeer"
)

func secretFile(t *testing.T, dir, name, pw string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sinkRecipients maps each Message-ID the sink got to its recipients.
func sinkRecipients(sink *testpeer.Sink) map[string]string {
	out := map[string]string{}
	for _, m := range sink.Messages() {
		id := ""
		for _, l := range strings.Split(string(m.Data), "\r\n") {
			if v, ok := strings.CutPrefix(l, "Message-ID: "); ok {
				id = v
				break
			}
		}
		out[id] = strings.Join(m.To, ",")
	}
	return out
}

// Several users on one server, and a multidrop box, from the config: two
// POP3 accounts on the same Dovecot with different users (one connection
// and login each, each mapped to its own local user), and an IMAP account
// holding a domain's mail sorted by Delivered-To, a Bcc'd recipient
// included.
func TestFetchSeveralUsersAndMultidrop(t *testing.T) {
	testpeer.Short(t)
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{Users: map[string]string{"alice": "pa", "bob": "pb", "family": "pf"}})
	msg := func(id, extra string) []byte {
		return []byte(extra + "Return-Path: <s@example.net>\nMessage-ID: <" + id + "@t>\nSubject: " + id + "\n\nbody\n")
	}
	d.AddMessage("alice", "INBOX", msg("a1", ""))
	d.AddMessage("alice", "INBOX", msg("a2", ""))
	d.AddMessage("bob", "INBOX", msg("b1", ""))
	d.AddMessage("family", "INBOX", msg("bcc", "Delivered-To: carol@example.org\nTo: bob@example.org\n"))
	d.AddMessage("family", "INBOX", msg("dave", "Delivered-To: dave@example.org\nTo: dave@example.org\n"))
	d.AddMessage("family", "INBOX", msg("stray", "Delivered-To: x@elsewhere.net\nTo: x@elsewhere.net\n"))
	dir := t.TempDir()
	boxes := filepath.Join(dir, "boxes")
	os.Mkdir(boxes, 0o700)
	// The local side: an MDA run once per local user (%T), appending to
	// a file named after the user.
	cfg := writeConfig(t, fmt.Sprintf(`fetch:
  deliver: {mda: [/bin/sh, -c, 'cat >>"$0/$1"', %[1]s, '%%T']}
  accounts:
    - {proto: pop3, server: %[2]s, tls: none, user: alice, password_file: %[3]s, to: alice-local}
    - {proto: pop3, server: %[2]s, tls: none, user: bob, password_file: %[4]s, to: bob-local}
    - {proto: imap, server: %[5]s, tls: none, user: family, password_file: %[6]s, name: family,
       envelope: Delivered-To, localdomains: [example.org], to: ['*', postmaster]}
`, boxes, d.POP3Addr(), secretFile(t, dir, "pa", "pa"), secretFile(t, dir, "pb", "pb"), d.IMAPAddr(), secretFile(t, dir, "pf", "pf")))
	out, errOut, code := linkctl(t, nil, "-c", cfg, "fetch")
	if code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	want := map[string][]string{"alice-local": {"a1", "a2"}, "bob-local": {"b1"}, "carol": {"bcc"}, "dave": {"dave"}, "postmaster": {"stray"}}
	ents, _ := os.ReadDir(boxes)
	if len(ents) != len(want) {
		t.Errorf("local users with mail: %v", ents)
	}
	for user, ids := range want {
		b, _ := os.ReadFile(filepath.Join(boxes, user))
		if n := strings.Count(string(b), "Message-ID: "); n != len(ids) {
			t.Errorf("%s got %d messages, want %v:\n%s", user, n, ids, b)
		}
		for _, id := range ids {
			if !strings.Contains(string(b), "Message-ID: <"+id+"@t>") {
				t.Errorf("%s did not get %s", user, id)
			}
		}
	}
	// The second account on the same server got a name of its own.
	if !strings.Contains(out, "bob@"+d.POP3Addr()+": 1 message") {
		t.Errorf("summary does not name bob's account:\n%s", out)
	}
	for _, u := range []string{"alice", "bob", "family"} {
		if n := d.Count(u, "INBOX"); n != 0 {
			t.Errorf("%s: %d messages left on the server", u, n)
		}
	}
}

// relay366 is an ODMR relay on loopback for one session per entry of
// atrn: it answers ATRN with that reply and, on 250, delivers msgs over
// the turned-around connection.
func relay366(t *testing.T, atrn []string, msgs []string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for _, reply := range atrn {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(20 * time.Second))
			r := bufio.NewReader(c)
			say := func(s string) { io.WriteString(c, s+"\r\n") }
			last := func() string { // the last line of a reply
				for {
					l, err := r.ReadString('\n')
					if err != nil || len(l) < 4 || l[3] != '-' {
						return l
					}
				}
			}
			say("220 relay ESMTP")
			r.ReadString('\n') // EHLO
			say("250-relay\r\n250-AUTH PLAIN\r\n250 ATRN")
			r.ReadString('\n') // AUTH
			say("235 ok")
			if l, _ := r.ReadString('\n'); l != "ATRN example.org\r\n" {
				t.Errorf("relay got %q", l)
			}
			say(reply)
			if strings.HasPrefix(reply, "250") {
				last() // our 220
				say("EHLO relay")
				last()
				for _, m := range msgs {
					for _, cmd := range []string{"MAIL FROM:<s@example.net>", "RCPT TO:<chavez@example.org>", "DATA"} {
						say(cmd)
						last()
					}
					io.WriteString(c, m+".\r\n")
					if l := last(); !strings.HasPrefix(l, "250") {
						t.Errorf("relay: %q after DATA", l)
					}
				}
				say("QUIT")
			}
			last()
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// An ODMR account from the config: the relay's mail goes into the local
// MTA (exit 0), and the relay's 453 "no mail" is exit 1, as for POP3.
func TestFetchODMRFromConfig(t *testing.T) {
	sink := testpeer.StartSink(t, testpeer.SinkOptions{})
	addr := relay366(t, []string{"250 OK now reversing the connection", "453 You have no mail"},
		[]string{"Message-ID: <o1@t>\r\n\r\none\r\n", "Message-ID: <o2@t>\r\n\r\ntwo\r\n"})
	dir := t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf(`fetch:
  deliver: {smtp: %s}
  accounts:
    - {proto: odmr, name: relay, server: %s, tls: none, user: home, password_file: %s, domains: [example.org]}
`, sink.Addr(), addr, secretFile(t, dir, "p", "s3cret")))
	out, errOut, code := linkctl(t, nil, "-c", cfg, "fetch")
	if code != 0 || !strings.Contains(out, "relay: 2 messages") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	if got := sinkRecipients(sink); got["<o1@t>"] != "chavez@example.org" || len(got) != 2 {
		t.Fatalf("sink got %v", got)
	}
	if out, errOut, code := linkctl(t, nil, "-c", cfg, "fetch"); code != 1 {
		t.Fatalf("no mail: exit %d, want 1:\n%s%s", code, out, errOut)
	}
}
