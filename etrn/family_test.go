package etrn

import (
	"context"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/internal/scripted"
)

// TestETRNFamilyReadings: the 250 to ETRN is explained as the relay's own
// (from its greeting, or the reply's wording), never as Postfix's for
// every server.
func TestETRNFamilyReadings(t *testing.T) {
	for _, tc := range []struct {
		greeting, reply, want, not string
	}{
		{"220 mx.test ESMTP Postfix (Debian/GNU)", "250 Queuing started", "Postfix answers 250 Queuing started", "Exim"},
		{"220 mx.test ESMTP Exim 4.96 Sun, 06 Dec 2026 02:40:21 +0000", "250 OK", "Exim answers 250 OK", "Postfix"},
		{"220 mx.test ESMTP Sendmail 8.17.1.9/8.17.1.9; Sun, 6 Dec 2026", "250 2.0.0 Queuing for node etrn.test started", "Sendmail answers", "Postfix"},
		{"220 mx.test ESMTP ready", "250 2.0.0 Queuing for node etrn.test started", "Sendmail answers", "Postfix"},
		{"220 mx.test ESMTP ready", "250 OK", "does not say whether any mail is waiting", "Postfix"},
		{"220 mx.test ESMTP Exim 4.96", "458 Internal failure", "tainted", "Postfix"},
		{"220 mx.test ESMTP Exim 4.96", "458 Administrative prohibition", "acl_smtp_etrn", "tainted"},
		{"220 mx.test ESMTP Exim 4.96", "459 no", "acl_smtp_etrn", "fast_flush_domains"},
		{"220 mx.test ESMTP Sendmail 8.17.1.9", "459 no", "noetrn", "fast_flush_domains"},
	} {
		script := []string{"S: " + tc.greeting, "C: EHLO client.test", "S: 250-mx.test", "S: 250 ETRN",
			"C: ETRN etrn.test", "S: " + tc.reply, "C: QUIT", "S: 221 Bye", "CLOSE"}
		srv := scripted.Start(t, script)
		res := AskConn(context.Background(), srv.Conn, plainServer("etrn.test"), nil, nil)
		srv.Wait(t)
		r := res.Domains[0].Reading
		if !strings.Contains(r, tc.want) || strings.Contains(r, tc.not) {
			t.Errorf("%s / %s: reading %q, want %q and not %q", tc.greeting, tc.reply, r, tc.want, tc.not)
		}
	}
}
