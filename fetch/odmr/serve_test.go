package odmr

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/linkctl/linkctl/fetch/deliver"
	"github.com/linkctl/linkctl/internal/errkind"
)

// memTarget is a local side that keeps what it was given, or fails.
type memTarget struct {
	mu   sync.Mutex
	got  []string
	envs []deliver.Envelope
	fail error
}

func (m *memTarget) Deliver(_ context.Context, env deliver.Envelope, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err // a truncated message is never delivered
	}
	if m.fail != nil {
		return m.fail
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, string(b))
	m.envs = append(m.envs, env)
	return nil
}

func (m *memTarget) Close() error { return nil }

func (m *memTarget) messages() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.got...)
}

// serve runs Serve on one end of a pipe and returns the other end for the
// test to play the relay on.
func serve(t *testing.T, target deliver.Target, buffered string) (net.Conn, <-chan ServeResult, <-chan error) {
	t.Helper()
	ours, relay := net.Pipe()
	t.Cleanup(func() { ours.Close(); relay.Close() })
	resc, errc := make(chan ServeResult, 1), make(chan error, 1)
	go func() {
		res, err := Serve(context.Background(), ours, []byte(buffered), ServeOptions{Hostname: "home.example.org", Target: target, Timeout: 5 * time.Second})
		resc <- res
		errc <- err
	}()
	return relay, resc, errc
}

func TestServeAcceptsOnlyAfterLocalDelivery(t *testing.T) {
	target := &memTarget{}
	relay, resc, errc := serve(t, target, "")
	c := smtp.NewClient(relay)
	if err := c.Hello("relay.example.net"); err != nil {
		t.Fatal(err)
	}
	for i, body := range []string{"Subject: one\r\n\r\nfirst\r\n", "Subject: two\r\n\r\n.dotted line\r\nsecond\r\n"} {
		if err := c.SendMail("owner@example.net", []string{"chavez@example.org"}, strings.NewReader(body)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	c.Quit()
	res, err := <-resc, <-errc
	if err != nil {
		t.Fatal(err)
	}
	got := target.messages()
	want := []string{"Subject: one\n\nfirst\n", "Subject: two\n\n.dotted line\nsecond\n"}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	if res.Messages != 2 || target.envs[0].From != "owner@example.net" || target.envs[0].To[0] != "chavez@example.org" {
		t.Fatalf("result %+v envelopes %+v", res, target.envs)
	}
}

func TestServeTemporaryLocalFailureIs451(t *testing.T) {
	target := &memTarget{fail: errkind.Temporary(errkind.Delivery, "smtp 127.0.0.1:25", "451 queue full")}
	relay, resc, errc := serve(t, target, "")
	c := smtp.NewClient(relay)
	err := c.SendMail("owner@example.net", []string{"chavez@example.org"}, strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
	se, ok := err.(*smtp.SMTPError)
	if !ok || se.Code != 451 {
		t.Fatalf("relay got %v, want 451 (keep it and retry)", err)
	}
	c.Quit()
	res := <-resc
	if err := <-errc; err == nil {
		t.Error("a session where nothing could be delivered returned no error")
	}
	if res.Messages != 0 || res.Deferred != 1 {
		t.Fatalf("result %+v", res)
	}
}

func TestServeRelayDropsMidDataDeliversNothing(t *testing.T) {
	target := &memTarget{}
	relay, resc, _ := serve(t, target, "")
	r := bufio.NewReader(relay)
	r.ReadString('\n') // 220
	io.WriteString(relay, "HELO relay\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<chavez@example.org>\r\nDATA\r\n")
	for i := 0; i < 4; i++ {
		r.ReadString('\n')
	}
	io.WriteString(relay, "Subject: cut\r\n\r\nhalf a mess")
	relay.Close()
	res := <-resc
	if n := len(target.messages()); n != 0 || res.Messages != 0 {
		t.Fatalf("a message cut mid-DATA was delivered (%d, %+v)", n, res)
	}
}

func TestServeReplaysBytesBufferedBeforeTheTurnaround(t *testing.T) {
	target := &memTarget{}
	relay, resc, errc := serve(t, target, "EHLO relay.example.net\r\n")
	r := bufio.NewReader(relay)
	greeting, _ := r.ReadString('\n')
	if !strings.HasPrefix(greeting, "220 ") {
		t.Fatalf("greeting %q", greeting)
	}
	// The EHLO the relay pipelined behind the ATRN reply is answered.
	line, _ := r.ReadString('\n')
	if !strings.HasPrefix(line, "250") {
		t.Fatalf("buffered EHLO not answered: %q", line)
	}
	relay.Close()
	<-resc
	<-errc
}
