// Package bench measures linkctl's fetch against fetchmail and mpop on the
// same mailboxes in the same run (issue 5 for POP3, issue 6 for IMAP,
// "Benchmark"). Run it with bench/fetch.sh; `go test ./...` compiles it but
// runs nothing.
//
// Each benchmark runs every tool of the tools table: linkctl, fetchmail and
// mpop over POP3, then linkctl over IMAP without and with COMPRESS=DEFLATE
// (RFC 4978, Dovecot's imap_zlib) and fetchmail over IMAP. Three
// benchmarks, each printing a table:
//
//   - BenchmarkFetchModem: a private Dovecot with 3 mailboxes x 20
//     messages of realistic sizes (about 280 KB in all) behind linksim (56
//     kbit/s down, 33.6 kbit/s up, 75 ms each way, one line shared by every
//     connection). Each tool fetches all three mailboxes (refilled with the
//     same messages before each tool) into an in-process SMTP sink (mpop:
//     into a Maildir, it has no SMTP delivery); the table gives the seconds
//     the link was busy, next to the floor the link allows for the bytes
//     that crossed it, and to the payload floor (the mail's own bytes at
//     56 kbit/s, uncompressed). It also prints what deflate alone leaves of
//     the mailboxes, the bound for any client with COMPRESS.
//   - BenchmarkFetchLoopback: 5000 small messages (BENCH_LOOPBACK_N) over
//     loopback into a private Postfix: messages per second, from process
//     start to exit (fetchmail and linkctl over SMTP, mpop through
//     Postfix's sendmail as its MDA); then linkctl and mpop over POP3 into
//     a Maildir (rows *-maildir). Every quick row runs three times
//     (BENCH_ROUNDS), the tools in turn, and the table gives the medians;
//     the stores are on a fresh journaled ext4 image (see mailStore). It
//     ends with the ratios of issue 19: linkctl's rate over fetchmail's
//     (into Postfix) and over mpop's (into a Maildir).
//   - BenchmarkFetchRSS: one 50 MB message; the peak RSS of the fetching
//     process (/usr/bin/time -f %M), delivering into a Maildir (linkctl,
//     mpop) or the SMTP sink (fetchmail).
package bench

import (
	"bytes"
	"cmp"
	"compress/flate"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/linksim"
	"github.com/linkctl/linkctl/internal/testpeer"
)

const password = "bench-pw"

// linkctlBin returns the linkctl binary: $LINKCTL_BIN, or one built now.
func linkctlBin(b *testing.B) string {
	if p := os.Getenv("LINKCTL_BIN"); p != "" {
		return p
	}
	out := filepath.Join(b.TempDir(), "linkctl")
	cmd := exec.Command("go", "build", "-o", out, "github.com/linkctl/linkctl/cmd/linkctl")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("go build linkctl: %v", err)
	}
	return out
}

// message returns a plain mail of about size bytes (LF line ends) with a
// header like real mail's (a Received chain, MIME headers) and a body of
// text drawn like a natural language's: words of a 10000-word vocabulary
// at Zipf frequencies, a number now and then. Deflate leaves about 0.4 of
// such a mailbox, as it does of real plain-text mail; the figure is
// printed with the modem table.
func message(rng *rand.Rand, id string, size int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Return-Path: <list-bounces+%s@lists.example.org>\n", strings.ReplaceAll(id, "@", "="))
	fmt.Fprintf(&b, "Received: from mx2.example.net (mx2.example.net [192.0.2.25])\n\tby pop.example.com (Postfix) with ESMTPS id 4Zx%dQ\n\tfor <user@example.com>; Tue, 24 Nov 2026 09:%02d:11 +0000 (UTC)\n", rng.IntN(99999), rng.IntN(60))
	fmt.Fprintf(&b, "Received: from lists.example.org (lists.example.org [198.51.100.7])\n\tby mx2.example.net (Postfix) with ESMTP id 7Ab%dK\n\tfor <user@example.com>; Tue, 24 Nov 2026 09:%02d:10 +0000 (UTC)\n", rng.IntN(99999), rng.IntN(60))
	// DKIM (RFC 6376) signs most mail today: two base64 hashes, which
	// deflate cannot shrink below 3/4.
	sig := make([]byte, 256+32)
	for i := range sig {
		sig[i] = byte(rng.Uint32())
	}
	fmt.Fprintf(&b, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=lists.example.org;\n\ts=2026; t=%d; h=from:to:subject:date:message-id;\n\tbh=%s;\n\tb=%s\n",
		1795000000+rng.IntN(100000), base64.StdEncoding.EncodeToString(sig[256:]), fold(base64.StdEncoding.EncodeToString(sig[:256])))
	fmt.Fprintf(&b, "From: Someone <someone%d@example.org>\nTo: user@example.com\nSubject: benchmark message %s about topic %d\nMessage-ID: <%s>\nDate: Tue, 24 Nov 2026 09:%02d:09 +0000\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n", rng.IntN(500), id, rng.IntN(1000), id, rng.IntN(60))
	zipf := rand.NewZipf(rng, 1.01, 2, uint64(len(vocabulary)-1))
	col := 0
	for b.Len() < size {
		w := vocabulary[zipf.Uint64()]
		if rng.IntN(40) == 0 {
			w = fmt.Sprintf("%d", rng.IntN(100000))
		}
		if col+len(w) > 72 {
			b.WriteByte('\n')
			col = 0
		} else if col > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	b.WriteByte('\n')
	return []byte(b.String())
}

// fold folds a header value at 70 columns.
func fold(s string) string {
	var b strings.Builder
	for len(s) > 70 {
		b.WriteString(s[:70] + "\n\t ")
		s = s[70:]
	}
	return b.String() + s
}

// vocabulary is message's words: 10000 made-up words of 2 to 10 letters,
// common letters more often, the same in every run.
var vocabulary = func() []string {
	rng := rand.New(rand.NewPCG(1, 2))
	v := make([]string, 10000)
	for i := range v {
		w := make([]byte, 2+rng.IntN(4)+rng.IntN(5))
		for j := range w {
			w[j] = "etaoinshrdlcumwfgypbvkjxqz"[min(rng.IntN(14)+rng.IntN(13), 25)]
		}
		v[i] = string(w)
	}
	return v
}()

// modemSizes are the sizes of one mailbox's 20 messages: mostly short
// notes and list mail, a few longer ones; 3 mailboxes make about 280 KB.
var modemSizes = []int{1800, 2400, 3100, 2000, 4000, 2800, 11500, 2200, 3500, 1900, 5100, 2600, 21000, 3000, 2100, 8400, 2500, 3800, 2300, 3300}

type mailbox struct {
	user string
	msgs [][]byte
}

func fill(d *testpeer.Dovecot, boxes []mailbox) (bytes int64) {
	for _, mb := range boxes {
		d.Clear(mb.user, "INBOX")
		for _, m := range mb.msgs {
			d.AddMessage(mb.user, "INBOX", m)
			// Dovecot serves CRLF: count the octets as they cross the wire.
			bytes += int64(len(m) + strings.Count(string(m), "\n"))
		}
		d.Count(mb.user, "INBOX") // index now, not while a tool runs
	}
	return bytes
}

func left(d *testpeer.Dovecot, boxes []mailbox) int {
	n := 0
	for _, mb := range boxes {
		n += d.Count(mb.user, "INBOX")
	}
	return n
}

// tools: how each program is told to fetch the given POP3 accounts at
// addr and deliver them.
type fetchJob struct {
	dir      string // scratch directory for this run
	addr     string // POP3 (or IMAP) host:port
	imap     bool   // the accounts are IMAP, not POP3
	compress string // linkctl's IMAP compress key (auto, on, off)
	boxes    []mailbox
	smtp     string // deliver over SMTP here ("" with maildir)
	maildir  string // or into this Maildir
	mdaArgv  string // or through this MDA command line (mpop)
	env      []string
	sessions int
}

func writeFile(b *testing.B, path, text string) {
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
}

func linkctlCmd(b *testing.B, bin string, j fetchJob) *exec.Cmd {
	var acc strings.Builder
	for _, mb := range j.boxes {
		pw := filepath.Join(j.dir, mb.user+".pass")
		writeFile(b, pw, password+"\n")
		proto := "pop3"
		if j.imap {
			proto = "imap, compress: " + cmp.Or(j.compress, "auto")
		}
		fmt.Fprintf(&acc, "    - {name: %s, proto: %s, server: %q, tls: none, user: %s, password_file: %s, to: rcpt@sink.test}\n", mb.user, proto, j.addr, mb.user, pw)
	}
	var dl string
	switch {
	case j.smtp != "" && j.sessions > 0:
		dl = fmt.Sprintf("{smtp: %q, sessions: %d}", j.smtp, j.sessions)
	case j.smtp != "":
		dl = fmt.Sprintf("{smtp: %q}", j.smtp)
	default:
		dl = fmt.Sprintf("{maildir: %q}", j.maildir)
	}
	var ackWindow string
	if w := os.Getenv("BENCH_ACK_WINDOW"); w != "" {
		ackWindow = "  ack_window: " + w + "\n"
	}
	cfg := filepath.Join(j.dir, "linkctl.yaml")
	writeFile(b, cfg, fmt.Sprintf("state_dir: %s\npipeline: [fetch]\nfetch:\n  parallel: %d\n%s  deliver: %s\n  accounts:\n%s",
		filepath.Join(j.dir, "state"), len(j.boxes), ackWindow, dl, acc.String()))
	return exec.Command(bin, "-c", cfg, "fetch")
}

func fetchmailCmd(b *testing.B, j fetchJob) *exec.Cmd {
	host, port, _ := strings.Cut(j.addr, ":")
	var rc strings.Builder
	rc.WriteString("set no syslog\n")
	for _, mb := range j.boxes {
		proto := "pop3"
		if j.imap {
			proto = "imap"
		}
		fmt.Fprintf(&rc, "poll %s service %s proto %s auth password\n  user %q there with password %q is rcpt here\n  options no keep fetchall sslproto '' no sslcertck", host, port, proto, mb.user, password)
		switch {
		case j.smtp != "":
			fmt.Fprintf(&rc, " smtphost %q smtpaddress sink.test\n", strings.Replace(j.smtp, ":", "/", 1))
		default:
			fmt.Fprintf(&rc, " mda %q\n", j.mdaArgv)
		}
	}
	path := filepath.Join(j.dir, "fetchmailrc")
	writeFile(b, path, rc.String())
	cmd := exec.Command("fetchmail", "-f", path, "--nodetach", "--pidfile", filepath.Join(j.dir, "fetchmail.pid"),
		"--idfile", filepath.Join(j.dir, "fetchids"))
	cmd.Env = append(os.Environ(), "FETCHMAILHOME="+j.dir)
	return cmd
}

func mpopCmd(b *testing.B, j fetchJob) *exec.Cmd {
	host, port, _ := strings.Cut(j.addr, ":")
	var rc strings.Builder
	fmt.Fprintf(&rc, "defaults\nhost %s\nport %s\ntls off\nauth user\nkeep off\nonly_new off\nuidls_file %s/uidls-%%u\n", host, port, j.dir)
	if j.mdaArgv != "" {
		fmt.Fprintf(&rc, "delivery mda %s\n", j.mdaArgv)
	} else {
		fmt.Fprintf(&rc, "delivery maildir %s\n", j.maildir)
	}
	var names []string
	for _, mb := range j.boxes {
		fmt.Fprintf(&rc, "account %s\nuser %s\npassword %s\n", mb.user, mb.user, password)
		names = append(names, mb.user)
	}
	path := filepath.Join(j.dir, "mpoprc")
	writeFile(b, path, rc.String())
	return exec.Command("mpop", append([]string{"-C", path, "-q"}, names...)...)
}

// runTool runs cmd and returns its wall time and peak RSS (KiB, -1 when
// /usr/bin/time is missing).
func runTool(b *testing.B, name string, cmd *exec.Cmd, env []string) (time.Duration, int64) {
	if len(env) > 0 {
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, env...)
	}
	// The peak RSS comes from /usr/bin/time (%M): getrusage of a child of
	// this process would not do, Linux carries ru_maxrss across exec, so
	// the child would report this (large) process's size at fork.
	var rssFile string
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		rssFile = filepath.Join(b.TempDir(), "rss")
		cmd.Args = append([]string{"/usr/bin/time", "-f", "%M", "-o", rssFile}, cmd.Args...)
		cmd.Path = "/usr/bin/time"
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		b.Logf("%s: %v\n%s", name, err, out.String())
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			b.Fatalf("%s failed", name)
		}
	}
	var rss int64 = -1
	if rssFile != "" {
		if t, err := os.ReadFile(rssFile); err == nil {
			fmt.Sscan(strings.TrimSpace(string(t[strings.LastIndexByte(strings.TrimSpace(string(t)), '\n')+1:])), &rss)
		}
	}
	return wall, rss
}

func makeMaildir(b *testing.B, dir string) string {
	for _, s := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, s), 0o700); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

func countMaildir(dir string) int {
	n := 0
	for _, s := range []string{"cur", "new"} {
		ents, _ := os.ReadDir(filepath.Join(dir, s))
		n += len(ents)
	}
	return n
}

func need(b *testing.B) (fetchmail, mpop bool) {
	_, e1 := exec.LookPath("fetchmail")
	_, e2 := exec.LookPath("mpop")
	if e1 != nil || e2 != nil {
		testpeer.Missing(b, "fetchmail and mpop are compared against: apt-get install fetchmail mpop")
	}
	return true, true
}

// tool is one fetcher in a benchmark's table: a program (bin) and how it
// is set up.
type tool struct {
	name, bin string
	imap      bool   // fetch over IMAP instead of POP3
	compress  string // linkctl's IMAP compress key
	maildir   bool   // deliver into a Maildir (loopback table only)
}

// tools are the rows of the modem and loopback tables: POP3 first (issue
// 5), then IMAP (issue 6): linkctl without and with COMPRESS=DEFLATE, and
// fetchmail, which has no COMPRESS. mpop speaks only POP3.
var tools = []tool{
	{name: "linkctl", bin: "linkctl"}, {name: "fetchmail", bin: "fetchmail"}, {name: "mpop", bin: "mpop"},
	{name: "linkctl-imap", bin: "linkctl", imap: true, compress: "off"},
	{name: "linkctl-imap-z", bin: "linkctl", imap: true, compress: "on"},
	{name: "fetchmail-imap", bin: "fetchmail", imap: true},
}

// loopbackTools are the rows of the loopback table: the tools into
// Postfix, then linkctl and mpop over POP3 into a Maildir (mpop's
// `delivery maildir`), the one local target both have.
var loopbackTools = append(slices.Clip(tools),
	tool{name: "linkctl-maildir", bin: "linkctl", maildir: true},
	tool{name: "mpop-maildir", bin: "mpop", maildir: true})

// command is the tool's command line for job j (bin: linkctl's binary).
func (t tool) command(b *testing.B, bin string, j fetchJob) *exec.Cmd {
	switch t.bin {
	case "linkctl":
		return linkctlCmd(b, bin, j)
	case "fetchmail":
		return fetchmailCmd(b, j)
	default:
		return mpopCmd(b, j)
	}
}

func BenchmarkFetchModem(b *testing.B) {
	need(b)
	bin := linkctlBin(b)
	rng := rand.New(rand.NewPCG(5, 20))
	var boxes []mailbox
	users := map[string]string{}
	for u := range 3 {
		mb := mailbox{user: fmt.Sprintf("user%d", u+1)}
		for i, size := range modemSizes {
			mb.msgs = append(mb.msgs, message(rng, fmt.Sprintf("m%d-%d@bench.example.org", u, i), size))
		}
		boxes = append(boxes, mb)
		users[mb.user] = password
	}
	// imap_zlib on: IMAP offers COMPRESS=DEFLATE; POP3 is unaffected.
	d := testpeer.StartDovecot(b, testpeer.DovecotOptions{Users: users, Compress: true})
	sink := testpeer.StartSink(b, testpeer.SinkOptions{})
	link := &linksim.Link{Down: 56000, Up: 33600, Delay: 75 * time.Millisecond}
	pop3, err := link.Listen(d.POP3Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer pop3.Close()
	imap, err := link.Listen(d.IMAPAddr())
	if err != nil {
		b.Fatal(err)
	}
	defer imap.Close()

	type row struct {
		tool          string
		st            linksim.Stats
		wall          time.Duration
		payload       int64
		delivered, on int
	}
	var rows []row
	for _, tool := range tools {
		b.Run(tool.name, func(b *testing.B) {
			for range b.N {
				dir := b.TempDir()
				payload := fill(d, boxes)
				sink.Clear()
				j := fetchJob{dir: dir, addr: pop3.Addr(), boxes: boxes, smtp: sink.Addr(), sessions: 4}
				if tool.imap {
					j.addr, j.imap, j.compress = imap.Addr(), true, tool.compress
				}
				if tool.bin == "mpop" {
					j.smtp, j.maildir = "", makeMaildir(b, filepath.Join(dir, "Maildir"))
				}
				cmd := tool.command(b, bin, j)
				link.ResetStats()
				wall, _ := runTool(b, tool.name, cmd, nil)
				st := link.Stats()
				delivered := len(sink.Messages())
				if tool.bin == "mpop" {
					delivered = countMaildir(j.maildir)
				}
				r := row{tool.name, st, wall, payload, delivered, left(d, boxes)}
				if r.delivered != 60 || r.on != 0 {
					b.Errorf("%s: delivered %d of 60, %d left on the server", tool.name, r.delivered, r.on)
				}
				rows = append(rows, r)
				b.ReportMetric(st.Busy.Seconds(), "busy-s")
				b.ReportMetric(st.Busy.Seconds()/payloadFloor(payload).Seconds(), "x-payload-floor")
			}
		})
	}
	fmt.Printf("\nModem: 3 mailboxes x 20 messages, 56k down / 33.6k up, 75 ms each way, one shared line\n")
	fmt.Printf("%-15s %8s %8s %8s %10s %11s %9s %9s %6s\n", "tool", "busy s", "floor s", "busy/fl", "payload s", "busy/payld", "down B", "up B", "conns")
	for _, r := range rows {
		pf := payloadFloor(r.payload)
		fmt.Printf("%-15s %8.2f %8.2f %8.3f %10.2f %11.3f %9d %9d %6d\n", r.tool, r.st.Busy.Seconds(), r.st.Floor().Seconds(),
			r.st.Busy.Seconds()/r.st.Floor().Seconds(), pf.Seconds(), r.st.Busy.Seconds()/pf.Seconds(), r.st.DownBytes, r.st.UpBytes, r.st.Conns)
	}
	if len(rows) > 0 {
		fmt.Printf("payload: %d bytes of mail (as served, CRLF); deflate alone (one stream per mailbox, level 6) leaves %.3f of them\n",
			rows[0].payload, deflated(boxes))
	}
}

// deflated is the share of the mailboxes' served octets that remains after
// deflate, one stream per mailbox as COMPRESS=DEFLATE runs one per
// connection: the floor no IMAP client can go below with COMPRESS.
func deflated(boxes []mailbox) float64 {
	var in, out int64
	for _, mb := range boxes {
		var z bytes.Buffer
		w, _ := flate.NewWriter(&z, 6)
		for _, m := range mb.msgs {
			crlf := bytes.ReplaceAll(m, []byte("\n"), []byte("\r\n"))
			in += int64(len(crlf))
			w.Write(crlf)
		}
		w.Close()
		out += int64(z.Len())
	}
	return float64(out) / float64(in)
}

// payloadFloor is the mail's own bytes at the 56 kbit/s downlink rate.
func payloadFloor(n int64) time.Duration {
	return time.Duration(float64(n*8) / 56000 * float64(time.Second))
}

func BenchmarkFetchLoopback(b *testing.B) {
	need(b)
	store := mailStore(b)
	bin := linkctlBin(b)
	n := 5000
	if s := os.Getenv("BENCH_LOOPBACK_N"); s != "" {
		fmt.Sscan(s, &n)
	}
	rng := rand.New(rand.NewPCG(50, 0))
	mb := mailbox{user: "bulk"}
	for i := range n {
		mb.msgs = append(mb.msgs, message(rng, fmt.Sprintf("l%d@bench.example.org", i), 800+rng.IntN(1600)))
	}
	boxes := []mailbox{mb}
	d := testpeer.StartDovecot(b, testpeer.DovecotOptions{Users: map[string]string{"bulk": password}, Compress: true})
	pf := testpeer.StartPostfix(b, testpeer.PostfixOptions{})
	// Each tool runs loopbackRounds() times, the tools in turn, and the
	// table gives each one's median: a single run of a few seconds can
	// meet a burst of the machine's other work. A tool whose first run
	// took over a minute (fetchmail, mpop through sendmail) runs once:
	// noise of a few percent does not decide its row.
	walls := map[string][]time.Duration{}
	// The Maildirs are removed only at the end, so that no tool runs
	// right after another's 5000 files were removed (see mailStore).
	maildirs := b.TempDir()
	for round := range loopbackRounds() {
		for _, tool := range loopbackTools {
			if round > 0 {
				// Only the rows the first round ran (-bench selects
				// them), and without b.Run: a second sub-benchmark of
				// the same name would be "linkctl#01", which the
				// selection does not match.
				if ws := walls[tool.name]; len(ws) > 0 && ws[0] <= time.Minute {
					walls[tool.name] = append(ws, loopbackRun(b, bin, tool, d, pf, boxes, maildirs))
				}
				continue
			}
			b.Run(tool.name, func(b *testing.B) {
				for range b.N {
					walls[tool.name] = append(walls[tool.name], loopbackRun(b, bin, tool, d, pf, boxes, maildirs))
					b.ReportMetric(float64(n)/walls[tool.name][len(walls[tool.name])-1].Seconds(), "msgs/s")
				}
			})
		}
	}
	fmt.Printf("\nLoopback: %d messages (0.8-2.4 KB) from Dovecot POP3 or IMAP into Postfix (*-maildir: POP3 into a Maildir);\n%s\n", n, store)
	fmt.Printf("%-15s %5s %9s %9s  %s\n", "tool", "runs", "seconds", "msgs/s", "msgs/s of each run")
	median := map[string]time.Duration{}
	for _, tool := range loopbackTools {
		ws := walls[tool.name]
		if len(ws) == 0 {
			continue
		}
		var each []string
		for _, w := range ws {
			each = append(each, fmt.Sprintf("%.1f", float64(n)/w.Seconds()))
		}
		sorted := slices.Clone(ws)
		slices.Sort(sorted)
		median[tool.name] = sorted[len(sorted)/2]
		m := median[tool.name]
		fmt.Printf("%-15s %5d %9.2f %9.1f  %s\n", tool.name, len(ws), m.Seconds(), float64(n)/m.Seconds(), strings.Join(each, " "))
	}
	ratio := func(a, b string) {
		if ta, tb := median[a], median[b]; ta > 0 && tb > 0 {
			fmt.Printf("%s / %s rate (medians): %.2fx\n", a, b, tb.Seconds()/ta.Seconds())
		}
	}
	ratio("linkctl", "fetchmail")
	ratio("linkctl-maildir", "mpop-maildir")
}

// loopbackRounds is how many times each quick tool of the loopback table
// runs: BENCH_ROUNDS, default 3.
func loopbackRounds() int {
	n := 3
	if s := os.Getenv("BENCH_ROUNDS"); s != "" {
		fmt.Sscan(s, &n)
	}
	return max(n, 1)
}

// loopbackRun refills the mailbox, runs tool once, checks that all mail
// arrived and none was left, and returns its wall time.
func loopbackRun(b *testing.B, bin string, tool tool, d *testpeer.Dovecot, pf *testpeer.Postfix, boxes []mailbox, maildirs string) time.Duration {
	dir := b.TempDir()
	fill(d, boxes)
	j := fetchJob{dir: dir, addr: d.POP3Addr(), boxes: boxes, smtp: pf.Addr(), sessions: benchSessions()}
	if tool.imap {
		j.addr, j.imap, j.compress = d.IMAPAddr(), true, tool.compress
	}
	var env []string
	switch {
	case tool.maildir:
		md, err := os.MkdirTemp(maildirs, tool.name)
		if err != nil {
			b.Fatal(err)
		}
		j.smtp, j.maildir = "", makeMaildir(b, md)
	case tool.bin == "mpop":
		// mpop has no SMTP delivery: its usual MDA into Postfix.
		j.mdaArgv = "/usr/sbin/sendmail -oi -oem -f %F -- rcpt@sink.test"
		env = pf.Env()
	}
	wall, _ := runTool(b, tool.name, tool.command(b, bin, j), env)
	if l := left(d, boxes); l != 0 {
		b.Errorf("%s: %d messages left on the server", tool.name, l)
	}
	if tool.maildir {
		n := len(boxes[0].msgs)
		if got := countMaildir(j.maildir); got != n {
			b.Errorf("%s: %d of %d messages in the Maildir", tool.name, got, n)
		}
	}
	return wall
}

func BenchmarkFetchRSS(b *testing.B) {
	need(b)
	bin := linkctlBin(b)
	rng := rand.New(rand.NewPCG(7, 7))
	boxes := []mailbox{{user: "big", msgs: [][]byte{message(rng, "big@bench.example.org", 50<<20)}}}
	d := testpeer.StartDovecot(b, testpeer.DovecotOptions{Users: map[string]string{"big": password}, Compress: true})
	sink := testpeer.StartSink(b, testpeer.SinkOptions{})
	type row struct {
		tool string
		rss  int64
		wall time.Duration
	}
	var rows []row
	for _, tool := range tools {
		b.Run(tool.name, func(b *testing.B) {
			for range b.N {
				dir := b.TempDir()
				fill(d, boxes)
				sink.Clear()
				j := fetchJob{dir: dir, addr: d.POP3Addr(), boxes: boxes, maildir: makeMaildir(b, filepath.Join(dir, "Maildir"))}
				if tool.imap {
					j.addr, j.imap, j.compress = d.IMAPAddr(), true, tool.compress
				}
				if tool.bin == "fetchmail" {
					j.smtp = sink.Addr()
				}
				wall, rss := runTool(b, tool.name, tool.command(b, bin, j), nil)
				got := countMaildir(j.maildir)
				if tool.bin == "fetchmail" {
					got = len(sink.Messages())
				}
				if got != 1 {
					b.Errorf("%s: delivered %d of 1", tool.name, got)
				}
				rows = append(rows, row{tool.name, rss, wall})
				b.ReportMetric(float64(rss)/1024, "peak-RSS-MiB")
			}
		})
	}
	fmt.Printf("\nPeak RSS fetching one 50 MB message\n%-15s %10s %9s\n", "tool", "RSS MiB", "seconds")
	for _, r := range rows {
		fmt.Printf("%-15s %10.1f %9.2f\n", r.tool, float64(r.rss)/1024, r.wall.Seconds())
	}
}

// benchSessions is linkctl's local delivery sessions for the loopback
// run: BENCH_SESSIONS, or 0 for linkctl's default (fetch.deliver.sessions).
func benchSessions() int {
	n := 0
	if s := os.Getenv("BENCH_SESSIONS"); s != "" {
		fmt.Sscan(s, &n)
	}
	return n
}
