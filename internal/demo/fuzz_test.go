package demo

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// drive plays data as a client's bytes into a server session over net.Pipe
// and returns when the session has ended; the server's replies are read
// and thrown away. A session that hangs or panics fails the fuzz target.
func drive(t *testing.T, data []byte, session func(net.Conn)) {
	srv, cli := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		session(srv)
	}()
	go io.Copy(io.Discard, cli)
	_ = cli.SetWriteDeadline(time.Now().Add(5 * time.Second))
	cli.Write(data)
	cli.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("session did not end after the client closed")
	}
}

// FuzzPOP3Session: any client input gets replies or a closed connection,
// never a panic or a hang, and a session without QUIT deletes nothing.
func FuzzPOP3Session(f *testing.F) {
	f.Add([]byte("CAPA\r\nUSER demo\r\nPASS demo\r\nSTAT\r\nLIST\r\nUIDL 2\r\nRETR 1\r\nTOP 2 3\r\nDELE 1\r\nRSET\r\nQUIT\r\n"))
	f.Add([]byte("USER demo\r\nPASS demo\r\nDELE 1\r\nDELE 1\r\nRETR 9\r\nTOP 1 -1\r\nLIST x\r\n"))
	f.Add([]byte("USER demo\nPASS demo\nDELE 4\nQUIT\n"))
	_, pop, _, _ := sampleMessages(time.Unix(0, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &pop3Server{user: User, pass: Password}
		for i, m := range pop {
			s.msgs = append(s.msgs, pop3Msg{uid: string(rune('a' + i)), text: crlf(m.Text)})
		}
		drive(t, data, s.session)
		if s.inUse {
			t.Fatal("maildrop still locked after the session ended")
		}
	})
}

// FuzzRelaySession: the relay's command reader survives any input.
func FuzzRelaySession(f *testing.F) {
	f.Add([]byte("EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@demo.example>\r\nDATA\r\nhi\r\n.\r\nETRN demo.example\r\nQUIT\r\n"))
	f.Add([]byte("MAIL FROM:\r\nRCPT TO:\r\nDATA\r\nETRN\r\nETRN #q\r\nETRN @other\r\nNOOP\r\nRSET\r\n"))
	relayed, _, _, _ := sampleMessages(time.Unix(0, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &relay{domain: Domain, held: relayed, log: slog.New(slog.DiscardHandler),
			deliverTo: func() string { return "127.0.0.1:1" }} // refused at once: nothing leaves
		drive(t, data, r.session)
		r.wg.Wait()
	})
}
