package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/internal/testpeer"
)

// `linkctl demo --fast` is the README's first command: it must run the
// whole pipeline and exit 0 with every demo message delivered.
func TestDemoFast(t *testing.T) {
	out, errOut, code := linkctl(t, nil, "demo", "--fast", "--clean")
	if strings.Contains(errOut, "is not built into this version") {
		testpeer.Missing(t, "a stage the demo runs is not registered yet: "+errOut)
	}
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// 3 held at the relay (ETRN) + 4 on POP3 + 3 on IMAP.
	if !regexp.MustCompile(`(?m)^10 messages delivered into the Maildir `).MatchString(out) {
		t.Errorf("stdout:\n%s", out)
	}
	if !strings.Contains(out, "2 messages sent from the local queue; left behind: relay 0, POP3 0, IMAP 0, queue 0") {
		t.Errorf("stdout:\n%s", out)
	}
}

func TestDemoHelperIsHidden(t *testing.T) {
	out, _, _ := linkctl(t, nil, "help")
	if strings.Contains(out, "demo-helper") {
		t.Errorf("help lists the internal demo-helper:\n%s", out)
	}
}
