package esmtp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/linkctl/linkctl/internal/errkind"
)

// Limits on what a server may send in one reply. RFC 5321 section
// 4.5.3.1.5 caps a reply line at 512 octets including the CRLF; a few
// servers send longer banners, but nothing legitimate comes near 4 kB, and
// a reply of more than maxReplyLines lines is a server that never stops.
const (
	maxLineOctets = 512
	maxReplyLines = 100
)

// Reply is one SMTP reply: the code, the RFC 3463 enhanced status code of
// its first line when the server sent one, and the text of each line with
// the code (and a repeated enhanced code) removed.
type Reply struct {
	Code     int
	Enhanced string   // "2.0.0", or "" when absent
	Lines    []string // text of each line, without code, separator and enhanced code
}

// Text returns the reply's text on one line, lines joined with "; ".
func (r Reply) Text() string { return strings.Join(r.Lines, "; ") }

// String renders the reply cleanly on one line: "250 2.0.0 Queuing started".
func (r Reply) String() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(r.Code))
	if r.Enhanced != "" {
		b.WriteString(" " + r.Enhanced)
	}
	if t := r.Text(); t != "" {
		b.WriteString(" " + t)
	}
	return b.String()
}

// Class is the first digit of the code: 2 success, 3 continue, 4
// temporary failure, 5 permanent failure.
func (r Reply) Class() int { return r.Code / 100 }

var errProtocol = errors.New("protocol violation")

// readLine reads one CRLF- (or LF-) terminated line of at most max octets
// and returns it without the line ending. A longer line is an error, and
// reading stops there: the rest of it is never buffered.
func readLine(br *bufio.Reader, max int) (string, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > max {
			return "", fmt.Errorf("%w: reply line longer than %d octets (RFC 5321 section 4.5.3.1.5)", errProtocol, max)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return "", err
	}
	s := strings.TrimSuffix(string(line), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}

// ReadReply reads one possibly multi-line reply (RFC 5321 section 4.2.1:
// "250-text" continues, "250 text" ends; every line carries the same
// code). Overlong lines, too many lines, a missing or changing code are
// protocol errors; I/O errors (including deadline expiry) are returned as
// they are for the caller to classify.
// onLine, when set, sees every raw line (for the transcript).
func ReadReply(br *bufio.Reader, onLine func(string)) (Reply, error) {
	var r Reply
	for n := 0; ; n++ {
		if n == maxReplyLines {
			return r, fmt.Errorf("%w: reply of more than %d lines", errProtocol, maxReplyLines)
		}
		line, err := readLine(br, maxLineOctets)
		if err != nil {
			return r, err
		}
		if onLine != nil {
			onLine(line)
		}
		code, more, text, err := parseReplyLine(line)
		if err != nil {
			return r, err
		}
		if n == 0 {
			r.Code = code
		} else if code != r.Code {
			return r, fmt.Errorf("%w: reply code changed from %d to %d within one reply", errProtocol, r.Code, code)
		}
		// RFC 2034 section 4: the enhanced code follows the reply code on
		// every line of a 2xx/4xx/5xx reply; keep the first, strip the rest.
		if enh, rest, ok := cutEnhanced(text, code); ok {
			if n == 0 {
				r.Enhanced = enh
			}
			text = rest
		}
		r.Lines = append(r.Lines, text)
		if !more {
			return r, nil
		}
	}
}

// parseReplyLine splits "250-text" / "250 text" / "250".
func parseReplyLine(line string) (code int, more bool, text string, err error) {
	if len(line) < 3 {
		return 0, false, "", fmt.Errorf("%w: malformed reply line %q", errProtocol, clip(line))
	}
	for i := 0; i < 3; i++ {
		if line[i] < '0' || line[i] > '9' {
			return 0, false, "", fmt.Errorf("%w: malformed reply line %q", errProtocol, clip(line))
		}
	}
	if line[0] < '2' || line[0] > '5' {
		return 0, false, "", fmt.Errorf("%w: reply code %q out of range", errProtocol, line[:3])
	}
	code, _ = strconv.Atoi(line[:3])
	switch {
	case len(line) == 3:
		return code, false, "", nil
	case line[3] == '-':
		return code, true, line[4:], nil
	case line[3] == ' ':
		return code, false, line[4:], nil
	}
	return 0, false, "", fmt.Errorf("%w: malformed reply line %q", errProtocol, clip(line))
}

// cutEnhanced splits an RFC 3463 status code ("2.1.5 rest") off text when
// its class matches the reply code's.
func cutEnhanced(text string, code int) (enh, rest string, ok bool) {
	word, rest, _ := strings.Cut(text, " ")
	parts := strings.Split(word, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || parts[0][0] != byte('0'+code/100) {
		return "", text, false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 {
			return "", text, false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return "", text, false
			}
		}
	}
	return word, rest, true
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// protocolError classifies a reply-reading failure: protocol violations as
// permanent errkind.Protocol, the rest (EOF, timeouts, resets) as network
// errors, timeouts phrased so that a user knows the server stopped
// answering.
func protocolError(op string, err error) error {
	if errors.Is(err, errProtocol) {
		return errkind.WrapPermanent(errkind.Protocol, op, err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errkind.WrapTemporary(errkind.Network, op, fmt.Errorf("server closed the connection: %w", io.ErrUnexpectedEOF))
	}
	var to interface{ Timeout() bool }
	if errors.As(err, &to) && to.Timeout() {
		return errkind.WrapTemporary(errkind.Network, op, fmt.Errorf("server did not answer in time: %w", err))
	}
	return errkind.WrapTemporary(errkind.Network, op, err)
}
