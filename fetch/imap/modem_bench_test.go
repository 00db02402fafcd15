package imap

import (
	"os/exec"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/linksim"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// BenchmarkDovecotModem pulls one mailbox from a real Dovecot over a
// simulated modem (internal/linksim: 56 kbit/s down, 33.6 up, 75 ms each
// way), with and without COMPRESS, and fetchmail's IMAP over the same line
// when it is installed. busy/floor is the time the line was in use over
// the payload floor, the time the messages' own octets take at 56 kbit/s
// uncompressed: 1.00 would be a protocol without overhead or round trips;
// COMPRESS goes below it. One iteration takes seconds:
//
//	go test ./fetch/imap -run '^$' -bench DovecotModem -benchtime 1x
func BenchmarkDovecotModem(b *testing.B) {
	d := testpeer.StartDovecot(b, testpeer.DovecotOptions{Compress: true})
	var payload int64
	for _, m := range benchCorpus(12) {
		d.AddMessage("user", "INBOX", []byte(m))
		payload += int64(len(m))
	}
	d.Count("user", "INBOX")
	const down = 56000
	floor := time.Duration(float64(payload*8) / down * float64(time.Second))
	run := func(b *testing.B, pull func(addr string) error) {
		link := &linksim.Link{Down: down, Up: 33600, Delay: 75 * time.Millisecond}
		p, err := link.Listen(d.IMAPAddr())
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		b.SetBytes(payload)
		for b.Loop() {
			if err := pull(p.Addr()); err != nil {
				b.Fatal(err)
			}
		}
		st := link.Stats()
		b.Logf("payload %d B, floor %v; %v", payload, floor, st)
		b.ReportMetric(st.Busy.Seconds()/float64(b.N), "busy-s/op")
		b.ReportMetric(float64(st.DownBytes)/float64(b.N), "wire-B/op")
		b.ReportMetric(float64(st.Busy)/float64(b.N)/float64(floor), "busy/floor")
	}
	b.Run("fetchmail", func(b *testing.B) {
		fm, err := exec.LookPath("fetchmail")
		if err != nil {
			b.Skip("fetchmail not installed")
		}
		run(b, func(addr string) error { _, err := fetchmailOnce(b, fm, addr); return err })
	})
	for _, mode := range []string{"off", "on"} {
		b.Run("compress="+mode, func(b *testing.B) {
			run(b, func(addr string) error {
				_, _, err := pullOnce(Options{Addr: addr, TLS: netconn.TLSNone, User: "user", Password: pass("password"),
					Compress: mode, Timeout: 60 * time.Second})
				return err
			})
		})
	}
}
