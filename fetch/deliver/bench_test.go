package deliver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/testpeer"
)

var benchMsg = "From: a@example.org\nTo: u@sink.test\nSubject: bench\n\n" + strings.Repeat("a line of text in a small message\n", 60)

// benchDeliver delivers b.N messages over a target with the given number
// of sessions, from as many goroutines as sessions (and at least
// GOMAXPROCS), and reports messages per second.
func benchDeliver(b *testing.B, addr string, sessions int) {
	tg := NewSMTP(SMTPOptions{Addr: addr, Sessions: sessions, Timeout: 30 * time.Second})
	defer tg.Close()
	env := Envelope{From: "a@example.org", To: []string{"u@sink.test"}}
	b.SetBytes(int64(len(benchMsg)))
	b.SetParallelism(sessions)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := tg.Deliver(context.Background(), env, strings.NewReader(benchMsg)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

// BenchmarkSMTPDeliver compares one delivery session with four: against
// the in-process sink as it is (protocol cost only), against the sink with
// 2 ms per message after the final dot (an MTA that fsyncs its queue file),
// and against a real private Postfix when one can be started.
func BenchmarkSMTPDeliver(b *testing.B) {
	for _, sessions := range []int{1, 4} {
		b.Run(fmt.Sprintf("sink/sessions=%d", sessions), func(b *testing.B) {
			sink := testpeer.StartSink(b, testpeer.SinkOptions{})
			benchDeliver(b, sink.Addr(), sessions)
		})
	}
	for _, sessions := range []int{1, 4} {
		b.Run(fmt.Sprintf("sink-fsync2ms/sessions=%d", sessions), func(b *testing.B) {
			sink := testpeer.StartSink(b, testpeer.SinkOptions{Delay: testpeer.DelayData(2 * time.Millisecond)})
			benchDeliver(b, sink.Addr(), sessions)
		})
	}
	for _, sessions := range []int{1, 4, 8} {
		b.Run(fmt.Sprintf("postfix/sessions=%d", sessions), func(b *testing.B) {
			pf := testpeer.StartPostfix(b, testpeer.PostfixOptions{})
			benchDeliver(b, pf.Addr(), sessions)
		})
	}
}
