package deliver

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/testpeer"
)

func TestSMTPStartTLS(t *testing.T) {
	cert, pool := testpeer.SelfSigned(t, "127.0.0.1", "mta.test")
	sink := testpeer.StartSink(t, testpeer.SinkOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	env := Envelope{To: []string{"u@x"}}

	tg := NewSMTP(SMTPOptions{Addr: sink.Addr(), StartTLS: true, TLSConfig: &tls.Config{RootCAs: pool}, Timeout: 5 * time.Second})
	defer tg.Close()
	for i := range 2 {
		if err := tg.Deliver(context.Background(), env, strings.NewReader("Subject: tls\n\n.x\n")); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	msgs := sink.Messages()
	if len(msgs) != 2 || !msgs[0].TLS || !msgs[1].TLS || string(msgs[0].Data) != wire("Subject: tls\n\n.x\n") {
		t.Fatalf("sink: %+v", msgs)
	}

	// A certificate that does not verify is a permanent error: retrying
	// will not fix it, and nothing goes out in plaintext.
	bad := NewSMTP(SMTPOptions{Addr: sink.Addr(), StartTLS: true, Timeout: 5 * time.Second})
	defer bad.Close()
	err := bad.Deliver(context.Background(), env, strings.NewReader("secret\n"))
	if err == nil || errkind.IsTemporary(err) || errkind.KindOf(err) != errkind.Delivery {
		t.Fatalf("untrusted certificate: err %v, want a permanent delivery error", err)
	}
	if len(sink.Messages()) != 2 {
		t.Fatal("delivered over an unverified connection")
	}
}
