package flush

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Message is one queued message as an MTA's queue listing shows it.
type Message struct {
	ID         string
	Queue      string // the MTA's word for where it is: deferred, active, hold, frozen, inflight, ...
	Sender     string
	Size       int64
	Recipients []Recipient
	// Active: a delivery attempt is running now (Postfix "*" / active
	// queue, OpenSMTPD "inflight").
	Active bool
	// Held: on hold, frozen, quarantined or paused; a flush does not send
	// it (except exim -qff for frozen messages, see the exim driver).
	Held bool
	// LastTry is the last delivery attempt, when the listing says
	// (OpenSMTPD); zero otherwise.
	LastTry time.Time
	// Arrival is when the message was queued: to the second from Postfix
	// JSON and OpenSMTPD, to the second or minute (the year inferred) from
	// the mailq formats, from the age column of exim -bp (its rounding);
	// zero when the listing does not say. Dial on demand reads it.
	Arrival time.Time
	// Reason is why it was deferred, when the listing says: the first
	// recipient's reason, or the message's.
	Reason string
}

// Recipient is one recipient of a queued message.
type Recipient struct {
	Address string
	Reason  string // why delivery to it was deferred, "" when unknown
	Done    bool   // already delivered (exim "D")
}

// ErrFormat is wrapped by every parser for output it does not understand.
var ErrFormat = errors.New("unrecognised queue listing")

func formatErr(mta string, line int, what string, text string) error {
	if len(text) > 80 {
		text = text[:80] + "..."
	}
	return fmt.Errorf("%w: %s line %d: %s: %q", ErrFormat, mta, line, what, text)
}

// ParsePostfixJSON parses `postqueue -j` (Postfix 3.1 and later): one JSON
// object per line (postqueue(1) "JSON OBJECT FORMAT").
func ParsePostfixJSON(out []byte) ([]Message, error) {
	var msgs []Message
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024) // a message with thousands of recipients is one line
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var j struct {
			Queue      string `json:"queue_name"`
			ID         string `json:"queue_id"`
			Arrival    int64  `json:"arrival_time"`
			Size       int64  `json:"message_size"`
			Sender     string `json:"sender"`
			Recipients []struct {
				Address string `json:"address"`
				Reason  string `json:"delay_reason"`
			} `json:"recipients"`
		}
		if err := json.Unmarshal(line, &j); err != nil {
			return nil, formatErr("postqueue -j", n, err.Error(), string(line))
		}
		if j.ID == "" {
			return nil, formatErr("postqueue -j", n, "no queue_id", string(line))
		}
		m := Message{ID: j.ID, Queue: j.Queue, Sender: j.Sender, Size: j.Size,
			Active: j.Queue == "active", Held: j.Queue == "hold"}
		if j.Arrival > 0 {
			m.Arrival = time.Unix(j.Arrival, 0)
		}
		for _, r := range j.Recipients {
			m.Recipients = append(m.Recipients, Recipient{Address: r.Address, Reason: r.Reason})
			if m.Reason == "" {
				m.Reason = r.Reason
			}
		}
		msgs = append(msgs, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: postqueue -j: %v", ErrFormat, err)
	}
	return msgs, nil
}

// The classic sendmail-style listing of `mailq` / `postqueue -p`:
// "ID[*!] size date sender", then "(reason)" and recipient lines.
var postfixHead = regexp.MustCompile(`^([0-9A-Za-z]+)([*!]?)\s+(\d+)\s+(\S+\s+\S+\s+\d+\s+\d+:\d+:\d+)\s+(.*)$`)

// ParsePostfixText parses `postqueue -p` / Postfix's `mailq`, for Postfix
// before 3.1 and for `mta: command` set-ups that print it. "*" marks the
// active queue, "!" the hold queue (postqueue(1)).
func ParsePostfixText(out []byte) ([]Message, error) {
	var msgs []Message
	var cur *Message
	reason := ""
	for n, line := range strings.Split(string(out), "\n") {
		line = strings.TrimRight(line, "\r")
		t := strings.TrimSpace(line)
		switch {
		case t == "" || strings.HasPrefix(t, "-Queue ID-") || strings.HasPrefix(t, "-- ") ||
			t == "Mail queue is empty":
			if t == "" {
				cur, reason = nil, ""
			}
		case postfixHead.MatchString(line):
			g := postfixHead.FindStringSubmatch(line)
			size, _ := strconv.ParseInt(g[3], 10, 64)
			msgs = append(msgs, Message{ID: g[1], Size: size, Sender: g[5], Queue: map[string]string{"*": "active", "!": "hold", "": "deferred"}[g[2]],
				Active: g[2] == "*", Held: g[2] == "!", Arrival: yearless("Mon Jan _2 15:04:05", g[4])})
			cur = &msgs[len(msgs)-1]
			reason = ""
		case cur != nil && strings.HasPrefix(t, "(") && strings.HasSuffix(t, ")"):
			reason = strings.TrimSuffix(strings.TrimPrefix(t, "("), ")")
			if cur.Reason == "" {
				cur.Reason = reason
			}
		case cur != nil && strings.HasPrefix(line, " ") && !strings.ContainsAny(t, " \t") || cur != nil && strings.HasPrefix(t, `"`):
			cur.Recipients = append(cur.Recipients, Recipient{Address: t, Reason: reason})
		default:
			return nil, formatErr("postqueue -p", n+1, "unexpected line", line)
		}
	}
	return msgs, nil
}

var (
	sendmailHead = regexp.MustCompile(`^([0-9A-Za-z]{8,})([*X-]?)\s+(\d+)\s+(\S+\s+\S+\s+\d+\s+\d+:\d+)\s+(.*)$`)
)

// ParseSendmail parses sendmail's `mailq` / `sendmail -bp` (8.x): a header
// per queue directory, "Q-ID[*X-] size date sender", then indented
// "QUARANTINE: reason", "(reason)" and recipient lines; "*" marks a message
// being delivered now, "X" one whose job is running in another process,
// "-" one too young to run (sendmail/queue.c printqueue()).
func ParseSendmail(out []byte) ([]Message, error) {
	var msgs []Message
	var cur *Message
	for n, line := range strings.Split(string(out), "\n") {
		line = strings.TrimRight(line, "\r")
		t := strings.TrimSpace(line)
		switch {
		case t == "":
		case strings.HasPrefix(t, "-----Q-ID-----") || strings.HasPrefix(t, "Total requests:") ||
			strings.HasSuffix(t, " is empty") || strings.HasSuffix(t, "request)") || strings.HasSuffix(t, "requests)") ||
			strings.HasPrefix(t, "Deferred:"):
			// headers, summaries; "Deferred:" without parentheses is not a line sendmail prints
		case sendmailHead.MatchString(line) && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t"):
			g := sendmailHead.FindStringSubmatch(line)
			size, _ := strconv.ParseInt(g[3], 10, 64)
			msgs = append(msgs, Message{ID: g[1], Size: size, Sender: g[5], Queue: "queued", Active: g[2] == "*" || g[2] == "X",
				Arrival: yearless("Mon Jan _2 15:04", g[4])})
			cur = &msgs[len(msgs)-1]
		case cur != nil && strings.HasPrefix(t, "QUARANTINE:"):
			cur.Held, cur.Queue = true, "quarantine"
		case cur != nil && strings.HasPrefix(t, "(") && strings.HasSuffix(t, ")"):
			r := strings.TrimSuffix(strings.TrimPrefix(t, "("), ")")
			cur.Reason = strings.TrimSpace(strings.TrimPrefix(r, "Deferred:"))
		case cur != nil && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")):
			cur.Recipients = append(cur.Recipients, Recipient{Address: t, Reason: cur.Reason})
		default:
			return nil, formatErr("sendmail -bp", n+1, "unexpected line", line)
		}
	}
	return msgs, nil
}

// exim -bp: "age size id <sender> [*** frozen ***]", then recipient lines,
// "D" before a delivered one, a blank line between messages (exim
// spec, "-bp" option). Sizes are printed with K/M suffixes.
var eximHead = regexp.MustCompile(`^\s*(\d+[smhdw])\s+([\d.]+[KMG]?)\s+(\S+)\s+<(.*?)>( \*\*\* frozen \*\*\*)?\s*$`)

// ParseExim parses `exim -bp`.
func ParseExim(out []byte) ([]Message, error) {
	var msgs []Message
	var cur *Message
	for n, line := range strings.Split(string(out), "\n") {
		line = strings.TrimRight(line, "\r")
		t := strings.TrimSpace(line)
		switch {
		case t == "":
			cur = nil
		case eximHead.MatchString(line):
			g := eximHead.FindStringSubmatch(line)
			frozen := g[5] != ""
			q := "queued"
			if frozen {
				q = "frozen"
			}
			msgs = append(msgs, Message{ID: g[3], Size: eximSize(g[2]), Sender: g[4], Queue: q, Held: frozen, Arrival: eximArrival(g[1])})
			cur = &msgs[len(msgs)-1]
		case cur != nil && strings.HasPrefix(line, " "):
			r := Recipient{Address: t}
			if a, ok := strings.CutPrefix(t, "D "); ok {
				r = Recipient{Address: strings.TrimSpace(a), Done: true}
			} else if a, ok := strings.CutPrefix(t, "+D "); ok { // delivered, via a "one_time" parent
				r = Recipient{Address: strings.TrimSpace(a), Done: true}
			}
			cur.Recipients = append(cur.Recipients, r)
		default:
			return nil, formatErr("exim -bp", n+1, "unexpected line", line)
		}
	}
	return msgs, nil
}

// now is the clock the mailq formats' dates are read against (they lack
// the year; exim prints an age); tests set it.
var now = time.Now

// yearless reads a mailq date without a year ("Wed Nov 25 04:20:06") in
// local time, in the latest year that does not put it more than a day in
// the future (queued mail is never from tomorrow; a day allows for clock
// skew). Zero when it does not parse.
func yearless(layout, s string) time.Time {
	t, err := time.ParseInLocation(layout, strings.Join(strings.Fields(s), " "), time.Local)
	if err != nil {
		// the listing pads days with a space: "Nov  5"
		if t, err = time.ParseInLocation(strings.ReplaceAll(layout, "_2", "2"), strings.Join(strings.Fields(s), " "), time.Local); err != nil {
			return time.Time{}
		}
	}
	n := now()
	for y := n.Year() + 1; y >= n.Year()-1; y-- {
		c := time.Date(y, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.Local)
		if !c.After(n.Add(24 * time.Hour)) {
			return c
		}
	}
	return time.Time{}
}

// eximArrival turns exim -bp's age column ("25m", "3h", "2d") into an
// arrival time.
func eximArrival(age string) time.Time {
	if len(age) < 2 {
		return time.Time{}
	}
	v, err := strconv.Atoi(age[:len(age)-1])
	if err != nil {
		return time.Time{}
	}
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}[age[len(age)-1]]
	return now().Add(-time.Duration(v) * unit)
}

func eximSize(s string) int64 {
	mult := 1.0
	switch s[len(s)-1] {
	case 'K':
		mult, s = 1024, s[:len(s)-1]
	case 'M':
		mult, s = 1024*1024, s[:len(s)-1]
	case 'G':
		mult, s = 1024*1024*1024, s[:len(s)-1]
	}
	f, _ := strconv.ParseFloat(s, 64)
	return int64(f * mult)
}

// ParseEximMsglog reads `exim -Mvl ID` (the message log) and returns the
// last deferral reason per recipient: lines "TIME [pid] ADDR [<orig>]
// R=.. T=.. defer (N): reason" or "... defer (N) H=..: reason".
func ParseEximMsglog(out []byte) map[string]string {
	reasons := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		i := strings.Index(line, " defer (")
		if len(f) < 4 || i < 0 {
			continue
		}
		// The address: after date and time, before " R=" (an address
		// with a space is followed by its original form in <>).
		head := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(line[:i], f[0]), " "+f[1]))
		addr, _, _ := strings.Cut(head, " R=")
		if j := strings.LastIndex(addr, " <"); j >= 0 && strings.HasSuffix(addr, ">") {
			addr = addr[j+2 : len(addr)-1]
		}
		rest := line[i+len(" defer ("):]
		_, after, ok := strings.Cut(rest, ")")
		if !ok || addr == "" {
			continue
		}
		after = strings.TrimPrefix(after, ":")
		if h, r, ok := strings.Cut(after, "]: "); ok && strings.Contains(h, "H=") {
			after = r
		}
		reasons[addr] = strings.TrimSpace(after)
	}
	return reasons
}

// ParseOpenSMTPD parses `smtpctl show queue`: one envelope per line,
// "evpid|af|type|flags|sender|rcpt|dest|ctime|lasttry|nexttry|retry|
// runstate|expire|errorline" (smtpctl.c show_queue_envelope). Envelopes
// are grouped into messages by message id, the first 8 hex digits of the
// envelope id. A "suspend" flag is a paused envelope; "inflight" is being
// delivered now.
func ParseOpenSMTPD(out []byte) ([]Message, error) {
	var msgs []Message
	idx := map[string]int{}
	for n, line := range strings.Split(string(out), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.SplitN(line, "|", 14)
		if len(f) < 13 || len(f[0]) != 16 {
			return nil, formatErr("smtpctl show queue", n+1, "not an envelope line", line)
		}
		if _, err := strconv.ParseUint(f[0], 16, 64); err != nil {
			return nil, formatErr("smtpctl show queue", n+1, "bad envelope id", line)
		}
		msgid := f[0][:8]
		i, ok := idx[msgid]
		if !ok {
			sender := f[4]
			if sender == "@" {
				sender = "" // the null sender <>
			}
			msgs = append(msgs, Message{ID: msgid, Sender: sender, Queue: f[11]})
			if sec, err := strconv.ParseInt(f[7], 10, 64); err == nil && sec > 0 {
				msgs[len(msgs)-1].Arrival = time.Unix(sec, 0) // ctime
			}
			i = len(msgs) - 1
			idx[msgid] = i
		}
		m := &msgs[i]
		reason := ""
		if len(f) == 14 {
			reason = f[13]
		}
		m.Recipients = append(m.Recipients, Recipient{Address: f[5], Reason: reason})
		if m.Reason == "" {
			m.Reason = reason
		}
		if f[11] == "inflight" {
			m.Active, m.Queue = true, "inflight"
		}
		if strings.Contains(f[3], "suspend") {
			m.Held, m.Queue = true, "suspend"
		}
		if sec, err := strconv.ParseInt(f[8], 10, 64); err == nil && sec > 0 {
			if t := time.Unix(sec, 0); t.After(m.LastTry) {
				m.LastTry = t
			}
		}
	}
	return msgs, nil
}

// ParseAuto recognises the format of a listing (for `mta: command`): JSON
// lines (postqueue -j), OpenSMTPD's "|" lines, sendmail's or Postfix's
// mailq headers, or exim -bp.
func ParseAuto(out []byte) ([]Message, error) {
	t := strings.TrimSpace(string(out))
	switch {
	case t == "" || t == "Mail queue is empty":
		return nil, nil
	case strings.HasPrefix(t, "{"):
		return ParsePostfixJSON(out)
	case strings.Contains(t, "-Queue ID-"):
		return ParsePostfixText(out)
	case strings.Contains(t, "-----Q-ID-----") || strings.Contains(t, "Total requests:"):
		return ParseSendmail(out)
	case strings.Count(strings.SplitN(t, "\n", 2)[0], "|") >= 12:
		return ParseOpenSMTPD(out)
	}
	return ParseExim(out)
}
