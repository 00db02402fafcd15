package fetch

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkctl/linkctl/fetch/deliver"
	"github.com/linkctl/linkctl/internal/netconn"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// imapCutProxy forwards loopback connections to a server. The first
// connection is cut after `after` octets from the server: closed at once
// (reset), or, with blackHole, left open with nothing more forwarded, so
// that the client's timeout has to notice. Later connections are clean.
type imapCutProxy struct {
	ln        net.Listener
	after     int64
	blackHole bool
	n         atomic.Int32
	down      atomic.Int64 // octets server->client, all connections
	mu        sync.Mutex
	conns     []net.Conn
}

func startCutProxy(t *testing.T, backend string, after int64, blackHole bool) *imapCutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &imapCutProxy{ln: ln, after: after, blackHole: blackHole}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			limit := int64(-1)
			if p.n.Add(1) == 1 && after >= 0 {
				limit = after
			}
			go func() { io.Copy(s, c); s.Close() }()
			go p.down1(c, s, limit)
		}
	}()
	return p
}

func (p *imapCutProxy) down1(c, s net.Conn, limit int64) {
	buf := make([]byte, 4096)
	var sent int64
	for {
		n, err := s.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if limit >= 0 && sent+int64(n) > limit {
				chunk = chunk[:limit-sent]
			}
			if len(chunk) > 0 {
				c.Write(chunk)
				sent += int64(len(chunk))
				p.down.Add(int64(len(chunk)))
			}
			if limit >= 0 && sent >= limit {
				if !p.blackHole {
					c.Close()
					s.Close()
				}
				return // black hole: keep both open, forward nothing
			}
		}
		if err != nil {
			c.Close()
			return
		}
	}
}

// maildirIDs returns the Message-IDs of the messages in dir/new, sorted.
func maildirIDs(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "new"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, "new", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m := msgIDRe.FindSubmatch(b)
		if m == nil {
			t.Fatalf("message without Message-ID in %s", e.Name())
		}
		ids = append(ids, string(m[1]))
	}
	sort.Strings(ids)
	return ids
}

// TestIMAPLinkCutAtManyOffsets runs the engine over IMAP through a link
// that is cut (reset or black hole) after N octets from the server, at
// offsets spread over a whole session, then again over a good link: every
// message must arrive exactly once and the folder must end empty. The
// IMAP twin of the POP3 fault matrix.
func TestIMAPLinkCutAtManyOffsets(t *testing.T) {
	testpeer.Short(t)
	t.Parallel() // its own Dovecot
	d := testpeer.StartDovecot(t, testpeer.DovecotOptions{Compress: true})
	for _, compress := range []string{"off", "on"} {
		t.Run("compress="+compress, func(t *testing.T) { imapCutMatrix(t, d, compress) })
	}
}

// imapCutMatrix is TestIMAPLinkCutAtManyOffsets for one compress mode;
// with COMPRESS the cuts fall inside the deflate stream.
func imapCutMatrix(t *testing.T, d *testpeer.Dovecot, compress string) {
	fill := func(tag string, n int) []string {
		var ids []string
		for i := range n {
			id := fmt.Sprintf("%s-%d@example.org", tag, i)
			// Text that deflate cannot collapse, so that with COMPRESS the
			// cuts still fall inside the messages.
			r := rand.New(rand.NewPCG(uint64(i), uint64(len(tag))))
			var body strings.Builder
			for range 20 + 30*i {
				fmt.Fprintf(&body, "line %x %x\n", r.Uint64(), r.Uint32())
			}
			d.AddMessage("user", "INBOX", []byte(fmt.Sprintf("From: a@example.org\nTo: u@example.net\nSubject: %s\nMessage-ID: <%s>\n\n%s",
				id, id, body.String())))
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return ids
	}
	run := func(addr, state, maildir string, timeout time.Duration) (Result, error) {
		src := IMAPSource{Addr: addr, TLS: netconn.TLSNone, User: "user", Password: pw("password"), Timeout: timeout, Compress: compress}
		acct := Account{Name: "u", Proto: "imap", Server: addr, Open: src.Open,
			Target: deliver.NewMaildir(deliver.MaildirOptions{Path: maildir}), To: []string{"u@example.net"}}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		return Run(ctx, Options{StateDir: state, Accounts: []Account{acct}}, nil)
	}

	// A clean reference session measures the octets of a whole session.
	ref := startCutProxy(t, d.IMAPAddr(), -1, false)
	fill("ref", 6)
	if _, err := run(ref.ln.Addr().String(), t.TempDir(), t.TempDir(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	total := ref.down.Load()
	t.Logf("reference session: %d octets from the server", total)

	type cut struct {
		frac      float64
		blackHole bool
	}
	var cuts []cut
	resets, holes := []float64{0, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.999}, []float64{0.1, 0.9}
	if compress == "on" {
		resets, holes = []float64{0.03, 0.3, 0.6, 0.9, 0.99}, []float64{0.5}
	}
	for _, f := range resets {
		cuts = append(cuts, cut{f, false})
	}
	for _, f := range holes {
		cuts = append(cuts, cut{f, true})
	}
	for i, c := range cuts {
		after := int64(c.frac * float64(total))
		t.Run(fmt.Sprintf("%d-at%d-blackhole=%v", i, after, c.blackHole), func(t *testing.T) {
			want := fill(fmt.Sprintf("cut%s%d", compress, i), 6)
			p := startCutProxy(t, d.IMAPAddr(), after, c.blackHole)
			state, maildir := t.TempDir(), t.TempDir()
			timeout := 5 * time.Second
			if c.blackHole {
				timeout = 300 * time.Millisecond
			}
			res1, err1 := run(p.ln.Addr().String(), state, maildir, timeout)
			res2, err2 := run(p.ln.Addr().String(), state, maildir, 5*time.Second)
			if err2 != nil {
				t.Fatalf("clean rerun: %v (cut run: %v, %s)", err2, err1, res1.Summary())
			}
			t.Logf("cut run: %s (%v); rerun: %s", res1.Summary(), err1, res2.Summary())
			got := maildirIDs(t, maildir)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("delivered %v, want each of %v exactly once", got, want)
			}
			if left := d.Count("user", "INBOX"); left != 0 {
				t.Errorf("%d messages left on the server after the clean rerun", left)
			}
		})
	}
}
