package fetch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/fetch/imap/imaptest"
	"github.com/linkctl/linkctl/fetch/pop3/pop3test"
	"github.com/linkctl/linkctl/internal/authmech"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
)

// OAuth2 through the engine, with the token from a password_command helper
// (here `cat FILE`, the file standing for the helper's fresh token). The
// hidden danger is the expired token: the run ends with exit 3 and a
// message pointing at the token helper, nothing delivered, nothing
// deleted, and the token itself in no error. Once the helper prints a
// fresh token, the next run fetches everything.
func TestOAuth2ExpiredThenFreshToken(t *testing.T) {
	const fresh, expired = "ya29.fresh-Token", "ya29.expired-Token"
	for _, proto := range []string{"pop3", "imap"} {
		for _, mech := range []authmech.Mech{authmech.XOAuth2, authmech.OAuthBearer} {
			t.Run(proto+"/"+string(mech), func(t *testing.T) {
				dir := t.TempDir()
				tokenFile := filepath.Join(dir, "token")
				os.WriteFile(tokenFile, []byte(expired+"\n"), 0o600)
				helper := config.Secret{Command: []string{"cat", tokenFile}}
				password := func(ctx context.Context) (string, error) { return helper.Get(ctx) }

				tgt := &fakeTarget{}
				acct := Account{Name: "oauth", Proto: proto, Server: "mail.example.net", Target: tgt, To: []string{"chavez"}}
				var left func() int
				switch proto {
				case "pop3":
					srv := &pop3test.Server{User: "alice@example.net", Pass: "unused", Token: fresh}
					fillMsgs(srv, 2)
					src := plainSource(srv)
					src.Password, src.Auth = password, mech
					acct.Open, left = src.Open, srv.Count
				case "imap":
					srv := imaptest.Start(t, imaptest.Options{UIDPlus: true, Token: fresh})
					srv.Append(t, "INBOX", imapMsg(1))
					srv.Append(t, "INBOX", imapMsg(2))
					src := IMAPSource{Addr: srv.Addr, TLS: netconn.TLSNone, User: srv.User, Password: password, Auth: mech, Timeout: 5 * time.Second}
					acct.Open, left = src.Open, func() int { return srv.Messages(t, "INBOX") }
				}
				opts := Options{Accounts: []Account{acct}, StateDir: dir}

				res, err := Run(context.Background(), opts, nil)
				if errkind.ExitCode(err) != 3 || errkind.IsTemporary(err) {
					t.Fatalf("expired token: err %v (exit %d), want a permanent auth error (exit 3)", err, errkind.ExitCode(err))
				}
				msg := err.Error()
				t.Log(msg)
				if !strings.Contains(msg, "token helper") || !strings.Contains(msg, "password_command") {
					t.Errorf("error does not point at the token helper: %v", err)
				}
				if strings.Contains(msg, "Token") || strings.Contains(res.Summary(), "Token") {
					t.Errorf("the token leaked: %v", err)
				}
				if len(tgt.got) != 0 || left() != 2 {
					t.Fatalf("expired token: delivered %d, %d left on the server", len(tgt.got), left())
				}

				os.WriteFile(tokenFile, []byte(fresh+"\n"), 0o600) // the helper refreshed it
				res, err = Run(context.Background(), opts, nil)
				if err != nil || res.Fetched() != 2 || len(tgt.got) != 2 || left() != 0 {
					t.Fatalf("fresh token: err %v, fetched %d, delivered %d, %d left", err, res.Fetched(), len(tgt.got), left())
				}
			})
		}
	}
}
