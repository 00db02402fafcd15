package etrn

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/testpeer"
)

// TestEximRelayETRN: a real Exim holds mail for etrn.test (queue_only);
// linkctl's etrn stage asks for it; Exim runs the taint-safe
// smtp_etrn_command of docs/troubleshooting.md (exim -R with the domain
// looked up in a file) and delivers to the test's home listener; the
// stage returns after that delivery, and explains Exim's 250 OK as Exim's.
func TestEximRelayETRN(t *testing.T) {
	testpeer.Short(t)
	home, homePort := slowHome(t)
	e := testpeer.StartExim(t, testpeer.EximOptions{NextHop: home.Addr(), Daemon: true, ETRNDomains: []string{"etrn.test"}})
	e.Submit("far@away.test", "chavez@etrn.test", "held for ETRN")

	res, tr, err := relayStage(e.Addr(), []string{"etrn.test", "other.test"}, homePort, 3*time.Second)
	t.Logf("exim %s transcript:\n%s", e.Version, tr.String())
	// other.test is not in the lookup file: the lookup fails, Exim 458.
	if err == nil || res.Servers[0].Domains[1].Reply.Code != 458 {
		t.Errorf("err %v, other.test reply %v: want 458 for a domain not in the file\n%s", err, res.Servers[0].Domains[1].Reply, e.Log())
	}
	d := res.Servers[0].Domains[0]
	if d.Reply.Code != 250 || !strings.Contains(d.Reading, "Exim answers 250 OK") {
		t.Errorf("reply %v reading %q, want 250 explained as Exim's", d.Reply, d.Reading)
	}
	if n := len(home.Messages()); n != 1 {
		t.Fatalf("home got %d messages when the stage returned, want 1\n%s", n, e.Log())
	}
	if !strings.Contains(e.Log(), "-R etrn.test") {
		t.Errorf("exim's log shows no queue run for etrn.test:\n%s", e.Log())
	}
}

// TestEximETRNTaintedRecipe: the usual `smtp_etrn_command = exim -R
// $domain` fails Exim 4.94+'s taint check; the client sees 458 and the
// explanation points at the taint-safe recipe.
func TestEximETRNTaintedRecipe(t *testing.T) {
	testpeer.Short(t)
	home := testpeer.StartSink(t, testpeer.SinkOptions{})
	e := testpeer.StartExim(t, testpeer.EximOptions{NextHop: home.Addr(), Daemon: true, ETRNDomains: []string{"etrn.test"}, ETRNTainted: true})
	e.Submit("far@away.test", "chavez@etrn.test", "held for ETRN")
	res := Ask(context.Background(), Server{Addr: e.Addr(), Domains: []string{"etrn.test"}, TLS: "none", Helo: "home.test", Timeout: 10 * time.Second}, nil, nil)
	d := res.Domains[0]
	t.Logf("reply %v: %s", d.Reply, d.Reading)
	if d.Reply.Code != 458 || !strings.Contains(d.Reading, "tainted") || !strings.Contains(d.Reading, "troubleshooting") {
		t.Errorf("reply %v reading %q, want 458 explained as Exim's taint check\n%s", d.Reply, d.Reading, e.Log())
	}
}

// TestEximWithoutETRNACL: without acl_smtp_etrn Exim does not offer ETRN
// (docs/troubleshooting.md says so); linkctl does not send it.
func TestEximWithoutETRNACL(t *testing.T) {
	testpeer.Short(t)
	e := testpeer.StartExim(t, testpeer.EximOptions{NextHop: testpeer.ReservePort(t), Daemon: true})
	res := Ask(context.Background(), Server{Addr: e.Addr(), Domains: []string{"etrn.test"}, TLS: "none", Helo: "home.test", Timeout: 10 * time.Second}, nil, nil)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "does not offer ETRN") || res.Domains[0].Sent {
		t.Errorf("err %v, sent %v: want ETRN not offered and not sent", res.Err, res.Domains[0].Sent)
	}
}
