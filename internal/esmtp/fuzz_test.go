package esmtp

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzReadReply feeds arbitrary server bytes to the reply reader: it must
// never panic, and what it accepts must respect the limits.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"250 Queuing started\r\n",
		"250-relay.test\r\n250-ETRN\r\n250 ENHANCEDSTATUSCODES\r\n",
		"459-4.7.1 a\r\n459 4.7.1 b\r\n",
		"253 7 pending\n",
		"250",
		"999 x\r\n",
		"25\r\n",
		"250-x\r\n251 y\r\n",
		"250 " + string(bytes.Repeat([]byte("x"), 600)) + "\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadReply(bufio.NewReaderSize(bytes.NewReader(data), 16), nil)
		if err != nil {
			return
		}
		if r.Code < 200 || r.Code > 599 {
			t.Errorf("accepted code %d", r.Code)
		}
		if len(r.Lines) == 0 || len(r.Lines) > maxReplyLines {
			t.Errorf("accepted %d lines", len(r.Lines))
		}
		for _, l := range r.Lines {
			if len(l) > maxLineOctets {
				t.Errorf("accepted a line of %d octets", len(l))
			}
		}
		_ = r.String()
	})
}
