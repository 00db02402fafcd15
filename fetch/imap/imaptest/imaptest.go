// Package imaptest runs go-imap's in-memory IMAP server on a loopback
// port for tests (and demos) of code that fetches over IMAP: one user,
// an INBOX, capabilities chosen by the test (UIDPLUS and MOVE are off
// unless asked for, so that the fallbacks get tested too).
package imaptest

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// Server is a running in-memory IMAP server.
type Server struct {
	Addr       string // 127.0.0.1:port, plaintext
	User, Pass string
	user       *imapmemserver.User
}

// Options configures Start. The zero value gives IMAP4rev1 only (with
// IDLE, which go-imap always offers) and the user alice/secret.
type Options struct {
	UIDPlus bool
	Move    bool
	// Token, when set, is the one OAuth bearer token accepted with
	// AUTHENTICATE XOAUTH2 and OAUTHBEARER (RFC 7628); any other gets the
	// error challenge and then NO [AUTHENTICATIONFAILED], as an expired
	// token does. (The session then hides optional extensions such as MOVE.)
	Token string
}

// Start starts a server; t.Cleanup stops it.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	mem := imapmemserver.New()
	s := &Server{User: "alice", Pass: "secret"}
	s.user = imapmemserver.NewUser(s.User, s.Pass)
	if err := s.user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(s.user)
	caps := imap.CapSet{imap.CapIMAP4rev1: {}}
	if o.UIDPlus {
		caps[imap.CapUIDPlus] = struct{}{}
	}
	if o.Move {
		caps[imap.CapMove] = struct{}{}
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			if o.Token != "" {
				return &tokenSession{Session: mem.NewSession(), s: s, token: o.Token}, nil, nil
			}
			return mem.NewSession(), nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
		Logger:       quiet{},
	})
	ln, err := listen()
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	s.Addr = ln.Addr().String()
	return s
}

// Create makes a folder.
func (s *Server) Create(t testing.TB, folder string) {
	t.Helper()
	if err := s.user.Create(folder, nil); err != nil {
		t.Fatal(err)
	}
}

// Append stores a message in folder, with flags.
func (s *Server) Append(t testing.TB, folder, msg string, flags ...imap.Flag) {
	t.Helper()
	if _, err := s.user.Append(folder, lit{strings.NewReader(msg), int64(len(msg))}, &imap.AppendOptions{Flags: flags}); err != nil {
		t.Fatal(err)
	}
}

// Messages returns the number of messages in folder.
func (s *Server) Messages(t testing.TB, folder string) int {
	t.Helper()
	st, err := s.user.Status(folder, &imap.StatusOptions{NumMessages: true})
	if err != nil {
		t.Fatal(err)
	}
	return int(*st.NumMessages)
}

// Count returns the number of messages in folder with flag.
func (s *Server) Count(t testing.TB, folder string, flag imap.Flag) int {
	t.Helper()
	st, err := s.user.Status(folder, &imap.StatusOptions{NumMessages: true, NumUnseen: true, NumDeleted: true})
	if err != nil {
		t.Fatal(err)
	}
	switch flag {
	case imap.FlagSeen:
		return int(*st.NumMessages - *st.NumUnseen)
	case imap.FlagDeleted:
		return int(*st.NumDeleted)
	}
	t.Fatalf("imaptest: Count supports \\Seen and \\Deleted, not %s", flag)
	return 0
}

type lit struct {
	*strings.Reader
	n int64
}

func (l lit) Size() int64 { return l.n }

type quiet struct{}

func (quiet) Printf(string, ...any) {}
func (quiet) Println(...any)        {}
