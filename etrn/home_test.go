package etrn

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/testpeer"
)

// What the tests against real relays (Postfix, Exim, Sendmail) share.

// slowHome is the test's "home" MTA that a real relay delivers to. It
// takes a second over each message, as over a slow link, so that the
// delivery session is long enough for the stage's quiet wait to see it.
// port is its port, for StageOptions.Ports.
func slowHome(t *testing.T) (home *testpeer.Sink, port int) {
	t.Helper()
	home = testpeer.StartSink(t, testpeer.SinkOptions{Delay: testpeer.DelayData(time.Second)})
	_, portStr, _ := net.SplitHostPort(home.Addr())
	port, _ = strconv.Atoi(portStr)
	return home, port
}

// relayStage runs the etrn stage against the relay at addr for domains,
// the quiet wait watching deliveries to homePort (loopback counts) for
// quiet, and returns what RunStage returned and the session's transcript.
func relayStage(addr string, domains []string, homePort int, quiet time.Duration) (Result, *transcript, error) {
	var tr transcript
	res, err := RunStage(context.Background(), StageOptions{
		Servers: []Server{{Addr: addr, Domains: domains, TLS: "none", Helo: "home.test", Timeout: 10 * time.Second}},
		Ports:   []int{homePort}, CountLoopback: true,
		Quiet: quiet, QuietMax: time.Minute,
		Trace: func(_, l string) { tr.add(l) },
	}, nil)
	return res, &tr, err
}
