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
// 4xx errors are temporary, 5xx permanent. The relay's family is guessed
// from the reply alone; [ClassifyFor] takes the one its greeting named.
func Classify(server, arg string, r Reply) (Outcome, error) {
	return ClassifyFor(FamilyOf("", r), server, arg, r)
}

// ClassifyFor is [Classify] with the explanations of family f.
func ClassifyFor(f Family, server, arg string, r Reply) (Outcome, error) {
	op := "etrn " + server + " " + arg
	Reading := f.Reading
	switch {
	case r.Code == 251:
		return NothingWaiting, nil
	case r.Class() == 2:
		return Started, nil
	case r.Code == 459:
		// RFC 1985 section 5: "Node not allowed". A 4xx code, but asking
		// again will not help until the relay's configuration changes.
		return Refused, errkind.Permanent(errkind.Refused, op, "%s: %s", r.String(), Reading(arg, r))
	case r.Code == 530:
		return Refused, errkind.Permanent(errkind.Auth, op, "%s: %s", r.String(), Reading(arg, r))
	case r.Class() == 4:
		return TryLater, errkind.Temporary(errkind.Refused, op, "%s: %s", r.String(), Reading(arg, r))
	}
	return Refused, errkind.Permanent(errkind.Refused, op, "%s: %s", r.String(), Reading(arg, r))
}

// Family is the kind of MTA a relay runs, as far as its greeting or its
// ETRN reply tell: the meaning of a 250 to ETRN and the knobs behind a
// refusal differ from one to the other.
type Family string

// The families whose replies are explained apart; Other is the rest.
const (
	Postfix  Family = "postfix"
	Exim     Family = "exim"
	Sendmail Family = "sendmail"
	Other    Family = ""
)

// FamilyOf guesses the relay's MTA from its 220 greeting ("ESMTP Postfix",
// "ESMTP Exim 4.96", "ESMTP Sendmail 8.17.1.9/...") and, when the
// greeting was changed by its admin, from an ETRN reply's wording
// (Postfix "Queuing started", Sendmail "Queuing for node X started").
func FamilyOf(greeting string, r Reply) Family {
	g := strings.ToLower(greeting)
	switch {
	case strings.Contains(g, "postfix"):
		return Postfix
	case strings.Contains(g, " exim"):
		return Exim
	case strings.Contains(g, "sendmail"):
		return Sendmail
	}
	t := strings.ToLower(r.Text())
	switch {
	case strings.Contains(t, "queuing for node"):
		return Sendmail
	case strings.Contains(t, "queuing started"):
		return Postfix
	}
	return Other
}

// Reading says in plain words what an ETRN reply means, for the admin who
// runs `linkctl etrn` to find out why mail does not arrive. The relay's
// family is guessed from the reply (see [Family.Reading]).
func Reading(arg string, r Reply) string {
	return FamilyOf("", r).Reading(arg, r)
}

// Reading says what reply r to ETRN arg means when family f answered it.
// A 250 means different things: Postfix says "Queuing started" for any
// domain it may flush, mail or not (postconf(5) fast_flush_domains); Exim
// says "OK" once its smtp_etrn_command has been started, and cannot know
// what the command will find (exim spec, "ETRN"); Sendmail says "Queuing
// for node X started" when it forked a queue run for recipients matching
// X. None of them says whether mail is waiting: RFC 1985 section 5 leaves
// that to 251-253, which only some servers send.
func (f Family) Reading(arg string, r Reply) string {
	what := "mail for " + arg
	switch {
	case strings.HasPrefix(arg, "#"):
		what = "the mail in queue " + strings.TrimPrefix(arg, "#")
	case strings.HasPrefix(arg, "@"):
		what = "mail for " + strings.TrimPrefix(arg, "@") + " and its subdomains"
	}
	switch r.Code {
	case 250:
		base := "accepted: the relay will deliver " + what + " that it holds, later and over a new connection to our MX. "
		switch f {
		case Postfix:
			return base + "(Postfix answers 250 Queuing started for any domain it is willing to flush, whether or not mail is waiting.)"
		case Exim:
			return base + "(Exim answers 250 OK once it has started its smtp_etrn_command, usually exim -R for the domain, " +
				"whether or not mail is waiting; if nothing arrives, look for that queue run in Exim's main log.)"
		case Sendmail:
			return base + "(Sendmail answers 250 Queuing for node ... started when it has forked a queue run for recipients " +
				"matching the argument, whether or not any are queued.)"
		}
		return base + "(The reply does not say whether any mail is waiting.)"
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
		if f == Exim && strings.Contains(strings.ToLower(r.Text()), "prohibition") {
			return "Exim does not take ETRN from us: its acl_smtp_etrn is unset or denies us; this is not a \"try later\"."
		}
		if f == Exim {
			return "Exim could not start its smtp_etrn_command for " + what + ". Exim 4.94 and later refuse a tainted " +
				"$domain on that command line (the usual -R $domain): look the domain up in a file instead " +
				"(docs/troubleshooting.md, \"ETRN recipes\"); or smtp_etrn_serialize found a run for it still going."
		}
		return "the relay cannot start delivery of " + what + " right now; try again later."
	case 459:
		base := "refused: the relay does not hold or will not flush " + what + ". "
		switch f {
		case Exim:
			return base + "Exim's acl_smtp_etrn must accept us for this argument."
		case Sendmail:
			return base + "Sendmail must not have PrivacyOptions=noetrn and must hold mail for the domain."
		}
		return base + "It must list the domain (Postfix: relay_domains and fast_flush_domains) and allow us to ask " +
			"(Postfix: smtpd_etrn_restrictions)."
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
