package pop3

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/linkctl/linkctl/fetch/pop3/pop3test"
)

// BenchmarkRetrieve measures one session fetching 500 messages of about 4
// KB: Scan, then pipelined RETR of all of them, then QUIT, against the
// in-memory server over net.Pipe and over loopback TCP, pipelined and in
// lock step. Reported: messages per second and MB/s of message data.
func BenchmarkRetrieve(b *testing.B) {
	const n, size = 500, 4000
	for _, tc := range []struct {
		name       string
		tcp        bool
		pipelining bool
	}{
		{"pipe/pipelined", false, true},
		{"pipe/lockstep", false, false},
		{"loopback/pipelined", true, true},
		{"loopback/lockstep", true, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := &pop3test.Server{User: "u", Pass: "p", Pipelining: tc.pipelining}
			fill(srv, n, size)
			dial := srv.Pipe
			if tc.tcp {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				go srv.ServeListener(l)
				dial = func() net.Conn {
					c, err := net.Dial("tcp", l.Addr().String())
					if err != nil {
						b.Fatal(err)
					}
					return c
				}
			}
			var total int64
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				c, err := New(dial(), Options{Timeout: 10 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Login("u", "p"); err != nil {
					b.Fatal(err)
				}
				c.Capa()
				msgs, err := c.Scan()
				if err != nil {
					b.Fatal(err)
				}
				nums := make([]uint32, len(msgs))
				for j, m := range msgs {
					nums[j] = m.Num
				}
				err = c.RetrAll(nums, func(_ int, r io.Reader) error {
					k, err := io.Copy(io.Discard, r)
					total += k
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				c.Quit()
			}
			secs := time.Since(start).Seconds()
			b.ReportMetric(float64(n*b.N)/secs, "msgs/s")
			b.ReportMetric(float64(total)/secs/1e6, "MB/s")
		})
	}
}
