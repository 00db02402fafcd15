package fetch

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// headerInfo is what the engine reads from a message's header.
type headerInfo struct {
	ReturnPath    string // the address inside <>, "" for <> or none
	HasReturnPath bool
	MessageID     string
	// Envelope holds the addresses of the topmost field named by the
	// account's envelope header (multidrop), HasEnvelope whether there was
	// one at all.
	Envelope    []string
	HasEnvelope bool
	// The first Date, From, To and Subject, as written (unfolded): the
	// digest of a message without a Message-ID.
	Date, From, To, Subject string
}

// parseHead scans the header section of head (which may be cut short) for
// the first Return-Path and Message-ID fields, unfolding continuation
// lines (RFC 5322 section 2.2.3). The topmost Return-Path is the one the
// last delivering MTA wrote (RFC 5321 section 4.4).
func parseHead(head []byte) headerInfo { return parseHeadEnv(head, "") }

// parseHeadEnv is parseHead that also reads the topmost field named
// envelope (case-insensitive; "" for none): the envelope recipient as the
// final MTA at the provider wrote it (Delivered-To, X-Original-To,
// Envelope-To). Only the topmost counts: lower ones were added by earlier
// hops, a mailing list's or a forwarder's, and would loop or misroute.
// Exim's Envelope-To may list several addresses separated by commas.
func parseHeadEnv(head []byte, envelope string) headerInfo {
	var h headerInfo
	var name string
	var value strings.Builder
	flush := func() {
		v := strings.TrimSpace(value.String())
		if envelope != "" && !h.HasEnvelope && name != "" && strings.EqualFold(name, envelope) {
			h.HasEnvelope = true
			h.Envelope = addrList(v)
		}
		switch strings.ToLower(name) {
		case "return-path":
			if !h.HasReturnPath {
				h.HasReturnPath = true
				h.ReturnPath = angleAddr(v)
			}
		case "message-id":
			if h.MessageID == "" {
				h.MessageID = v
			}
		case "date":
			h.Date = first(h.Date, v)
		case "from":
			h.From = first(h.From, v)
		case "to":
			h.To = first(h.To, v)
		case "subject":
			h.Subject = first(h.Subject, v)
		}
		name = ""
		value.Reset()
	}
	for len(head) > 0 {
		i := bytes.IndexByte(head, '\n')
		if i < 0 {
			break // a line cut by headMax: not trusted
		}
		line := bytes.TrimSuffix(head[:i], []byte("\r"))
		head = head[i+1:]
		if len(line) == 0 {
			break // end of the header section
		}
		if line[0] == ' ' || line[0] == '\t' {
			if name != "" {
				value.WriteByte(' ')
				value.Write(bytes.TrimSpace(line))
			}
			continue
		}
		flush()
		if c := bytes.IndexByte(line, ':'); c > 0 {
			name = string(bytes.TrimSpace(line[:c]))
			value.Write(line[c+1:])
		}
	}
	flush()
	return h
}

func first(old, v string) string {
	if old != "" {
		return old
	}
	return v
}

// angleAddr returns the address in "<addr>" (with any comment around it),
// or the bare value without brackets; "<>" and garbage give "".
func angleAddr(v string) string {
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			v = v[i+1 : i+j]
		} else {
			return ""
		}
	}
	v = strings.TrimSpace(v)
	if strings.ContainsAny(v, " \t<>()\",;\r\n") {
		return ""
	}
	return v
}

// addrList splits an envelope header's value into addresses: commas
// separate them, each may be bare or in angle brackets; "<>" and garbage
// are left out.
func addrList(v string) []string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		if a := angleAddr(strings.TrimSpace(part)); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// receivedLine builds the trace field prepended to each fetched message
// (RFC 5321 section 4.4: "from" the server, "by" this host, "with" the
// protocol, "for" the recipient when there is one), naming linkctl and the
// account in the comment.
func receivedLine(server, host, proto, account string, to []string, now time.Time) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Received: from %s\n\tby %s (linkctl", clean(server), clean(host))
	if account != "" {
		fmt.Fprintf(&b, ", account %s", clean(account))
	}
	b.WriteString(")")
	if proto != "" {
		fmt.Fprintf(&b, " with %s", strings.ToUpper(clean(proto)))
	}
	if len(to) == 1 {
		fmt.Fprintf(&b, "\n\tfor <%s>", clean(to[0]))
	}
	fmt.Fprintf(&b, "; %s\n", now.Format(time.RFC1123Z))
	return b.Bytes()
}

// clean keeps a value from breaking the header: no line ends, no
// parentheses or angle brackets.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '\r', '\n', '(', ')', '<', '>', ';':
			return '_'
		}
		if r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, s)
	if s == "" {
		return "unknown"
	}
	return s
}
