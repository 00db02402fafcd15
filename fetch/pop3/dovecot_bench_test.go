package pop3

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/testpeer"
)

// BenchmarkDovecot fetches 5000 small messages (about 1.5 KB) from a
// private Dovecot over loopback in one session, client side only (no
// delivery): the protocol's share of the loopback target. The
// sub-benchmarks vary the pipelining window; window=1 is lock step.
func BenchmarkDovecot(b *testing.B) {
	const n = 5000
	d := testpeer.StartDovecot(b, testpeer.DovecotOptions{Users: map[string]string{"bench": "pw"}})
	body := strings.Repeat("a line of a small message, as mailing lists send.\n", 28)
	for i := 0; i < n; i++ {
		d.AddMessage("bench", "INBOX", []byte(fmt.Sprintf("Subject: %d\nMessage-ID: <%d@bench>\n\n%s", i, i, body)))
	}
	if got := d.Count("bench", "INBOX"); got != n { // indexes the Maildir before timing
		b.Fatalf("%d messages in the Maildir, want %d", got, n)
	}
	for _, window := range []int{4, DefaultWindow, 64, 1} {
		name := fmt.Sprint("window=", window)
		b.Run(name, func(b *testing.B) {
			var octets int64
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				conn, err := net.Dial("tcp", d.POP3Addr())
				if err != nil {
					b.Fatal(err)
				}
				c, err := New(conn, Options{Timeout: 30 * time.Second, Window: window})
				if err != nil {
					b.Fatal(err)
				}
				c.Capa()
				if err := c.Login("bench", "pw"); err != nil {
					b.Fatal(err)
				}
				if err := c.RefreshCapa(); err != nil {
					b.Fatal(err)
				}
				msgs, err := c.Scan()
				if err != nil || len(msgs) != n {
					b.Fatalf("Scan: %d messages, %v", len(msgs), err)
				}
				nums := make([]uint32, n)
				for j, m := range msgs {
					nums[j] = m.Num
				}
				err = c.RetrAll(nums, func(_ int, r io.Reader) error {
					k, err := io.Copy(io.Discard, r)
					octets += k
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				c.Quit() // nothing marked: the maildrop stays for the next round
			}
			secs := time.Since(start).Seconds()
			b.ReportMetric(float64(n*b.N)/secs, "msgs/s")
			b.ReportMetric(float64(octets)/secs/1e6, "MB/s")

		})
	}
}
