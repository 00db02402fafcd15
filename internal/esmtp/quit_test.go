package esmtp

import (
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/scripted"
)

// TestQuitStallBounded: a relay that answers ETRN and then stalls at QUIT
// holds the session (and the link) for quitWait, not for the whole
// inactivity timeout: the QUIT reply changes nothing.
func TestQuitStallBounded(t *testing.T) {
	defer func(w time.Duration) { quitWait = w }(quitWait)
	quitWait = 200 * time.Millisecond
	srv := scripted.Start(t, []string{"S: 220 relay.test", "C: QUIT", "HANG"})
	c, err := NewClient(srv.Conn, ClientOptions{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = c.Quit()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("QUIT to a stalled relay took %v with quitWait %v", took, quitWait)
	}
	if err == nil {
		t.Error("no error for an unanswered QUIT")
	}
}
