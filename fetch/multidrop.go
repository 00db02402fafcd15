package fetch

import (
	"fmt"
	"slices"
	"strings"

	"github.com/linkctl/linkctl/internal/errkind"
)

// Multidrop sorts one mailbox that holds the mail of a whole domain (an
// ISP's "catch-all" maildrop) among several local users.
//
// The recipients come from an envelope header only: the topmost field
// named Envelope, which the provider's final MTA wrote when it put the
// copy into the maildrop (Postfix Delivered-To or X-Original-To, Exim
// Envelope-To). Each copy in the maildrop names the recipient it was
// delivered for, Bcc recipients included, which the To and Cc headers do
// not name; guessing from To/Cc instead would lose Bcc mail and loop
// mailing lists, so the config refuses multidrop without an envelope
// header.
//
// For each address of that field: the QVirtual prefix is stripped (qmail
// virtual domains deliver "prefix-user@domain"), the domain must be one of
// LocalDomains (exactly, case-insensitive), and the local part becomes the
// local user name: every local part when Account.To holds "*", else only
// those that Account.To names. The explicit entries of Account.To (all but
// "*") are also the default: a message whose envelope names no local
// recipient goes to them (to: ['*', postmaster] sends strays to the
// postmaster). With no default the message is not delivered: it stays on
// the server, is reported, and after MaxFailures runs it is skipped (and
// reported) like any other message the local side refused. Nothing is
// dropped.
type Multidrop struct {
	Envelope     string   // header name, e.g. Delivered-To
	LocalDomains []string // domains whose recipients are local
	QVirtual     string   // prefix stripped from the envelope address
}

// NoRecipientError is a multidrop message whose envelope header names no
// local recipient while the account has no default recipient. It is
// permanent for the message (it will not change by retrying), so it counts
// towards MaxFailures, but it does not stop the account: the next message
// may well be for someone local.
type NoRecipientError struct {
	Header string
	Found  []string // the addresses the header named, if any
}

func (e *NoRecipientError) Error() string {
	var why string
	switch {
	case len(e.Found) == 0:
		why = fmt.Sprintf("it has no %s header", e.Header)
	default:
		why = fmt.Sprintf("its %s header names %s, none in localdomains", e.Header, strings.Join(e.Found, ", "))
	}
	return "no local recipient: " + why + "; it stays on the server (add a default recipient to the account's to:, e.g. [\"*\", postmaster])"
}

// recipients returns the local recipients of one multidrop message, or an
// error (classified errkind.Delivery, permanent) wrapping a
// *NoRecipientError.
func (md *Multidrop) recipients(h headerInfo, to []string) ([]string, error) {
	star := slices.Contains(to, "*")
	var defaults []string
	for _, t := range to {
		if t != "*" {
			defaults = append(defaults, t)
		}
	}
	var out []string
	for _, addr := range h.Envelope {
		user, ok := md.localUser(addr)
		if !ok {
			continue
		}
		if !star {
			i := slices.IndexFunc(defaults, func(d string) bool { return strings.EqualFold(d, user) })
			if i < 0 {
				continue
			}
			user = defaults[i]
		}
		if !slices.Contains(out, user) {
			out = append(out, user)
		}
	}
	if len(out) == 0 {
		out = defaults
	}
	if len(out) == 0 {
		nr := &NoRecipientError{Header: md.Envelope, Found: h.Envelope}
		return nil, errkind.WrapPermanent(errkind.Delivery, "multidrop", nr)
	}
	return out, nil
}

// localUser maps one envelope address to a local user name: QVirtual
// stripped, the domain one of LocalDomains, and a local part that is safe
// as an SMTP recipient and as a whole argv element of an MDA (no leading
// dash, no slash, no blanks or control characters).
func (md *Multidrop) localUser(addr string) (string, bool) {
	if q := md.QVirtual; q != "" && len(addr) >= len(q) && strings.EqualFold(addr[:len(q)], q) {
		addr = addr[len(q):]
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return "", false
	}
	local, domain := addr[:at], addr[at+1:]
	if !slices.ContainsFunc(md.LocalDomains, func(d string) bool { return strings.EqualFold(d, domain) }) {
		return "", false
	}
	if local[0] == '-' || local[0] == '.' {
		return "", false
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("/\\\"'`$|&;<>()[]{},:@%!*?", c) >= 0 {
			return "", false
		}
	}
	return local, true
}
