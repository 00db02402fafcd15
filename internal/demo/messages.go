package demo

import (
	"fmt"
	"strings"
	"time"
)

// msg is one demo message: envelope and text (LF line endings; the servers
// convert to CRLF on the wire).
type msg struct {
	From string
	To   string
	Text string
}

// letter builds a plausible message. The body is long enough that, at
// modem speed, the user sees bytes move and what pipelining saves.
func letter(from, to, subject, id string, date time.Time, paras ...string) msg {
	var b strings.Builder
	fmt.Fprintf(&b, "Return-Path: <%s>\n", from)
	fmt.Fprintf(&b, "From: %s\nTo: %s\nSubject: %s\n", from, to, subject)
	fmt.Fprintf(&b, "Date: %s\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@demo.example>\nMIME-Version: 1.0\n", id)
	b.WriteString("Content-Type: text/plain; charset=utf-8\n\n")
	for _, p := range paras {
		b.WriteString(p)
		b.WriteString("\n\n")
	}
	// A line starting with a dot exercises dot-stuffing end to end.
	b.WriteString(".signature follows\n-- \nsent from the linkctl demo\n")
	return msg{From: from, To: to, Text: b.String()}
}

var lorem = strings.Repeat("The relay held this message while the line was down; "+
	"it left when the link came up and linkctl asked for it. ", 12)

func sampleMessages(base time.Time) (relayed, pop, imapMsgs, outbound []msg) {
	d := func(h int) time.Time { return base.Add(-time.Duration(h) * time.Hour) }
	relayed = []msg{
		letter("orders@supplier.example", "sales@demo.example", "Order 4711 confirmed", "r1", d(9),
			"Your order 4711 has shipped and should arrive on Thursday.", lorem),
		letter("anna@partner.example", "you@demo.example", "Meeting notes", "r2", d(7),
			"Notes from Tuesday attached inline below.", lorem, lorem),
		letter("noreply@bank.example", "you@demo.example", "Your statement is ready", "r3", d(3),
			"Your monthly statement can be viewed online.", lorem),
	}
	pop = []msg{
		letter("mum@family.example", "you@isp.example", "Sunday lunch", "p1", d(30),
			"Are you coming on Sunday? Bring the photos.", lorem),
		letter("list@lists.example", "you@isp.example", "[gardening] Tomatoes in November", "p2", d(20),
			"Has anyone had luck keeping tomatoes going this late?", lorem, lorem),
		letter("ticket@helpdesk.example", "you@isp.example", "Ticket #2231 resolved", "p3", d(12),
			"Your ticket has been resolved. Reply to reopen it.", lorem),
		letter("newsletter@shop.example", "you@isp.example", "Winter sale", "p4", d(5),
			"Everything must go.", lorem, lorem, lorem),
	}
	imapMsgs = []msg{
		letter("boss@work.example", "you@work.example", "Quarterly report", "i1", d(26),
			"Please have the figures ready by Friday.", lorem, lorem),
		letter("it@work.example", "you@work.example", "VPN maintenance tonight", "i2", d(8),
			"The VPN will be down between 22:00 and 23:00.", lorem),
		letter("colleague@work.example", "you@work.example", "Re: lunch?", "i3", d(1),
			"Sure, 12:30 at the usual place.", lorem),
	}
	outbound = []msg{
		letter("you@demo.example", "anna@partner.example", "Re: Meeting notes", "o1", d(2),
			"Thanks, looks good to me.", lorem),
		letter("you@demo.example", "orders@supplier.example", "Order 4712", "o2", d(1),
			"Please send another crate of the same.", lorem),
	}
	return relayed, pop, imapMsgs, outbound
}

// crlf converts LF line endings to CRLF for the wire.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
