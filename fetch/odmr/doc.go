// Package odmr is On-Demand Mail Relay (RFC 2645, `proto: odmr`): the
// dial-up site's side of a relay that holds its mail.
//
// The flow of one session:
//
//  1. connect to the relay's ODMR port (366), read its 220 greeting;
//  2. EHLO, STARTTLS when configured (then EHLO again), and AUTH, which
//     RFC 2645 section 4 requires before ATRN;
//  3. `ATRN domain,domain` (section 4.2): 250 means "OK now reversing the
//     connection", 453 "you have no mail" (not an error), 450 or 5xx a
//     refusal;
//  4. the roles turn around on the same connection: linkctl is now the SMTP
//     server (Serve), greets, and for each message the relay sends, delivers
//     it into the local MTA through a deliver.Target and answers 250 only
//     after the local side accepted it (451 when it failed temporarily, so
//     the relay keeps it), until the relay says QUIT.
//
// A relay that drops the connection mid-DATA leaves the message with the
// relay: a truncated message is never handed to the local side.
package odmr
