package fetchmailrc

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/internal/errkind"
)

func mustParse(t *testing.T, src string) *RC {
	t.Helper()
	rc, err := Parse("test.rc", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return rc
}

func TestBookSample(t *testing.T) {
	data, err := os.ReadFile("testdata/book-sample.rc")
	if err != nil {
		t.Fatal(err)
	}
	rc := mustParse(t, string(data))
	if rc.Set.Logfile != "/var/log/fetchmail.log" || rc.Set.Syslog == nil || !*rc.Set.Syslog {
		t.Errorf("globals = %+v", rc.Set)
	}
	if len(rc.Entries) != 4 {
		t.Fatalf("got %d entries, want 4", len(rc.Entries))
	}
	// 1: proto and user come from defaults.
	e := rc.Entries[0]
	if e.Name != "pop.essadm.org" || e.Proto != "pop3" || len(e.Users) != 1 ||
		e.Users[0].Remote != "ispuser" || *e.Users[0].Password != "password" {
		t.Errorf("entry 1 = %+v user %+v", e, e.Users[0])
	}
	// 2: the noise words vanish; there/is/here name remote and local user.
	u := rc.Entries[1].Users[0]
	if rc.Entries[1].Proto != "imap" || u.Remote != "rjchavez24" || *u.Password != "another-password" ||
		strings.Join(u.Local, ",") != "chavez" {
		t.Errorf("entry 2 user = %+v", u)
	}
	// 3: via names the real host.
	e = rc.Entries[2]
	if e.Name != "getmail" || e.Via != "pop.essadm.org" || e.Host() != "pop.essadm.org" || e.Proto != "etrn" {
		t.Errorf("entry 3 = %+v", e)
	}
	// 4: auth ssh through a plugin.
	e = rc.Entries[3]
	if e.Auth != "ssh" || e.Plugin != "ssh %h /usr/sbin/imapd" || e.Proto != "imap" {
		t.Errorf("entry 4 = %+v", e)
	}
	if e.Line != 7 || e.Col != 1 {
		t.Errorf("entry 4 at %d:%d, want 7:1", e.Line, e.Col)
	}
}

func TestBookMultidrop(t *testing.T) {
	data, err := os.ReadFile("testdata/book-multidrop.rc")
	if err != nil {
		t.Fatal(err)
	}
	rc := mustParse(t, string(data))
	e := rc.Entries[0]
	u := e.Users[0]
	if strings.Join(e.LocalDomains, ",") != "zoas.org,ahania.com" || u.Remote != "ispuser" ||
		strings.Join(u.Local, ",") != "trucks" || !u.Wildcard {
		t.Errorf("entry = %+v, user = %+v", e, u)
	}
}

func TestSeveralUsersAndOptions(t *testing.T) {
	rc := mustParse(t, `
# two users on one server, options in every spelling
set daemon 900
set postmaster "root"
set no bouncemail
poll mail.example.net with proto IMAP port 993 and options timeout 30, interval 2:
    user 'alice' there with pass "s3cr\"et\x41" is alice here; ssl keep fetchall limit 100000
        folder INBOX "Sent Items" fetchlimit 50 expunge 10 smtphost localhost/2525
    user bob here is "bob.remote" there, no keep nokeep sslproto TLS1.2 no sslcertck mda "/usr/bin/procmail -d %T"
        preconnect "ssh -f -L 1110:pop:110 gw sleep 20" batchlimit 5 idle
skip old.example.net user x
`)
	if rc.Set.Daemon != 900 || rc.Set.Postmaster != "root" || len(rc.Set.Other) != 1 || rc.Set.Other[0].Name != "no bouncemail" {
		t.Errorf("globals = %+v", rc.Set)
	}
	e := rc.Entries[0]
	if e.Proto != "imap" || e.Port != "993" || e.Timeout == nil || *e.Timeout != 30 || e.Interval != 2 || len(e.Users) != 2 {
		t.Fatalf("entry = %+v", e)
	}
	a, b := e.Users[0], e.Users[1]
	if a.Remote != "alice" || *a.Password != `"s3cr"etA"` /* fetchmail: a bare word, quotes kept */ || !*a.SSL || !*a.Keep || !*a.FetchAll ||
		*a.Limit != 100000 || strings.Join(a.Folders, "|") != "INBOX|Sent Items" || *a.FetchLimit != 50 ||
		*a.Expunge != 10 || a.SMTPHosts[0] != "localhost/2525" {
		t.Errorf("alice = %+v", a)
	}
	if b.Remote != "bob.remote" || strings.Join(b.Local, ",") != "bob" || *b.Keep || *b.SSLProto != "TLS1.2" ||
		*b.SSLCertCk || b.MDA != "/usr/bin/procmail -d %T" || *b.BatchLimit != 5 || !*b.Idle ||
		!strings.HasPrefix(b.Preconnect, "ssh -f") {
		t.Errorf("bob = %+v", b)
	}
	if s := rc.Entries[1]; !s.Skip || s.Name != "old.example.net" {
		t.Errorf("skip entry = %+v", s)
	}
}

func TestDefaultsMerge(t *testing.T) {
	rc := mustParse(t, `
poll before.example user a
defaults proto pop3 ssl user "def" keep
poll a.example
poll b.example proto imap user "own" no keep
`)
	if rc.Entries[0].Proto != "" || rc.Entries[0].Users[0].SSL != nil {
		t.Errorf("defaults leaked backwards into %+v", rc.Entries[0])
	}
	a := rc.Entries[1]
	if a.Proto != "pop3" || a.Users[0].Remote != "def" || !*a.Users[0].SSL || !*a.Users[0].Keep {
		t.Errorf("a = %+v %+v", a, a.Users[0])
	}
	b := rc.Entries[2]
	if b.Proto != "imap" || b.Users[0].Remote != "own" || *b.Users[0].Keep || !*b.Users[0].SSL {
		t.Errorf("b = %+v %+v", b, b.Users[0])
	}
}

func TestMappingAndWildcard(t *testing.T) {
	rc := mustParse(t, `poll x localdomains a.org user box to joe "jane"=jb * here`)
	u := rc.Entries[0].Users[0]
	if strings.Join(u.Local, ",") != "joe,jb" || !u.Wildcard || len(u.Other) != 1 || u.Other[0].Name != "mapping" {
		t.Errorf("user = %+v", u)
	}
}

func TestErrorsNameLineAndColumn(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"poll a\n  user b pass \"open", `test.rc:2:15: unterminated string`},
		{"poll a proto smtp", `test.rc:1:14: unknown protocol "smtp"`},
		{"poll a\n\tfrobnicate", `test.rc:2:2: unknown option "frobnicate"`},
		{"poll a limit lots", `test.rc:1:14: expected a number after limit`},
		{"user b", `test.rc:1:1: expected poll, skip, defaults or set`},
		{"set frob", `test.rc:1:5: unknown set option "frob"`},
		{"poll a \"stray\"", `test.rc:1:8: unexpected "stray"`},
		{"poll", `test.rc:1:5: expected the server name after poll, found end of file`},
		{"poll a no proto", `test.rc:1:11: "proto" cannot be negated`},
		{"poll a user b is", `test.rc:1:17: expected user names after is`},
		{"poll a user b is c d there", `only one remote user name`},
		{"poll a smtphost", `expected one or more values after smtphost`},
	} {
		_, err := Parse("test.rc", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q", tc.src, err, tc.want)
			continue
		}
		if errkind.KindOf(err) != errkind.Usage {
			t.Errorf("Parse(%q): kind %v, want usage", tc.src, errkind.KindOf(err))
		}
		var se *SyntaxError
		if !errors.As(err, &se) || se.Line == 0 {
			t.Errorf("Parse(%q): no SyntaxError with a line in %v", tc.src, err)
		}
	}
}

func TestLexEscapesAndComments(t *testing.T) {
	toks, err := lex("x", []byte("a 'b c' # comment \"not a string\n\"d\\te\\101\\x42\\\\\" wants, e"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range toks[:len(toks)-1] {
		got = append(got, tk.text)
	}
	// \101 is decimal in fetchmail (101 = 'e'), not octal.
	want := []string{"a", "b c", "d\teeB\\", "e"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("tokens %q, want %q", got, want)
	}
	if toks[2].line != 2 || toks[2].col != 1 {
		t.Errorf("third token at %d:%d, want 2:1", toks[2].line, toks[2].col)
	}
}

// fetchmail's lexer takes the longest match, so a backslash does not escape
// a quote, a word may hold quotes, and the word after user/password/is/to
// is a value even when it looks like a keyword or noise word. Each case was
// checked with fetchmail --configdump (testdata/corpus/29-quoting.rc).
func TestLexLikeFetchmail(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`"abc"`, "abc"},
		{`"a\"b"`, `"a"b"`},
		{`'it''s'`, `'it''s'`},
		{`'a"b'`, `a"b`},
		{`"a b"`, "a b"},
		{`"\101"`, "e"},
		{`"\060x"`, "0x"},
		{`"\x41"`, "A"},
		{`"\0101"`, "\b1"},
		{`"\1234"`, "{4"},
		{`"\q"`, "q"},
		{`"a\"`, "a"},
		{`with`, "with"},
		{`keep`, "keep"},
		{`a\tb`, "a\tb"},
	} {
		rc, err := Parse("x", []byte("poll x.example proto pop3 user u password "+tc.src+" is u here"))
		if err != nil {
			t.Errorf("%s: %v", tc.src, err)
			continue
		}
		if got := *rc.Entries[0].Users[0].Password; got != tc.want {
			t.Errorf("password %s = %q, want %q", tc.src, got, tc.want)
		}
	}
}
