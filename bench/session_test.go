package bench

// BenchmarkSession (issue 19) measures a whole link-up session: how long
// the link is held next to the physical limit of what crossed it, for
// linkctl at default settings and for a typical ip-up script, in the same
// run. Run it with bench/session.sh.
//
// The world of one run, built afresh for each tool: a private Postfix as
// the local MTA (15 messages for remote.test deferred in its queue, sink
// for home.test), a private Postfix as the ISP relay (30 messages for
// home.test held until ETRN, sink for remote.test), a Dovecot at the "ISP"
// with 2 POP3 mailboxes of 10 messages, and one linksim line (56 kbit/s
// down, 33.6 kbit/s up, 75 ms each way) that every connection shares:
// ETRN and POP3 from us to the ISP, our Postfix's outbound deliveries to
// the relay, and the relay's deliveries to our Postfix (an inbound proxy:
// its bytes count Down). The tool runs; its exit is the hang-up: the
// sessions still open are counted, the line is closed, and then what is
// left is counted: mail at the relay, in our queue, on the POP3 server.

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/linksim"
	"github.com/linkctl/linkctl/internal/sessions"
	"github.com/linkctl/linkctl/internal/testpeer"
)

const (
	sessionOut   = 15 // deferred in our queue
	sessionIn    = 30 // held at the relay
	sessionBoxes = 2  // POP3 mailboxes
	sessionPOP   = 10 // messages in each
)

// sessionWorld is one run's peers and line.
type sessionWorld struct {
	link              *linksim.Link
	local, relay      *testpeer.Postfix
	dove              *testpeer.Dovecot
	boxes             []mailbox
	etrn, pop3, inbnd *linksim.Proxy
	out               *linksim.Proxy
	inPort            int
}

func newSessionWorld(b *testing.B, seed uint64) *sessionWorld {
	rng := rand.New(rand.NewPCG(seed, 19))
	size := func(i int) int { return modemSizes[i%len(modemSizes)] }
	w := &sessionWorld{link: &linksim.Link{Down: 56000, Up: 33600, Delay: 75 * time.Millisecond}}
	// Our Postfix: home.test is ours; remote.test goes to the relay over
	// the line, held until the flush (postqueue -f), like a dial-up host's
	// defer_transports. The relay address is set once the line exists.
	w.local = testpeer.StartPostfix(b, testpeer.PostfixOptions{Hostname: "home.test", SinkDomains: []string{"home.test"},
		RelayDomains: []string{"remote.test"}, RelayAddr: "127.0.0.1:9", HoldRelay: true})
	var err error
	if w.inbnd, err = w.link.ListenInbound(w.local.Addr()); err != nil {
		b.Fatal(err)
	}
	_, p, _ := net.SplitHostPort(w.inbnd.Addr())
	fmt.Sscan(p, &w.inPort)
	// The ISP relay: holds home.test for ETRN (delivering it over the
	// line to our Postfix), accepts remote.test from us.
	w.relay = testpeer.StartPostfix(b, testpeer.PostfixOptions{Hostname: "relay.test", SinkDomains: []string{"remote.test"},
		RelayDomains: []string{"home.test"}, RelayAddr: w.inbnd.Addr(), HoldRelay: true})
	if w.out, err = w.link.Listen(w.relay.Addr()); err != nil {
		b.Fatal(err)
	}
	w.local.Run("postconf", "-e", fmt.Sprintf("transport_maps=inline:{ remote.test=relay:[127.0.0.1]:%s }", w.out.Addr()[strings.LastIndexByte(w.out.Addr(), ':')+1:]))
	w.local.Run("postfix", "-c", w.local.ConfigDir, "reload")
	if w.etrn, err = w.link.Listen(w.relay.Addr()); err != nil {
		b.Fatal(err)
	}
	users := map[string]string{}
	for u := range sessionBoxes {
		mb := mailbox{user: fmt.Sprintf("isp%d", u+1)}
		for i := range sessionPOP {
			mb.msgs = append(mb.msgs, message(rng, fmt.Sprintf("p%d-%d@isp.example.net", u, i), size(i+7*u)))
		}
		w.boxes = append(w.boxes, mb)
		users[mb.user] = password
	}
	w.dove = testpeer.StartDovecot(b, testpeer.DovecotOptions{Users: users})
	fill(w.dove, w.boxes)
	if w.pop3, err = w.link.Listen(w.dove.POP3Addr()); err != nil {
		b.Fatal(err)
	}
	// The mail waiting at both ends, submitted on loopback (not over the line).
	for i := range sessionIn {
		m := message(rng, fmt.Sprintf("in%d@lists.example.org", i), size(i))
		if err := w.relay.Send("list@lists.example.org", []string{"user@home.test"}, string(m)); err != nil {
			b.Fatal(err)
		}
	}
	for i := range sessionOut {
		m := message(rng, fmt.Sprintf("out%d@home.test", i), size(i+3))
		if err := w.local.Send("user@home.test", []string{"friend@remote.test"}, string(m)); err != nil {
			b.Fatal(err)
		}
	}
	deferred := func(n int) func([]testpeer.PostfixQueued) bool {
		return func(q []testpeer.PostfixQueued) bool {
			d := 0
			for _, m := range q {
				if m.Queue == "deferred" {
					d++
				}
			}
			return d == n
		}
	}
	w.relay.WaitQueue(time.Minute, "30 held for home.test", deferred(sessionIn))
	w.local.WaitQueue(time.Minute, "15 deferred for remote.test", deferred(sessionOut))
	return w
}

func (w *sessionWorld) close() {
	for _, p := range []*linksim.Proxy{w.etrn, w.pop3, w.inbnd, w.out} {
		if p != nil {
			p.Close()
		}
	}
}

// sessionRow is one tool's figures.
type sessionRow struct {
	tool                          string
	held                          time.Duration
	st                            linksim.Stats
	openAtDrop                    int // inbound SMTP sessions open at the hang-up
	lineOpen                      int // any connection on the line at the hang-up
	relayLeft, queueLeft, popLeft int
	gotIn, gotOut                 int // delivered to our sink (ETRN + POP3), to the relay's
	lines                         []string
}

func (r sessionRow) limit() time.Duration { return r.st.Floor() }

func linkctlSessionCmd(b *testing.B, bin, dir string, w *sessionWorld) *exec.Cmd {
	var acc strings.Builder
	for _, mb := range w.boxes {
		pw := filepath.Join(dir, mb.user+".pass")
		writeFile(b, pw, password+"\n")
		fmt.Fprintf(&acc, "    - {name: %s, proto: pop3, server: %q, tls: none, user: %s, password_file: %s, to: user@home.test}\n",
			mb.user, w.pop3.Addr(), mb.user, pw)
	}
	// Default settings: no pipeline (the default one), no quiet, no idle.
	// Only what the simulator needs: the relay reaches us on the inbound
	// proxy's port, from loopback.
	cfg := filepath.Join(dir, "linkctl.yaml")
	writeFile(b, cfg, fmt.Sprintf(`state_dir: %s
flush: {mta: postfix}
etrn:
  ports: [%d]
  count_loopback: true
  servers:
    - {server: %q, domains: [home.test], tls: none}
fetch:
  deliver: {smtp: %q}
  accounts:
%sdrop: {command: [/bin/true]}
`, filepath.Join(dir, "state"), w.inPort, w.etrn.Addr(), w.local.Addr(), acc.String()))
	cmd := exec.Command(bin, "-c", cfg, "-v", "run")
	cmd.Env = append(os.Environ(), w.local.Env()...)
	return cmd
}

// scriptSessionCmd is the ip-up script linkctl replaces: flush, wait for
// the queue, fetchmail ETRN, sleep 60, fetchmail POP3, hang up.
func scriptSessionCmd(b *testing.B, dir string, w *sessionWorld) *exec.Cmd {
	host, eport, _ := strings.Cut(w.etrn.Addr(), ":")
	_, pport, _ := strings.Cut(w.pop3.Addr(), ":")
	etrnrc := filepath.Join(dir, "etrnrc")
	writeFile(b, etrnrc, fmt.Sprintf("set no syslog\npoll %s service %s proto etrn fetchdomains home.test\n", host, eport))
	var rc strings.Builder
	rc.WriteString("set no syslog\n")
	for _, mb := range w.boxes {
		fmt.Fprintf(&rc, "poll %s service %s proto pop3 auth password\n  user %q there with password %q is user here\n  options no keep fetchall sslproto '' no sslcertck smtphost %q smtpaddress home.test\n",
			host, pport, mb.user, password, strings.Replace(w.local.Addr(), ":", "/", 1))
	}
	poprc := filepath.Join(dir, "poprc")
	writeFile(b, poprc, rc.String())
	fm := fmt.Sprintf("fetchmail --nodetach --pidfile %s/fm.pid --idfile %s/fm.ids", dir, dir)
	script := filepath.Join(dir, "ip-up")
	writeFile(b, script, fmt.Sprintf(`#!/bin/sh
postqueue -f
while ! mailq | grep -q 'Mail queue is empty'; do sleep 1; done
%s -f %s || true
sleep 60
%s -f %s || true
: hang up
`, fm, etrnrc, fm, poprc))
	os.Chmod(script, 0o700)
	cmd := exec.Command("/bin/sh", script)
	cmd.Env = append(os.Environ(), append(w.local.Env(), "FETCHMAILHOME="+dir)...)
	return cmd
}

func runSession(b *testing.B, tool string, bin string) sessionRow {
	w := newSessionWorld(b, 7)
	defer w.close()
	dir := b.TempDir()
	var cmd *exec.Cmd
	if tool == "linkctl" {
		cmd = linkctlSessionCmd(b, bin, dir, w)
	} else {
		cmd = scriptSessionCmd(b, dir, w)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	w.link.ResetStats()
	start := time.Now()
	err := cmd.Run()
	held := time.Since(start)
	// The hang-up: count what is still open, then close the line.
	r := sessionRow{tool: tool, held: held, lineOpen: w.link.Open()}
	if in, err := sessions.List(sessions.Filter{LocalPorts: []int{w.inPort}, Loopback: true}); err == nil {
		r.openAtDrop = len(in)
	}
	r.st = w.link.Stats()
	w.close()
	if err != nil {
		b.Logf("%s: %v\n%s", tool, err, out.String())
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "inbound SMTP wait over") || strings.Contains(l, "dropping the link") || strings.Contains(l, "summary") {
			r.lines = append(r.lines, l)
		}
	}
	// What is left once the line is gone: give both MTAs a moment to
	// settle what they were doing.
	time.Sleep(2 * time.Second)
	r.relayLeft, r.queueLeft, r.popLeft = len(w.relay.Queue()), len(w.local.Queue()), left(w.dove, w.boxes)
	r.gotIn, r.gotOut = len(w.local.Messages()), len(w.relay.Messages())
	return r
}

func BenchmarkSession(b *testing.B) {
	if _, err := exec.LookPath("fetchmail"); err != nil {
		testpeer.Missing(b, "fetchmail not found: apt-get install fetchmail")
	}
	bin := linkctlBin(b)
	var rows []sessionRow
	for _, tool := range []string{"linkctl", "script"} {
		b.Run(tool, func(b *testing.B) {
			for range b.N {
				r := runSession(b, tool, bin)
				rows = append(rows, r)
				b.ReportMetric(r.held.Seconds(), "held-s")
				b.ReportMetric(r.held.Seconds()/r.limit().Seconds(), "x-limit")
			}
		})
	}
	fmt.Printf("\nSession: %d out (our queue), %d in (ETRN relay), %d x %d POP3; 56k down / 33.6k up, 75 ms each way, one shared line\n",
		sessionOut, sessionIn, sessionBoxes, sessionPOP)
	fmt.Printf("%-8s %7s %7s %6s %8s %8s %6s %6s %5s %5s %5s %7s %7s\n", "tool", "held s", "limit s", "x lim", "down B", "up B",
		"in", "out", "relay", "queue", "pop3", "open@d", "line@d")
	for _, r := range rows {
		fmt.Printf("%-8s %7.2f %7.2f %6.3f %8d %8d %6d %6d %5d %5d %5d %7d %7d\n", r.tool, r.held.Seconds(), r.limit().Seconds(),
			r.held.Seconds()/r.limit().Seconds(), r.st.DownBytes, r.st.UpBytes, r.gotIn, r.gotOut, r.relayLeft, r.queueLeft, r.popLeft,
			r.openAtDrop, r.lineOpen)
	}
	if len(rows) == 2 {
		fmt.Printf("linkctl held / script held: %.3f\n", rows[0].held.Seconds()/rows[1].held.Seconds())
	}
	for _, r := range rows {
		for _, l := range r.lines {
			fmt.Printf("%s: %s\n", r.tool, l)
		}
	}
	want := sessionIn + sessionBoxes*sessionPOP
	for _, r := range rows {
		if r.gotIn != want || r.gotOut != sessionOut || r.relayLeft+r.queueLeft+r.popLeft != 0 || r.openAtDrop != 0 {
			b.Errorf("%s: delivered %d/%d in, %d/%d out; left: relay %d, queue %d, POP3 %d; %d inbound sessions open at the hang-up",
				r.tool, r.gotIn, want, r.gotOut, sessionOut, r.relayLeft, r.queueLeft, r.popLeft, r.openAtDrop)
		}
	}
}
