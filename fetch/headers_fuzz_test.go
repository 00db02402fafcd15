package fetch

import (
	"strings"
	"testing"
	"time"
)

// FuzzReceivedLine: whatever the server, host, protocol, account or
// recipient hold, the trace header stays one header field (no injected
// Bcc: or other field): its first line starts with "Received: from ",
// every other line is a folded continuation, and it ends with one LF.
func FuzzReceivedLine(f *testing.F) {
	f.Add("pop.example.net", "gw.example.org", "pop3", "isp", "chavez")
	f.Add("a\r\nBcc: x", "h\n", "I\nMAP", "(x)\\", "<a@b>\r\nX: y")
	f.Fuzz(func(t *testing.T, server, host, proto, account, rcpt string) {
		line := string(receivedLine(server, host, proto, account, []string{rcpt}, time.Unix(0, 0)))
		if !strings.HasPrefix(line, "Received: from ") || !strings.HasSuffix(line, "\n") || strings.HasSuffix(line, "\n\n") {
			t.Fatalf("malformed: %q", line)
		}
		for i, l := range strings.Split(strings.TrimSuffix(line, "\n"), "\n") {
			if i > 0 && !strings.HasPrefix(l, "\t") || strings.ContainsAny(l, "\r\x00") {
				t.Fatalf("line %d %q of %q", i, l, line)
			}
		}
	})
}
