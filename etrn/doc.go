// Package etrn asks relays to release the mail they hold for our domains
// (SMTP ETRN, RFC 1985) and then waits until that mail has finished
// arriving.
//
// The flow of one relay ([Ask]): dial (netconn.Dial, implicit TLS there
// when configured) and tie the conn to the context; read the 220 greeting;
// EHLO with our FQDN; STARTTLS (RFC 3207) unless the server is tls:
// implicit or tls: none, refusing a server that does not offer it and any
// byte it sent before the handshake, then a fresh reader and EHLO again;
// AUTH PLAIN, LOGIN or CRAM-MD5 (only over TLS unless tls: none is written
// out); one ETRN per argument (node, @domain, #queue), unless EHLO did not
// list ETRN (Server.Force sends it anyway); QUIT. Every read and write has a
// deadline; replies are read with RFC 5321's 512-octet line limit and a cap
// on continuation lines, so a hostile or silent server ends in a clear
// protocol or timeout error. The transcript goes to a trace function with
// AUTH secrets as "***".
//
// Each reply is read by [Classify] (250/252/253 started, 251 nothing
// waiting, 458 and other 4xx try later, 459 and 5xx refused, 530 needs
// AUTH) and explained in plain words by [Reading]; errors are classified
// with errkind (Refused: exit 7, Network: 2, Auth: 3, Protocol: 4).
//
// The etrn stage ([RunStage]) asks every configured relay, a bounded number
// at once, then waits for inbound SMTP to go quiet ([WaitQuiet]): the relay
// delivers over new connections to our MX, so it counts ESTABLISHED TCP
// sessions on the local SMTP port(s) from non-loopback peers with netlink
// sock_diag ([CountInbound], internal/sessions). The wait is done when no
// session has been open for a window learned from the link: twice the gap
// between the ETRN reply and the relay's first session plus four round
// trips (timed on the relay's replies), at least 1.5 times any pause
// between batches seen before, within [QuietFloor, Quiet] (1 s and 10 s
// by default: etrn.quiet is the cap); or when no session opened at all
// (Quiet with nothing learned, else a multiple of the learned gap); or at
// QuietMax (5 min by default; reported, not an error). What it learned is
// kept in the state directory ([LearnedFile]) for the next run. When every
// reply was 251 nothing is coming and the wait is skipped;
// [Result.WentQuiet] tells the drop stage whether inbound mail is known to
// be finished.
package etrn
