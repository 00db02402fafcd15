package testpeer

import (
	"bufio"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/scripted"
)

// ETRNRelay is a loopback relay that answers ETRN with replies[domain]
// (default "250 Queuing started"). It offers AUTH PLAIN and accepts user
// "u" with password "right", so that authentication can be tested both
// ways. It returns the relay's host:port; the test's cleanup stops it.
func ETRNRelay(t testing.TB, replies map[string]string) string {
	t.Helper()
	return scripted.Listen(t, func(c net.Conn) { serveETRN(c, replies) }).Addr().String()
}

func serveETRN(c net.Conn, replies map[string]string) {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	c.Write([]byte("220 relay.test ESMTP\r\n"))
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(strings.TrimSpace(l), " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			c.Write([]byte("250-relay.test\r\n250-AUTH PLAIN\r\n250 ETRN\r\n"))
		case "AUTH":
			if arg == "PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00u\x00right")) {
				c.Write([]byte("235 2.7.0 ok\r\n"))
			} else {
				c.Write([]byte("535 5.7.8 Authentication credentials invalid\r\n"))
			}
		case "ETRN":
			rep, ok := replies[arg]
			if !ok {
				rep = "250 Queuing started"
			}
			c.Write([]byte(rep + "\r\n"))
		case "QUIT":
			c.Write([]byte("221 bye\r\n"))
			return
		default:
			c.Write([]byte("502 5.5.2 what\r\n"))
		}
	}
}
