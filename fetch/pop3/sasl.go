package pop3

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"strings"
)

// SASL is one SASL mechanism's client side (RFC 4422). It has the same
// shape as github.com/emersion/go-sasl's Client, so those work too.
// Start returns the mechanism name and the initial response (nil when the
// mechanism starts with a server challenge); Next answers a challenge.
type SASL interface {
	Start() (mech string, ir []byte, err error)
	Next(challenge []byte) (response []byte, err error)
}

// PlainAuth is SASL PLAIN (RFC 4616) without an authorization identity.
func PlainAuth(user, pass string) SASL { return &plainAuth{user, pass} }

type plainAuth struct{ user, pass string }

func (a *plainAuth) Start() (string, []byte, error) {
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass), nil
}

func (a *plainAuth) Next(challenge []byte) ([]byte, error) {
	// RFC 5034 section 4: a server that got no initial response sends an
	// empty challenge; anything after the response is unexpected.
	if len(challenge) == 0 {
		return []byte("\x00" + a.user + "\x00" + a.pass), nil
	}
	return nil, errors.New("unexpected PLAIN challenge")
}

// LoginAuth is the obsolete but widespread LOGIN mechanism
// (draft-murchison-sasl-login): the server asks for the user name, then the
// password. The initial response, when used, carries the user name.
func LoginAuth(user, pass string) SASL { return &loginAuth{user: user, pass: pass} }

type loginAuth struct {
	user, pass string
	step       int
}

func (a *loginAuth) Start() (string, []byte, error) {
	a.step = 1 // the user name goes as the initial response
	return "LOGIN", []byte(a.user), nil
}

func (a *loginAuth) Next(challenge []byte) ([]byte, error) {
	// Servers send "Username:" and "Password:" prompts; go by the prompt
	// when it is recognisable and by the order otherwise.
	c := strings.ToLower(string(challenge))
	switch {
	case strings.HasPrefix(c, "user"):
		a.step = 1
		return []byte(a.user), nil
	case strings.HasPrefix(c, "pass"):
		a.step = 2
		return []byte(a.pass), nil
	}
	a.step++
	switch a.step {
	case 1:
		return []byte(a.user), nil
	case 2:
		return []byte(a.pass), nil
	}
	return nil, errors.New("unexpected LOGIN challenge")
}

// XOAuth2Auth is Google's and Microsoft's XOAUTH2 bearer-token mechanism.
// On failure the server sends a JSON error as a challenge and expects an
// empty response before its -ERR.
func XOAuth2Auth(user, token string) SASL { return &xoauth2{user, token} }

type xoauth2 struct{ user, token string }

func (a *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + a.user + "\x01auth=Bearer " + a.token + "\x01\x01"), nil
}

func (a *xoauth2) Next(challenge []byte) ([]byte, error) {
	if len(challenge) == 0 { // two-step form: the server asks for the response
		_, ir, _ := a.Start()
		return ir, nil
	}
	return []byte{}, nil // the error details; acknowledge to get the -ERR
}

// OAuthBearerAuth is OAUTHBEARER (RFC 7628). On failure the server sends
// an error challenge and expects a single 0x01 (RFC 7628 section 3.2.3).
func OAuthBearerAuth(user, token string) SASL { return &oauthBearer{user, token} }

type oauthBearer struct{ user, token string }

func (a *oauthBearer) Start() (string, []byte, error) {
	return "OAUTHBEARER", []byte("n,a=" + a.user + ",\x01auth=Bearer " + a.token + "\x01\x01"), nil
}

func (a *oauthBearer) Next(challenge []byte) ([]byte, error) {
	if len(challenge) == 0 {
		_, ir, _ := a.Start()
		return ir, nil
	}
	return []byte{0x01}, nil
}

// apopDigest is the APOP argument of RFC 1939 section 7: the MD5 of the
// greeting's timestamp followed by the shared secret, in lower-case hex.
// MD5 is what the RFC prescribes; APOP is only used when configured.
func apopDigest(timestamp, secret string) string {
	sum := md5.Sum([]byte(timestamp + secret))
	return hex.EncodeToString(sum[:])
}

// apopTimestamp finds the msg-id style timestamp ("<...>") in a greeting
// (RFC 1939 section 7), or "".
func apopTimestamp(greeting string) string {
	i := strings.IndexByte(greeting, '<')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(greeting[i:], '>')
	if j < 0 {
		return ""
	}
	ts := greeting[i : i+j+1]
	if !strings.Contains(ts, "@") {
		return ""
	}
	return ts
}
