package errkind

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
)

func TestKindSurvivesWrapping(t *testing.T) {
	err := fmt.Errorf("fetch isp: %w", Wrap(Auth, false, "pop3 PASS", errors.New("-ERR [AUTH] bad password")))
	if KindOf(err) != Auth || ExitCode(err) != 3 {
		t.Fatalf("kind %v exit %d, want auth 3", KindOf(err), ExitCode(err))
	}
	if IsTemporary(err) {
		t.Error("a refused password is not temporary")
	}
	if got := err.Error(); got != "fetch isp: pop3 PASS: -ERR [AUTH] bad password" {
		t.Errorf("message %q", got)
	}
}

func TestUnclassifiedErrorsByType(t *testing.T) {
	cases := []struct {
		err  error
		kind Kind
		temp bool
	}{
		{&net.DNSError{Err: "no such host", Name: "pop.example.net", IsNotFound: true}, DNS, false},
		{&net.DNSError{Err: "server misbehaving", Name: "pop.example.net", IsTimeout: true}, DNS, true},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, Network, true},
		{io.ErrUnexpectedEOF, Network, true},
		{context.DeadlineExceeded, Network, true},
		{errors.New("something odd"), Internal, false},
		{nil, OK, false},
	}
	for _, c := range cases {
		if KindOf(c.err) != c.kind || IsTemporary(c.err) != c.temp {
			t.Errorf("%v: kind %v temp %v, want %v %v", c.err, KindOf(c.err), IsTemporary(c.err), c.kind, c.temp)
		}
	}
}

func TestOutermostClassificationWins(t *testing.T) {
	inner := Wrap(Network, true, "read", io.ErrUnexpectedEOF)
	outer := Wrap(Delivery, false, "deliver", inner)
	if KindOf(outer) != Delivery || IsTemporary(outer) {
		t.Fatalf("kind %v temp %v", KindOf(outer), IsTemporary(outer))
	}
}
