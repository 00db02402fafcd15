package fetch

import (
	"fmt"
	"strings"

	"github.com/linkctl/linkctl/internal/authmech"
	"github.com/linkctl/linkctl/internal/errkind"
)

// oauthRefused turns a refused XOAUTH2/OAUTHBEARER login into an
// authentication error (exit 3, permanent) that points at the cause a
// user can act on: bearer tokens expire within the hour, so the token
// comes from password_command, a helper that must print a fresh one on
// every run. Other errors, and other mechanisms, pass unchanged.
func oauthRefused(proto, addr, user string, auth authmech.Mech, err error) error {
	if err == nil || !auth.OAuth() || errkind.KindOf(err) != errkind.Auth {
		return err
	}
	mech := strings.ToUpper(string(auth))
	return errkind.WrapPermanent(errkind.Auth, proto+" "+addr,
		fmt.Errorf("the OAuth2 token for %s was refused (%s; expired or revoked?): check the token helper, password_command must print a fresh access token each time it runs: %w", user, mech, err))
}
