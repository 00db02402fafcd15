// Package authmech names how a mail account logs in: one type, [Mech],
// shared by the config (which parses and validates `auth:` once, with
// [Parse]) and the stages that log in (fetch's POP3 and IMAP sources, the
// IMAP client), which switch over the typed value and never parse a string
// again. A value outside [All] reaching a stage is a programming error, not
// a usage error: validation has already refused it.
//
// Which protocol takes which mechanism is validation's business too (apop
// is POP3's, RFC 1939 section 7); a stage given one it cannot speak reports
// it as an internal error.
package authmech

import (
	"fmt"
	"strings"
)

// Mech is a login mechanism, as written in the config's `auth:` key.
type Mech string

// The mechanisms. The zero value "" means Auto in every stage's Options.
const (
	Auto        Mech = "auto"        // the best the server offers
	Password    Mech = "password"    // POP3 USER/PASS (RFC 1939 section 7), IMAP LOGIN (RFC 3501 section 6.2.3)
	APOP        Mech = "apop"        // POP3 only (RFC 1939 section 7)
	Plain       Mech = "plain"       // SASL PLAIN (RFC 4616)
	Login       Mech = "login"       // SASL LOGIN (for IMAP: the LOGIN command)
	XOAuth2     Mech = "xoauth2"     // Google's and Microsoft's SASL XOAUTH2, an OAuth2 token as password
	OAuthBearer Mech = "oauthbearer" // SASL OAUTHBEARER (RFC 7628)
	External    Mech = "external"    // already authenticated by the stream (a plugin, a tunnel): no login
)

// All returns every mechanism a config may name, in the order help texts
// list them.
func All() []Mech {
	return []Mech{Auto, Password, APOP, Plain, Login, XOAuth2, OAuthBearer, External}
}

// Names returns the names of All, for "expected one of" hints.
func Names() []string {
	all := All()
	out := make([]string, len(all))
	for i, m := range all {
		out[i] = string(m)
	}
	return out
}

// Parse reads a config or flag value, ignoring case ("PLAIN" is plain).
func Parse(s string) (Mech, error) {
	for _, m := range All() {
		if strings.EqualFold(s, string(m)) {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown auth %q (expected one of: %s)", s, strings.Join(Names(), ", "))
}

// OAuth reports whether m sends an OAuth2 token instead of a password, so
// that a refusal can point at an expired token.
func (m Mech) OAuth() bool { return m == XOAuth2 || m == OAuthBearer }
