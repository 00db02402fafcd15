package etrn

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/linkctl/linkctl/internal/esmtp"
)

// FuzzReading feeds whatever reply the reader accepts to the code that
// explains it to the user: it must never panic and always say something.
func FuzzReading(f *testing.F) {
	for _, s := range []string{"250 Queuing started\r\n", "251 OK no messages\r\n", "253 2.0.0 OK, 3 pending\r\n",
		"458 Unable to queue\r\n", "459 4.7.1 <example.org>: not in fast_flush_domains\r\n", "500-a\r\n500 b\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := esmtp.ReadReply(bufio.NewReader(bytes.NewReader(data)), nil)
		if err != nil {
			return
		}
		if Reading("example.org", r) == "" {
			t.Errorf("no reading for %q", r.String())
		}
		Classify("s", "example.org", r)
	})
}
