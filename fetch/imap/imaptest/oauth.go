package imaptest

import (
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"
)

// tokenSession adds the bearer-token mechanisms to the in-memory session.
type tokenSession struct {
	imapserver.Session
	s     *Server
	token string
}

func (t *tokenSession) AuthenticateMechanisms() []string {
	return []string{"PLAIN", "XOAUTH2", "OAUTHBEARER"}
}

var errBadToken = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "invalid token"}

func (t *tokenSession) Authenticate(mech string) (sasl.Server, error) {
	switch mech {
	case "PLAIN":
		return sasl.NewPlainServer(func(_, user, pass string) error { return t.Login(user, pass) }), nil
	case "XOAUTH2", "OAUTHBEARER":
		return &bearerServer{t: t, mech: mech}, nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "SASL mechanism not supported"}
}

// bearerServer checks one XOAUTH2 or OAUTHBEARER response; a wrong token
// gets the error challenge of RFC 7628 section 3.2.2 first.
type bearerServer struct {
	t      *tokenSession
	mech   string
	asked  bool
	failed bool
}

func (b *bearerServer) Next(resp []byte) ([]byte, bool, error) {
	if b.failed {
		return nil, true, errBadToken
	}
	if resp == nil && !b.asked {
		b.asked = true
		return []byte{}, false, nil
	}
	prefix := "user=" + b.t.s.User + "\x01"
	if b.mech == "OAUTHBEARER" {
		prefix = "n,a=" + b.t.s.User + ",\x01"
	}
	r := string(resp)
	// The key/value pairs (host, port, auth) in any order, "\x01\x01" at the end.
	if strings.HasPrefix(r, prefix) && strings.HasSuffix(r, "\x01\x01") &&
		slices.Contains(strings.Split(strings.TrimSuffix(r[len(prefix):], "\x01\x01"), "\x01"), "auth=Bearer "+b.t.token) {
		if err := b.t.Login(b.t.s.User, b.t.s.Pass); err != nil {
			return nil, true, err
		}
		return nil, true, nil
	}
	b.failed = true
	return []byte(`{"status":"invalid_token","schemes":"bearer"}`), false, nil
}
