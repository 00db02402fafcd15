package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// `linkctl demo --fast` is the README's first command: it must run the
// whole pipeline and exit 0 with every demo message where it belongs.
func TestDemoFast(t *testing.T) {
	out, errOut, code := linkctl(t, nil, "demo", "--fast", "--clean")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	delivered, sent, relay, queue := 10, 2, 0, 0 // 4 on POP3 + 3 on IMAP + the relay's 3 after ETRN; the queue's 2 sent
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^%d messages delivered into the Maildir `, delivered)).MatchString(out) {
		t.Errorf("want %d delivered; stdout:\n%s\nstderr:\n%s", delivered, out, errOut)
	}
	want := fmt.Sprintf("%d messages sent from the local queue; left behind: relay %d, POP3 0, IMAP 0, queue %d", sent, relay, queue)
	if !strings.Contains(out, want) {
		t.Errorf("want %q; stdout:\n%s\nstderr:\n%s", want, out, errOut)
	}
}

func TestDemoHelperIsHidden(t *testing.T) {
	out, _, _ := linkctl(t, nil, "help")
	if strings.Contains(out, "demo-helper") {
		t.Errorf("help lists the internal demo-helper:\n%s", out)
	}
}
