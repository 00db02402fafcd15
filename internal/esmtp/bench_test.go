package esmtp

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// BenchmarkReadReply reads a 20-line EHLO reply, the biggest a session
// normally gets.
func BenchmarkReadReply(b *testing.B) {
	var buf bytes.Buffer
	for i := 0; i < 19; i++ {
		buf.WriteString("250-EXTENSION" + strings.Repeat("X", i) + " param\r\n")
	}
	buf.WriteString("250 CHUNKING\r\n")
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	r := bufio.NewReader(nil)
	for b.Loop() {
		r.Reset(bytes.NewReader(data))
		if _, err := ReadReply(r, nil); err != nil {
			b.Fatal(err)
		}
	}
}
