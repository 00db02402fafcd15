// Package demo starts, in this process and on 127.0.0.1 only, everything
// `linkctl demo` needs to show the whole pipeline without any setup:
//
//   - a relay (the ISP's MX and smarthost) holding mail for demo.example,
//     which answers ETRN (RFC 1985) and then delivers what it holds over a
//     new SMTP connection to our local MTA, as real relays do;
//   - a POP3 server and an IMAP server (go-imap's in-memory server), each
//     with a few realistic messages for user "demo";
//   - a local SMTP sink standing in for the local MTA, which writes every
//     message it accepts into a Maildir under the demo directory;
//   - a local outbound queue (files in a directory) that the flush stage
//     sends to the relay through a helper mode of the linkctl binary;
//   - a simulated modem (internal/linksim: 56k down, 33.6k up, a one-way
//     delay, one shared line per direction) between linkctl and the remote
//     servers, and between the relay and our local MTA, unless Fast is set.
//
// [Start] returns an [Env] with the addresses and a linkctl.yaml (also
// written 0600 to the demo directory) that the CLI runs through the same
// code path as `linkctl run`; [Env.Close] stops everything.
package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-smtp"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/linksim"
)

// Domain is the demo's own mail domain, the one the relay holds mail for.
const Domain = "demo.example"

// The demo mailbox accounts' credentials (loopback only, shown to the user).
const (
	User     = "demo"
	Password = "demo"
	// LocalUser is who fetched mail is for. Qualified, because the demo's
	// local MTA (go-smtp) follows RFC 5321 section 4.1.2 strictly and
	// refuses a recipient without a domain, as Exim does over TCP.
	LocalUser = "you@localhost"
)

// Options tune Start. The zero value works.
type Options struct {
	// Dir holds the Maildir, the outbound queue, linkctl's state and the
	// config. "" makes a new temporary directory (removed by Close only
	// when Start made it and Keep is false).
	Dir  string
	Keep bool
	// Fast skips the modem simulation.
	Fast bool
	// DownBPS and UpBPS are the modem's line rates in bits per second
	// (default 56000 and 33600); Delay its one-way delay (default 60ms).
	DownBPS, UpBPS int64
	Delay          time.Duration
	// Self is the argv that runs this program's demo helper (the CLI passes
	// [/path/to/linkctl, demo-helper]); Start appends "--send-queue DIR --relay ADDR"
	// and "--list-queue DIR" for the flush stage and "--hangup" for the drop
	// stage. Without it the pipeline has no flush and no drop stage.
	Self []string
	// Skip leaves these stages out of the config ("flush", "etrn", "drop"),
	// for a linkctl built without them.
	Skip []string
	Log  *slog.Logger
}

// Env is a running demo.
type Env struct {
	Dir        string // the demo directory
	Maildir    string // where delivered mail lands
	QueueDir   string // the local outbound queue
	StateDir   string // linkctl's state_dir
	ConfigFile string // the linkctl.yaml written for the demo (0600)
	Config     []byte // its text

	RelayAddr string // the relay (ETRN, smarthost), as linkctl reaches it
	POP3Addr  string // as linkctl reaches it (through the modem unless Fast)
	IMAPAddr  string
	SinkAddr  string // the local MTA
	Modem     string // "56.0k down / 33.6k up, 60ms" or "" when Fast

	relay   *relay
	pop     *pop3Server
	imapSrv *imapserver.Server
	imapLn  net.Listener
	imapBox *imapmemserver.User
	sink    *sink
	out, in *linksim.Link // our connections out; the relay's connection in
	proxies []*linksim.Proxy
	ownDir  bool
	keep    bool
}

// Start starts every server and writes the config. On error, whatever was
// started is stopped.
func Start(ctx context.Context, o Options) (env *Env, err error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Env{Dir: o.Dir, keep: o.Keep}
	if e.Dir == "" {
		if e.Dir, err = os.MkdirTemp("", "linkctl-demo-"); err != nil {
			return nil, errkind.WrapPermanent(errkind.Internal, "cannot make the demo directory", err)
		}
		e.ownDir = true
	}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	e.Maildir = filepath.Join(e.Dir, "Maildir")
	e.QueueDir = filepath.Join(e.Dir, "queue")
	e.StateDir = filepath.Join(e.Dir, "state")
	for _, d := range []string{e.QueueDir, e.StateDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, errkind.WrapPermanent(errkind.Internal, "cannot make "+d, err)
		}
	}
	relayed, popMsgs, imapMsgs, outbound := sampleMessages(time.Now())

	if e.sink, err = startSink(e.Maildir); err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "demo", err)
	}
	e.SinkAddr = e.sink.addr()
	if e.relay, err = startRelay(Domain, relayed, log); err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "demo", err)
	}
	if e.pop, err = startPOP3(User, Password, popMsgs); err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "demo", err)
	}
	if err = e.startIMAP(imapMsgs); err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "demo", err)
	}
	if err = writeQueue(e.QueueDir, outbound); err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "cannot fill the demo queue", err)
	}

	e.RelayAddr, e.POP3Addr, e.IMAPAddr = e.relay.addr(), e.pop.addr(), e.imapLn.Addr().String()
	sinkForRelay := e.SinkAddr
	if !o.Fast {
		down, up, delay := o.DownBPS, o.UpBPS, o.Delay
		if down == 0 {
			down = 56000
		}
		if up == 0 {
			up = 33600
		}
		if delay == 0 {
			delay = 60 * time.Millisecond
		}
		e.out = &linksim.Link{Down: int(down), Up: int(up), Delay: delay}
		// The relay's deliveries come down the same line; linksim's
		// directions are seen from the connecting side, so the relay's
		// connection gets a link of its own with the rates swapped.
		e.in = &linksim.Link{Down: int(up), Up: int(down), Delay: delay}
		e.Modem = fmt.Sprintf("%.1fk down / %.1fk up, %v each way", float64(down)/1000, float64(up)/1000, delay)
		front := func(l *linksim.Link, target string) (string, error) {
			p, err := l.Listen(target)
			if err != nil {
				return "", err
			}
			e.proxies = append(e.proxies, p)
			return p.Addr(), nil
		}
		for _, a := range []*string{&e.RelayAddr, &e.POP3Addr, &e.IMAPAddr} {
			if *a, err = front(e.out, *a); err != nil {
				return nil, errkind.WrapPermanent(errkind.Internal, "demo modem", err)
			}
		}
		if sinkForRelay, err = front(e.in, e.SinkAddr); err != nil {
			return nil, errkind.WrapPermanent(errkind.Internal, "demo modem", err)
		}
	}
	e.relay.deliverTo = func() string { return sinkForRelay }

	e.Config = e.config(o.Self, o.Skip)
	e.ConfigFile = filepath.Join(e.Dir, "linkctl.yaml")
	if err := os.WriteFile(e.ConfigFile, e.Config, 0o600); err != nil {
		return nil, errkind.WrapPermanent(errkind.Internal, "cannot write the demo config", err)
	}
	return e, nil
}

func (e *Env) startIMAP(msgs []msg) error {
	mem := imapmemserver.New()
	e.imapBox = imapmemserver.NewUser(User, Password)
	if err := e.imapBox.Create("INBOX", nil); err != nil {
		return err
	}
	mem.AddUser(e.imapBox)
	for _, m := range msgs {
		text := crlf(m.Text)
		if _, err := e.imapBox.Append("INBOX", literal{strings.NewReader(text), int64(len(text))}, &imap.AppendOptions{}); err != nil {
			return err
		}
	}
	e.imapSrv = imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapMove: {}},
		InsecureAuth: true, // loopback only, no TLS in the demo
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("cannot listen for the demo IMAP server: %w", err)
	}
	e.imapLn = ln
	go e.imapSrv.Serve(ln)
	return nil
}

type literal struct {
	*strings.Reader
	n int64
}

func (l literal) Size() int64 { return l.n }

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

// config writes the linkctl.yaml that runs the demo.
func (e *Env) config(self, skip []string) []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	argv := func(args ...string) string {
		q := make([]string, len(args))
		for i, a := range args {
			q[i] = strconv.Quote(a)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	has := func(stage string) bool {
		for _, s := range skip {
			if s == stage {
				return false
			}
		}
		return stage == "etrn" || stage == "fetch" || len(self) > 0
	}
	w("# linkctl.yaml written by `linkctl demo`: every server is on 127.0.0.1.\n")
	w("link: {watch: [lo]}\n")
	w("state_dir: %s\n", strconv.Quote(e.StateDir))
	w("control_socket: %s\n", strconv.Quote(filepath.Join(e.Dir, "control.sock")))
	w("pipeline:\n")
	switch {
	case has("flush") && has("etrn"):
		w("  - [flush, etrn]   # outbound up the line while inbound comes down it\n")
	case has("flush"):
		w("  - flush\n")
	case has("etrn"):
		w("  - etrn\n")
	}
	if has("fetch") {
		w("  - fetch\n")
	}
	if has("drop") {
		w("  - drop\n")
	}
	if has("flush") {
		w("flush:\n  mta: command\n  wait: drained\n")
		w("  flush_command: %s\n", argv(append(append([]string(nil), self...), "--send-queue", e.QueueDir, "--relay", e.RelayAddr)...))
		w("  list_command: %s\n", argv(append(append([]string(nil), self...), "--list-queue", e.QueueDir)...))
	}
	if has("etrn") {
		w("etrn:\n")
		w("  quiet: 2s          # the relay's deliveries have stopped for 2s: done\n")
		w("  quiet_max: 40s\n")
		w("  ports: [%s]\n", port(e.SinkAddr))
		w("  count_loopback: true   # the demo's relay connects from 127.0.0.1\n")
		w("  servers:\n")
		w("    - {server: %s, domains: [%s], tls: none}\n", strconv.Quote(e.RelayAddr), Domain)
	}
	if has("fetch") {
		w("fetch:\n")
		w("  deliver: {smtp: %s}\n", strconv.Quote(e.SinkAddr))
		w("  accounts:\n")
		w("    - {name: isp-pop3, proto: pop3, server: %s, tls: none, user: %s, password: %s, to: [%s]}\n",
			strconv.Quote(e.POP3Addr), User, Password, strconv.Quote(LocalUser))
		w("    - {name: work-imap, proto: imap, server: %s, tls: none, user: %s, password: %s, to: [%s]}\n",
			strconv.Quote(e.IMAPAddr), User, Password, strconv.Quote(LocalUser))
	}
	if has("drop") {
		w("drop:\n  command: %s\n  idle: 1s\n", argv(append(append([]string(nil), self...), "--hangup")...))
	}
	return b.Bytes()
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// Delivered lists the files in the Maildir's new/ directory.
func (e *Env) Delivered() []string {
	ents, _ := os.ReadDir(filepath.Join(e.Maildir, "new"))
	var out []string
	for _, x := range ents {
		out = append(out, filepath.Join(e.Maildir, "new", x.Name()))
	}
	sort.Strings(out)
	return out
}

// Left reports what is still waiting on the "remote" side: held at the
// relay, on the POP3 server, in the IMAP INBOX, and in the local queue.
func (e *Env) Left() (relay, pop3, imapN, queue int) {
	st, err := e.imapBox.Status("INBOX", &imap.StatusOptions{NumMessages: true})
	if err == nil && st.NumMessages != nil {
		imapN = int(*st.NumMessages)
	}
	q, _ := os.ReadDir(e.QueueDir)
	return e.relay.heldCount(), e.pop.count(), imapN, len(q)
}

// LineStats is what crossed the simulated modem, seen from our side.
type LineStats struct {
	Down, Up int64         // bytes carried towards us and away from us
	Floor    time.Duration // the least time those bytes take on the line
	Busy     time.Duration // the time the line was in use (what a metered line bills)
}

// Line reports what crossed the modem (zero when Fast).
func (e *Env) Line() LineStats {
	if e.out == nil {
		return LineStats{}
	}
	o, i := e.out.Stats(), e.in.Stats()
	return LineStats{
		Down:  o.DownBytes + i.UpBytes,
		Up:    o.UpBytes + i.DownBytes,
		Floor: max(o.DownTx+i.UpTx, o.UpTx+i.DownTx),
		Busy:  o.Busy + i.Busy, // an upper bound: the two may overlap
	}
}

// Sent is how many messages the relay accepted for other domains (the
// outbound queue, "gone to the Internet").
func (e *Env) Sent() int { return len(e.relay.outbound()) }

// Close stops every server and, when Start made the directory and Keep is
// off, removes it.
func (e *Env) Close() error {
	for _, p := range e.proxies {
		p.Close()
	}
	if e.relay != nil {
		e.relay.close()
	}
	if e.pop != nil {
		e.pop.close()
	}
	if e.imapSrv != nil {
		e.imapSrv.Close()
	}
	if e.sink != nil {
		e.sink.close()
	}
	if e.ownDir && !e.keep {
		return os.RemoveAll(e.Dir)
	}
	return nil
}

// writeQueue fills the outbound queue: one file per message, the envelope
// on the first two lines ("From addr", "To addr"), a blank line, the text.
func writeQueue(dir string, msgs []msg) error {
	for i, m := range msgs {
		p := filepath.Join(dir, fmt.Sprintf("%03d.msg", i+1))
		if err := os.WriteFile(p, []byte("From "+m.From+"\nTo "+m.To+"\n\n"+m.Text), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// SendQueue is the demo's queue runner (flush's `mta: command`): it sends
// every message in dir to the relay at addr over one SMTP session and
// removes each file once the relay has answered 250. It returns how many it
// sent.
func SendQueue(ctx context.Context, dir, addr string) (int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, errkind.WrapPermanent(errkind.Internal, "demo queue "+dir, err)
	}
	if len(ents) == 0 {
		return 0, nil
	}
	d := net.Dialer{Timeout: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, errkind.WrapTemporary(errkind.Network, "demo queue: cannot reach the relay "+addr, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("client.isp.example"); err != nil {
		return 0, errkind.WrapTemporary(errkind.Protocol, "demo queue: EHLO", err)
	}
	sent := 0
	for _, x := range ents {
		p := filepath.Join(dir, x.Name())
		from, to, text, err := readQueued(p)
		if err != nil {
			return sent, errkind.WrapPermanent(errkind.Internal, "demo queue "+p, err)
		}
		if err := c.SendMail(from, []string{to}, strings.NewReader(crlf(text))); err != nil {
			return sent, errkind.WrapTemporary(errkind.Network, "demo queue: sending "+x.Name(), err)
		}
		if err := os.Remove(p); err != nil {
			return sent, errkind.WrapPermanent(errkind.Internal, "demo queue", err)
		}
		sent++
	}
	_ = c.Quit()
	return sent, nil
}

// ListQueue prints the queue in dir as `postqueue -j` does (one JSON object
// per message), the listing flush's `mta: command` understands: it lets the
// flush stage see the queue drain.
func ListQueue(dir string, w io.Writer) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return errkind.WrapPermanent(errkind.Internal, "demo queue "+dir, err)
	}
	enc := json.NewEncoder(w)
	for _, x := range ents {
		p := filepath.Join(dir, x.Name())
		from, to, text, err := readQueued(p)
		if err != nil {
			continue // sent and removed meanwhile, or not a queue file
		}
		fi, _ := x.Info()
		var arrival int64
		if fi != nil {
			arrival = fi.ModTime().Unix()
		}
		type rcpt struct {
			Address string `json:"address"`
			Reason  string `json:"delay_reason"`
		}
		if err := enc.Encode(struct {
			Queue      string `json:"queue_name"`
			ID         string `json:"queue_id"`
			Arrival    int64  `json:"arrival_time"`
			Size       int    `json:"message_size"`
			Sender     string `json:"sender"`
			Recipients []rcpt `json:"recipients"`
		}{"deferred", strings.TrimSuffix(x.Name(), ".msg"), arrival, len(text), from,
			[]rcpt{{to, "waiting for the link to come up"}}}); err != nil {
			return err
		}
	}
	return nil
}

func readQueued(p string) (from, to, text string, err error) {
	f, err := os.Open(p)
	if err != nil {
		return "", "", "", err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for _, dst := range []*string{&from, &to} {
		l, err := r.ReadString('\n')
		if err != nil {
			return "", "", "", fmt.Errorf("bad queue file: %w", err)
		}
		_, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		*dst = v
	}
	if l, _ := r.ReadString('\n'); strings.TrimSpace(l) != "" {
		return "", "", "", fmt.Errorf("bad queue file: no blank line after the envelope")
	}
	b, err := io.ReadAll(r)
	return from, to, string(b), err
}
