package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// `linkctl demo --fast` is the README's first command: it must run the
// whole pipeline and exit 0 with every demo message where it belongs. A
// stage not built into this linkctl is left out of the demo (and said so),
// so the expectations follow the stages that are registered.
func TestDemoFast(t *testing.T) {
	out, errOut, code := linkctl(t, nil, "demo", "--fast", "--clean")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	_, flush := stageBuilders["flush"]
	_, etrn := stageBuilders["etrn"]
	if _, ok := stageBuilders["fetch"]; !ok {
		t.Fatal("no fetch stage: the demo cannot fetch")
	}
	delivered, sent, relay, queue := 7, 0, 3, 2 // 4 on POP3 + 3 on IMAP
	if etrn {
		delivered, relay = delivered+3, 0 // the relay's 3 held messages, after ETRN
	}
	if flush {
		sent, queue = 2, 0
	}
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^%d messages delivered into the Maildir `, delivered)).MatchString(out) {
		t.Errorf("want %d delivered; stdout:\n%s\nstderr:\n%s", delivered, out, errOut)
	}
	want := fmt.Sprintf("%d messages sent from the local queue; left behind: relay %d, POP3 0, IMAP 0, queue %d", sent, relay, queue)
	if !strings.Contains(out, want) {
		t.Errorf("want %q; stdout:\n%s\nstderr:\n%s", want, out, errOut)
	}
	for _, s := range []string{"flush", "etrn", "drop"} {
		if _, ok := stageBuilders[s]; !ok && !strings.Contains(errOut, "the "+s+" stage is not built") {
			t.Errorf("the demo does not say it left %s out:\n%s", s, errOut)
		}
	}
}

func TestDemoHelperIsHidden(t *testing.T) {
	out, _, _ := linkctl(t, nil, "help")
	if strings.Contains(out, "demo-helper") {
		t.Errorf("help lists the internal demo-helper:\n%s", out)
	}
}
