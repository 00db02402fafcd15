package etrn

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/linkctl/linkctl/internal/errkind"
)

// Outcome is what an ETRN reply means for the mail waiting at the relay.
type Outcome int

// Outcomes, from RFC 1985 section 5 and what real relays answer.
const (
	Started        Outcome = iota // 250, 252, 253: delivery of what is waiting has started
	NothingWaiting                // 251: accepted, but no mail is waiting
	TryLater                      // 458 and other 4xx but 459: not now
	Refused                       // 459 and 5xx: not for this argument
)

func (o Outcome) String() string {
	switch o {
	case Started:
		return "started"
	case NothingWaiting:
		return "nothing waiting"
	case TryLater:
		return "try later"
	}
	return "refused"
}

// Accepted reports whether the relay accepted the request.
func (o Outcome) Accepted() bool { return o == Started || o == NothingWaiting }

// Classify reads an ETRN reply: its outcome and, when the request was not
// accepted, a classified error (errkind.Refused; errkind.Auth for 530).
// 4xx errors are temporary, 5xx permanent.
func Classify(server, arg string, r Reply) (Outcome, error) {
	op := "etrn " + server + " " + arg
	switch {
	case r.Code == 251:
		return NothingWaiting, nil
	case r.Class() == 2:
		return Started, nil
	case r.Code == 459:
		// RFC 1985 section 5: "Node not allowed". A 4xx code, but asking
		// again will not help until the relay's configuration changes.
		return Refused, errkind.New(errkind.Refused, false, op, "%s: %s", r.String(), Reading(arg, r))
	case r.Code == 530:
		return Refused, errkind.New(errkind.Auth, false, op, "%s: %s", r.String(), Reading(arg, r))
	case r.Class() == 4:
		return TryLater, errkind.New(errkind.Refused, true, op, "%s: %s", r.String(), Reading(arg, r))
	}
	return Refused, errkind.New(errkind.Refused, false, op, "%s: %s", r.String(), Reading(arg, r))
}

// Reading says in plain words what an ETRN reply means, for the admin who
// runs `linkctl etrn` to find out why mail does not arrive.
func Reading(arg string, r Reply) string {
	what := "mail for " + arg
	switch {
	case strings.HasPrefix(arg, "#"):
		what = "the mail in queue " + strings.TrimPrefix(arg, "#")
	case strings.HasPrefix(arg, "@"):
		what = "mail for " + strings.TrimPrefix(arg, "@") + " and its subdomains"
	}
	switch r.Code {
	case 250:
		return "accepted: the relay will deliver " + what + " that it holds, later and over a new connection to our MX. " +
			"(Postfix answers 250 Queuing started for any domain it is willing to flush, whether or not mail is waiting.)"
	case 251:
		return "accepted, but no mail is waiting for " + strings.TrimLeft(arg, "@#") + "."
	case 252:
		return "accepted: " + what + " is waiting and its delivery has started; it arrives over a new connection to our MX."
	case 253:
		n := "some"
		if f := strings.Fields(r.Text()); len(f) > 0 {
			if _, err := strconv.Atoi(f[0]); err == nil {
				n = f[0]
			}
		}
		return fmt.Sprintf("accepted: %s message(s) waiting for %s; their delivery has started.", n, strings.TrimLeft(arg, "@#"))
	case 458:
		return "the relay cannot start delivery of " + what + " right now; try again later."
	case 459:
		return "refused: the relay does not hold or will not flush " + what + ". It must list the domain " +
			"(Postfix: relay_domains and fast_flush_domains) and allow us to ask (Postfix: smtpd_etrn_restrictions)."
	case 500, 502:
		return "the relay does not implement ETRN."
	case 501:
		return "the relay rejected the argument's syntax; try the form it expects: example.org, @example.org or #queue."
	case 503:
		return "the relay wants something else first (EHLO, or AUTH) before ETRN."
	case 530:
		return "the relay requires authentication before ETRN: give --user and --password-file (user/password in the config)."
	case 550:
		return "refused permanently for " + strings.TrimLeft(arg, "@#") + "."
	}
	switch r.Class() {
	case 2:
		return "accepted (an unusual reply code for ETRN)."
	case 4:
		return "a temporary failure: try again later."
	}
	return "a permanent failure: the relay will not do this."
}
