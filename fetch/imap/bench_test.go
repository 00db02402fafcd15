package imap

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// benchCorpus is a mailbox of n messages like a small office's: most are
// short text, some carry a base64 attachment (which deflate can shrink to
// about 3/4 only, as base64 of compressed data does).
func benchCorpus(n int) []string {
	r := rand.New(rand.NewPCG(42, 42))
	msgs := make([]string, n)
	for i := range msgs {
		m := testMessage(uint64(i), 1500+r.IntN(6000))
		if i%3 == 0 {
			blob := make([]byte, 8000+r.IntN(24000))
			for j := range blob {
				blob[j] = byte(r.Uint32())
			}
			enc := base64.StdEncoding.EncodeToString(blob)
			var b strings.Builder
			b.WriteString(strings.Replace(m, "\r\n\r\n", "\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n", 1))
			b.WriteString("--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
			for len(enc) > 76 {
				b.WriteString(enc[:76] + "\r\n")
				enc = enc[76:]
			}
			b.WriteString(enc + "\r\n--b1--\r\n")
			m = b.String()
		}
		msgs[i] = m
	}
	return msgs
}

// BenchmarkDovecotPull pulls the same mailbox from a real Dovecot with and
// without COMPRESS=DEFLATE, in one run: login, SELECT and listing, UID
// FETCH of every message (BODY.PEEK, so the mailbox stays for the next
// iteration), LOGOUT. Besides time it reports the octets the server sent
// on the wire per pull (wire-B/op) and their ratio to the payload floor,
// the sum of the messages' sizes (wire/payload): 1.00 is the floor. (On
// loopback fetchmail moves about as many octets; what costs it on a slow
// line is round trips, which bench/fetch.sh Modem measures.)
//
//	go test ./fetch/imap -run '^$' -bench DovecotPull -benchtime 5x
func BenchmarkDovecotPull(b *testing.B) {
	d := testpeer.StartDovecot(b, testpeer.DovecotOptions{Compress: true})
	var payload int64
	for _, m := range benchCorpus(60) {
		d.AddMessage("user", "INBOX", []byte(m))
		payload += int64(len(m))
	}
	d.Count("user", "INBOX") // index before timing
	b.Run("fetchmail", func(b *testing.B) {
		fm, err := exec.LookPath("fetchmail")
		if err != nil {
			b.Skip("fetchmail not installed: apt-get install fetchmail")
		}
		b.SetBytes(payload)
		var read int64
		for b.Loop() {
			n, err := fetchmailOnce(b, fm, d.IMAPAddr())
			if err != nil {
				b.Fatal(err)
			}
			read += n
		}
		b.ReportMetric(float64(read)/float64(b.N), "wire-B/op")
		b.ReportMetric(float64(read)/float64(b.N)/float64(payload), "wire/payload")
	})
	for _, mode := range []string{"off", "on"} {
		b.Run("compress="+mode, func(b *testing.B) {
			o := Options{Addr: d.IMAPAddr(), TLS: netconn.TLSNone, User: "user", Password: pass("password"),
				Compress: mode, Timeout: 30 * time.Second}
			b.SetBytes(payload)
			var read, written int64
			for b.Loop() {
				r, w, err := pullOnce(o)
				if err != nil {
					b.Fatal(err)
				}
				read += r
				written += w
			}
			b.ReportMetric(float64(read)/float64(b.N), "wire-B/op")
			b.ReportMetric(float64(written)/float64(b.N), "sent-B/op")
			b.ReportMetric(float64(read)/float64(b.N)/float64(payload), "wire/payload")
		})
	}
}

// pullOnce fetches every message of INBOX once and returns the wire octets.
func pullOnce(o Options) (read, written int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := Dial(ctx, o)
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	_, list, err := cl.SelectList(ctx, "INBOX")
	if err != nil {
		return 0, 0, err
	}
	uids := make([]uint32, len(list))
	for i, e := range list {
		uids[i] = e.UID
	}
	n := 0
	err = cl.Fetch(ctx, uids, func(uid uint32, r io.Reader) error {
		n++
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if err == nil && n != len(uids) {
		err = fmt.Errorf("fetched %d of %d", n, len(uids))
	}
	if err != nil {
		return 0, 0, err
	}
	if err := cl.Logout(ctx); err != nil {
		return 0, 0, err
	}
	return cl.BytesRead(), cl.BytesWritten(), nil
}

// fetchmailOnce runs fetchmail's IMAP (keep, fetchall, into an MDA that
// discards) through a loopback proxy that counts the octets the server
// sends, and returns them.
func fetchmailOnce(b *testing.B, fm, addr string) (int64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	var down atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(s, c); s.Close() }()
			go func() { n, _ := io.Copy(c, s); down.Add(n); c.Close() }()
		}
	}()
	dir := b.TempDir()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	rc := filepath.Join(dir, "fetchmailrc")
	conf := "set no bouncemail\npoll 127.0.0.1 port " + port + " proto IMAP auth password\n" +
		"  user \"user\" there with password \"password\" is \"nobody\" here\n" +
		"  keep fetchall sslproto \"\" mda \"/bin/sh -c 'cat >/dev/null'\"\n"
	if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
		return 0, err
	}
	cmd := exec.Command(fm, "-f", rc, "-N", "--nosyslog", "--pidfile", filepath.Join(dir, "pid"), "-s")
	cmd.Env = append(os.Environ(), "HOME="+dir, "FETCHMAILHOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("fetchmail: %v: %s", err, out)
	}
	ln.Close()
	// The counting goroutine adds after the copy ends; fetchmail has exited,
	// so the server side closes at once.
	for i := 0; i < 100 && down.Load() == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	return down.Load(), nil
}
