package fetch

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/internal/errkind"
)

func mdMsg(id, envelope, to string) string {
	return "Delivered-To: " + envelope + "\nReturn-Path: <sender@example.net>\nMessage-ID: <" + id + "@test>\nTo: " + to + "\nSubject: " + id + "\n\nbody " + id + "\n"
}

// deliveredTo maps each delivered Message-ID to its envelope recipients.
func deliveredTo(tgt *fakeTarget) map[string]string {
	tgt.mu.Lock()
	defer tgt.mu.Unlock()
	out := map[string]string{}
	for _, d := range tgt.got {
		out[parseHead(d.data).MessageID] = strings.Join(d.env.To, ",")
	}
	return out
}

func multidropEnv(t *testing.T, to ...string) *runEnv {
	e := newRunEnv(t, 0)
	e.acct.To = to
	e.acct.Multidrop = &Multidrop{Envelope: "Delivered-To", LocalDomains: []string{"example.org", "example.com"}, QVirtual: "mbox-"}
	return e
}

// The hidden danger of multidrop: a Bcc recipient. Carol was Bcc'd, so the
// To header names only Bob; the provider's copy for her carries
// "Delivered-To: carol@...". She gets it, Bob does not get her copy, a
// mailing list's older Delivered-To lower down is ignored, strays go to
// the default, and qvirtual prefixes are stripped.
func TestMultidropBccAndDefaults(t *testing.T) {
	e := multidropEnv(t, "*", "postmaster")
	e.srv.add(mdMsg("alice", "alice@example.org", "alice@example.org"))
	e.srv.add(mdMsg("bcc", "carol@example.org", "bob@example.org"))
	e.srv.add("Delivered-To: dave@Example.COM\nDelivered-To: list@example.org\nMessage-ID: <list@test>\n\nfrom a list\n")
	e.srv.add(mdMsg("stray", "someone@elsewhere.net", "someone@elsewhere.net"))
	e.srv.add(mdMsg("qmail", "mbox-erin@example.org", "erin@example.org"))
	e.srv.add(mdMsg("evil", "-oQ/tmp/x@example.org", "x@example.org"))
	res, err := e.run()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"<alice@test>": "alice", "<bcc@test>": "carol", "<list@test>": "dave",
		"<stray@test>": "postmaster", "<qmail@test>": "erin", "<evil@test>": "postmaster",
	}
	got := deliveredTo(e.tgt)
	for id, rc := range want {
		if got[id] != rc {
			t.Errorf("%s delivered to %q, want %q", id, got[id], rc)
		}
	}
	if a := res.Accounts[0]; a.Fetched != 6 || e.srv.count() != 0 {
		t.Fatalf("result %+v, %d left on the server", a, e.srv.count())
	}
	// The Received: line names the recipient of this copy.
	for _, d := range e.tgt.got {
		if parseHead(d.data).MessageID == "<bcc@test>" && !strings.Contains(string(d.data), "for <carol>") {
			t.Errorf("Received: line does not name carol:\n%s", d.data)
		}
	}
}

// Without a default, a message whose envelope names nobody local is not
// delivered and not deleted: it stays on the server, the run fails with a
// delivery error (exit 10) that says why, strays in a row do not stop the
// account, and after MaxFailures runs it is skipped and reported, still
// on the server.
func TestMultidropNoRecipientStaysOnServer(t *testing.T) {
	e := multidropEnv(t, "*")
	for _, id := range []string{"s1", "s2", "s3", "s4"} {
		e.srv.add(mdMsg(id, id+"@elsewhere.net", "x@example.org"))
	}
	e.srv.add("Message-ID: <noheader@test>\n\nno envelope header\n")
	e.srv.add(mdMsg("ok", "alice@example.org", "alice@example.org"))
	res, err := e.run()
	if errkind.ExitCode(err) != 10 {
		t.Fatalf("err %v (exit %d), want a delivery error", err, errkind.ExitCode(err))
	}
	var nr *NoRecipientError
	if !errors.As(err, &nr) || !strings.Contains(err.Error(), "no local recipient") || !strings.Contains(err.Error(), "to:") {
		t.Errorf("error does not explain: %v", err)
	}
	if a := res.Accounts[0]; a.Fetched != 1 || a.Failed != 5 || e.srv.count() != 5 {
		t.Fatalf("result %+v, %d on the server; want alice's delivered, 5 left", a, e.srv.count())
	}
	if got := deliveredTo(e.tgt); got["<ok@test>"] != "alice" || len(got) != 1 {
		t.Fatalf("delivered %v", got)
	}
	for range MaxFailures - 1 {
		e.run()
	}
	res, _ = e.run()
	if a := res.Accounts[0]; len(a.Poison) != 5 || e.srv.count() != 5 || len(e.tgt.got) != 1 {
		t.Fatalf("after %d runs: %+v, %d on the server", MaxFailures+1, a, e.srv.count())
	}
}

// Explicit names without "*": a recipient named in to: gets its mail, any
// other local recipient's mail goes to the defaults (all named users).
func TestMultidropExplicitNames(t *testing.T) {
	e := multidropEnv(t, "alice", "bob")
	e.srv.add(mdMsg("a", "Alice@example.org", "x"))
	e.srv.add(mdMsg("c", "carol@example.org", "x"))
	if _, err := e.run(); err != nil {
		t.Fatal(err)
	}
	got := deliveredTo(e.tgt)
	if got["<a@test>"] != "alice" || got["<c@test>"] != "alice,bob" {
		t.Fatalf("delivered %v", got)
	}
}

// A "*" without multidrop is refused before anything is fetched.
func TestStarWithoutMultidropRefused(t *testing.T) {
	e := newRunEnv(t, 2)
	e.acct.To = []string{"*"}
	_, err := e.run()
	if errkind.KindOf(err) != errkind.Usage || e.srv.count() != 2 || len(e.tgt.got) != 0 {
		t.Fatalf("err %v, %d left, %d delivered", err, e.srv.count(), len(e.tgt.got))
	}
}

func TestMultidropRecipients(t *testing.T) {
	md := &Multidrop{Envelope: "Envelope-To", LocalDomains: []string{"example.org"}}
	h := parseHeadEnv([]byte("Envelope-to: <a@example.org>, b@EXAMPLE.org,\n c@other.net, a@example.org\nEnvelope-To: z@example.org\n\n"), "envelope-to")
	got, err := md.recipients(h, []string{"*"})
	if err != nil || strings.Join(got, ",") != "a,b" {
		t.Fatalf("got %v %v, want a,b", got, err)
	}
}

func TestParseHeadEnv(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		has  bool
	}{
		{"Delivered-To: a@b\nDelivered-To: c@d\n\n", []string{"a@b"}, true},
		{"X: y\ndelivered-to:\n\t<folded@b>\n\n", []string{"folded@b"}, true},
		{"Subject: s\n\nDelivered-To: in@body\n", nil, false},
		{"Delivered-To: <>\n\n", nil, true},
		{"Delivered-To: a b@c, <d@e>\n\n", []string{"d@e"}, true},
	} {
		h := parseHeadEnv([]byte(tc.in), "Delivered-To")
		if h.HasEnvelope != tc.has || !slices.Equal(h.Envelope, tc.want) {
			t.Errorf("%q: got %v %v, want %v %v", tc.in, h.HasEnvelope, h.Envelope, tc.has, tc.want)
		}
	}
}

func FuzzMultidrop(f *testing.F) {
	f.Add([]byte("Delivered-To: mbox-a@example.org\nReturn-Path: <x@y>\n\n"), "Delivered-To")
	f.Add([]byte("Envelope-To: a@example.org, <b@example.org>\n\n"), "Envelope-To")
	f.Add([]byte("X-Original-To: -x@example.org\r\n\r\n"), "X-Original-To")
	md := &Multidrop{LocalDomains: []string{"example.org"}, QVirtual: "mbox-"}
	f.Fuzz(func(t *testing.T, b []byte, header string) {
		h := parseHeadEnv(b, header)
		for _, a := range h.Envelope {
			if a == "" || strings.ContainsAny(a, "<>, \t\r\n") {
				t.Fatalf("unsafe envelope address %q", a)
			}
		}
		md := *md
		md.Envelope = header
		rc, err := md.recipients(h, []string{"*"})
		if err == nil && len(rc) == 0 {
			t.Fatal("no recipients and no error")
		}
		for _, r := range rc {
			if r == "" || r[0] == '-' || strings.ContainsAny(r, "/@ \t\r\n\x00") {
				t.Fatalf("unsafe local user %q", r)
			}
		}
	})
}
