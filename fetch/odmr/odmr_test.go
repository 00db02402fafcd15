package odmr

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
)

// relay plays an ODMR relay on one end of a pipe: greeting, EHLO, AUTH,
// ATRN answered with atrnReply, then (on 250) the turned-around SMTP
// client delivering msgs.
func relay(t *testing.T, conn net.Conn, atrnReply string, msgs []string) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			r := bufio.NewReader(conn)
			say := func(s string) { io.WriteString(conn, s+"\r\n") }
			expect := func(prefix string) error {
				conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				l, err := r.ReadString('\n')
				if err != nil {
					return err
				}
				if !strings.HasPrefix(l, prefix) {
					t.Errorf("relay got %q, want %q", l, prefix)
				}
				return nil
			}
			say("220 relay.example.net ESMTP ODMR")
			expect("EHLO ")
			say("250-relay.example.net\r\n250-AUTH PLAIN\r\n250 ATRN")
			expect("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00home\x00s3cret")))
			say("235 ok")
			expect("ATRN example.org,example.com")
			say(atrnReply)
			if !strings.HasPrefix(atrnReply, "250") {
				expect("QUIT")
				say("221 bye")
				return nil
			}
			// Roles reversed: the relay is now the SMTP client.
			c := smtp.NewClient(&bufConn{Conn: conn, r: r})
			if err := c.Hello("relay.example.net"); err != nil {
				return err
			}
			for _, m := range msgs {
				if err := c.SendMail("sender@example.net", []string{"chavez@example.org"}, strings.NewReader(m)); err != nil {
					return err
				}
			}
			return c.Quit()
		}()
	}()
	return done
}

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func opts(target *memTarget) Options {
	return Options{Addr: "relay.example.net:366", TLS: netconn.TLSNone, Helo: "home.example.org", User: "home",
		Password: func(context.Context) (string, error) { return "s3cret", nil },
		Domains:  []string{"example.org", "example.com"}, Target: target, Timeout: 5 * time.Second}
}

func TestATRNTurnsAroundAndDelivers(t *testing.T) {
	ours, theirs := net.Pipe()
	defer ours.Close()
	target := &memTarget{}
	done := relay(t, theirs, "250 OK now reversing the connection", []string{"Subject: a\r\n\r\none\r\n", "Subject: b\r\n\r\ntwo\r\n"})
	res, err := RunConn(context.Background(), ours, opts(target), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("relay: %v", err)
	}
	if res.Messages != 2 || len(target.messages()) != 2 || target.messages()[1] != "Subject: b\n\ntwo\n" {
		t.Fatalf("result %+v, delivered %q", res, target.messages())
	}
}

func TestATRNNoMailIsNotAnError(t *testing.T) {
	ours, theirs := net.Pipe()
	defer ours.Close()
	done := relay(t, theirs, "453 You have no mail", nil)
	res, err := RunConn(context.Background(), ours, opts(&memTarget{}), nil)
	if err != nil || !res.NoMail {
		t.Fatalf("err %v result %+v, want no error and NoMail", err, res)
	}
	<-done
}

func TestATRNRefused(t *testing.T) {
	ours, theirs := net.Pipe()
	defer ours.Close()
	done := relay(t, theirs, "450 Access denied", nil)
	_, err := RunConn(context.Background(), ours, opts(&memTarget{}), nil)
	if errkind.KindOf(err) != errkind.Refused || !errkind.IsTemporary(err) {
		t.Fatalf("err %v, want a temporary refusal", err)
	}
	<-done
}

func TestODMRWithoutPasswordRefusesBeforeSending(t *testing.T) {
	ours, theirs := net.Pipe()
	defer ours.Close()
	go func() {
		io.WriteString(theirs, "220 relay\r\n")
		bufio.NewReader(theirs).ReadString('\n')
		io.WriteString(theirs, "250-relay\r\n250 ATRN\r\n")
	}()
	o := opts(&memTarget{})
	o.Password = nil
	_, err := RunConn(context.Background(), ours, o, nil)
	if errkind.KindOf(err) != errkind.Usage {
		t.Fatalf("err %v", err)
	}
}

func TestODMRRelayDropsMidData(t *testing.T) {
	ours, theirs := net.Pipe()
	defer ours.Close()
	target := &memTarget{}
	go func() {
		r := bufio.NewReader(theirs)
		say := func(s string) { io.WriteString(theirs, s+"\r\n") }
		say("220 relay")
		r.ReadString('\n')
		say("250-relay\r\n250-AUTH PLAIN\r\n250 ATRN")
		r.ReadString('\n')
		say("235 ok")
		r.ReadString('\n')
		say("250 OK now reversing the connection")
		r.ReadString('\n') // our 220
		io.WriteString(theirs, "HELO relay\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<chavez@example.org>\r\nDATA\r\n")
		for i := 0; i < 4; i++ {
			r.ReadString('\n')
		}
		io.WriteString(theirs, "Subject: cut\r\n\r\nhalf")
		theirs.Close()
	}()
	res, _ := RunConn(context.Background(), ours, opts(target), nil)
	if res.Messages != 0 || len(target.messages()) != 0 {
		t.Fatalf("a message cut mid-DATA was delivered: %+v", res)
	}
}

// No domains configured: a bare ATRN (all of the account's domains), not
// "ATRN " with a dangling space.
func TestATRNWithoutDomains(t *testing.T) {
	ours, theirs := net.Pipe()
	defer ours.Close()
	got := make(chan string, 1)
	go func() {
		r := bufio.NewReader(theirs)
		say := func(s string) { io.WriteString(theirs, s+"\r\n") }
		say("220 relay")
		r.ReadString('\n')
		say("250-relay\r\n250-AUTH PLAIN\r\n250 ATRN")
		r.ReadString('\n')
		say("235 ok")
		l, _ := r.ReadString('\n')
		got <- l
		say("453 You have no mail")
		r.ReadString('\n')
		say("221 bye")
	}()
	o := opts(&memTarget{})
	o.Domains = nil
	res, err := RunConn(context.Background(), ours, o, nil)
	if err != nil || !res.NoMail {
		t.Fatalf("err %v, result %+v", err, res)
	}
	if l := <-got; l != "ATRN\r\n" {
		t.Fatalf("sent %q, want a bare ATRN", l)
	}
}
