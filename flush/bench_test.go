package flush

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkParsePostfixJSON parses a 10000-message `postqueue -j`: a
// backed-up queue after a long outage, listed at every poll.
func BenchmarkParsePostfixJSON(b *testing.B) {
	var buf bytes.Buffer
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&buf, `{"queue_name": "deferred", "queue_id": "%X", "arrival_time": 1795580406, "message_size": 3080, "forced_expire": false, "sender": "alice@home.test", "recipients": [{"address": "bob%d@far.test", "delay_reason": "connect to 127.0.0.1[127.0.0.1]:2599: Connection refused"}]}`+"\n", 0x880709843C3+i, i)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		msgs, err := ParsePostfixJSON(data)
		if err != nil || len(msgs) != 10000 {
			b.Fatal(len(msgs), err)
		}
	}
}
