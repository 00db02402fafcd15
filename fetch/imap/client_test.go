package imap

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/linkctl/linkctl/internal/authmech"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/netconn"
)

const msgA = "From: a@example.org\r\nSubject: one\r\n\r\nfirst body\r\n"
const msgB = "From: b@example.org\r\nSubject: two\r\n\r\nsecond\r\nbody with a lone \r in it\r\n"

func TestListFetchExpunge(t *testing.T) {
	s := startMem(t, memOpts{caps: []imap.Cap{imap.CapUIDPlus, imap.CapMove}}, msgA, msgB, msgA)
	cl, err := Dial(ctxT(t), s.opts(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sel, list, err := cl.SelectList(ctxT(t), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if sel.UIDValidity == 0 || sel.Messages != 3 || len(list) != 3 {
		t.Fatalf("select %+v, list %+v", sel, list)
	}
	if list[0].Size != int64(len(msgA)) || list[1].Size != int64(len(msgB)) {
		t.Fatalf("sizes %+v, want %d and %d", list, len(msgA), len(msgB))
	}
	uids := []uint32{list[0].UID, list[1].UID}
	got := fetchAll(t, cl, uids)
	if got[uids[0]] != strings.ReplaceAll(msgA, "\r\n", "\n") || got[uids[1]] != strings.ReplaceAll(msgB, "\r\n", "\n") {
		t.Fatalf("bodies %v", got)
	}
	// BODY.PEEK: nothing became \Seen.
	_, list2, err := cl.SelectList(ctxT(t), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list2 {
		if e.Seen {
			t.Fatalf("message %d became \\Seen after a PEEK fetch", e.UID)
		}
	}
	if err := cl.Store(ctxT(t), uids, `\Deleted`, true); err != nil {
		t.Fatal(err)
	}
	if err := cl.UIDExpunge(ctxT(t), uids[:1]); err != nil {
		t.Fatal(err)
	}
	_, list3, err := cl.SelectList(ctxT(t), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	// Only the UID named went: the other \Deleted one stays.
	if len(list3) != 2 || list3[0].UID != uids[1] {
		t.Fatalf("after UID EXPUNGE of %d: %+v", uids[0], list3)
	}
	if cl.BytesRead() == 0 || cl.BytesWritten() == 0 {
		t.Fatal("no wire bytes counted")
	}
	if err := cl.Logout(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func TestEmptyFolder(t *testing.T) {
	s := startMem(t, memOpts{})
	cl, err := Dial(ctxT(t), s.opts(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, list, err := cl.SelectList(ctxT(t), "INBOX")
	if err != nil || len(list) != 0 {
		t.Fatalf("list %v, err %v", list, err)
	}
}

func TestMissingFolderRefused(t *testing.T) {
	s := startMem(t, memOpts{})
	cl, err := Dial(ctxT(t), s.opts(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, _, err = cl.SelectList(ctxT(t), "Nope")
	if errkind.KindOf(err) != errkind.Refused {
		t.Fatalf("SELECT of a missing folder: %v (kind %v), want refused", err, errkind.KindOf(err))
	}
}

func TestLoginRefusedIsAuth(t *testing.T) {
	s := startMem(t, memOpts{})
	o := s.opts(t)
	o.Password = pass("wrong")
	_, err := Dial(ctxT(t), o)
	if errkind.ExitCode(err) != 3 || errkind.IsTemporary(err) {
		t.Fatalf("wrong password: %v (exit %d), want exit 3, permanent", err, errkind.ExitCode(err))
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("password in error: %v", err)
	}
}

func TestAuthPlain(t *testing.T) {
	s := startMem(t, memOpts{})
	o := s.opts(t)
	o.Auth = "plain"
	cl, err := Dial(ctxT(t), o)
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
}

func TestStartTLS(t *testing.T) {
	s := startMem(t, memOpts{tls: true}, msgA)
	o := s.opts(t)
	o.TLS, o.TLSConfig = netconn.TLSStartTLS, s.tls
	cl, err := Dial(ctxT(t), o)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, list, err := cl.SelectList(ctxT(t), "INBOX")
	if err != nil || len(list) != 1 {
		t.Fatalf("list %v, err %v", list, err)
	}
	if got := fetchAll(t, cl, []uint32{list[0].UID}); got[list[0].UID] != strings.ReplaceAll(msgA, "\r\n", "\n") {
		t.Fatalf("over STARTTLS: %v", got)
	}
}

func TestStartTLSBadCertificate(t *testing.T) {
	s := startMem(t, memOpts{tls: true})
	o := s.opts(t)
	o.TLS = netconn.TLSStartTLS // system roots: the test CA is unknown
	_, err := Dial(ctxT(t), o)
	if errkind.KindOf(err) != errkind.Network || errkind.IsTemporary(err) {
		t.Fatalf("untrusted certificate: %v, want a permanent network error", err)
	}
}

func TestImplicitTLS(t *testing.T) {
	s := startMem(t, memOpts{implicit: true}, msgA)
	o := s.opts(t)
	o.TLS, o.TLSConfig = netconn.TLSImplicit, s.tls
	cl, err := Dial(ctxT(t), o)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, list, err := cl.SelectList(ctxT(t), "INBOX"); err != nil || len(list) != 1 {
		t.Fatalf("list %v, err %v", list, err)
	}
}

func TestStartTLSRequiredButMissing(t *testing.T) {
	s := startMem(t, memOpts{})
	o := s.opts(t)
	o.TLS = netconn.TLSStartTLS
	_, err := Dial(ctxT(t), o)
	if err == nil || errkind.IsTemporary(err) || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("no STARTTLS offered: %v, want a permanent error naming STARTTLS", err)
	}
}

func TestCompressOnWithoutOffer(t *testing.T) {
	s := startMem(t, memOpts{})
	o := s.opts(t)
	o.Compress = "on"
	if _, err := Dial(ctxT(t), o); err == nil || !strings.Contains(err.Error(), "COMPRESS") {
		t.Fatalf("compress: on without the capability: %v", err)
	}
	o.Compress = "auto"
	cl, err := Dial(ctxT(t), o)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if cl.Compressed() {
		t.Fatal("compressed without the capability")
	}
}

func TestFetchCallbackErrorKeepsSession(t *testing.T) {
	s := startMem(t, memOpts{caps: []imap.Cap{imap.CapUIDPlus}}, msgA, msgB, msgA)
	cl, err := Dial(ctxT(t), s.opts(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, list, err := cl.SelectList(ctxT(t), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("local delivery refused")
	calls := 0
	err = cl.Fetch(ctxT(t), []uint32{list[0].UID, list[1].UID, list[2].UID}, func(uid uint32, r io.Reader) error {
		calls++
		io.CopyN(io.Discard, r, 3) // read a little, then fail
		return boom
	})
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("Fetch: %v after %d calls, want the callback's error after 1", err, calls)
	}
	// The rest was drained: the session still works.
	if got := fetchAll(t, cl, []uint32{list[2].UID}); len(got) != 1 {
		t.Fatalf("after a failed callback: %v", got)
	}
}

// TestBadOptionsRefusedBeforeDialing: nothing is dialed with options no
// server could make sense of. A TLS mode or an auth mechanism the config
// cannot produce (it validated them into typed values) is a bug (errkind.Internal),
// not the user's config error (exit 5) that the client used to report.
func TestBadOptionsRefusedBeforeDialing(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want errkind.Kind
	}{
		{Options{Addr: "x:143", TLS: "maybe"}, errkind.Internal},
		{Options{Addr: "x:143", TLS: netconn.TLSNone, Compress: "yes"}, errkind.Usage},
		{Options{Addr: "x:143", TLS: netconn.TLSNone, Auth: authmech.APOP}, errkind.Internal},
		{Options{Addr: "x:143", TLS: netconn.TLSNone, Auth: "cram-md5"}, errkind.Internal},
	} {
		o := tc.o
		o.Dial = func(context.Context) (net.Conn, error) {
			t.Fatal("dialed with bad options")
			return nil, nil
		}
		if _, err := Dial(ctxT(t), o); errkind.KindOf(err) != tc.want {
			t.Errorf("%+v: %v (kind %v), want kind %v", tc.o, err, errkind.KindOf(err), tc.want)
		}
	}
}
