package deliver

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/linkctl/linkctl/internal/errkind"
)

// SourceError says the message could not be read from its source (the POP3
// or IMAP connection broke in the middle of a message). The target then
// aborted without handing over a truncated message: for SMTP/LMTP the
// connection is dropped before the final dot, an MDA is killed before its
// stdin is closed, a Maildir tmp file is removed. The error keeps the
// source's own classification.
type SourceError struct{ Err error }

func (e *SourceError) Error() string { return "reading the message: " + e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

// sourceReader remembers the error its reader returned, so that a copy
// that fails can tell "the source broke" from "the target broke".
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		s.err = err
	}
	return n, err
}

func sourceErr(op string, err error) error {
	return errkind.Wrap(errkind.KindOf(err), errkind.IsTemporary(err), op, &SourceError{Err: err})
}

// PartialError reports a message that some recipients accepted and others
// did not (LMTP after DATA, or one MDA run per recipient). It counts as NOT
// delivered: the message stays on the server and a later retry delivers it
// again to every recipient, duplicating it for those in Accepted. linkctl
// prefers a duplicate to a loss.
type PartialError struct {
	Accepted []string
	Failed   map[string]error // recipient -> why
}

func (e *PartialError) Error() string {
	var b strings.Builder
	rcpts := make([]string, 0, len(e.Failed))
	for r := range e.Failed {
		rcpts = append(rcpts, r)
	}
	slices.Sort(rcpts)
	for i, r := range rcpts {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "<%s>: %v", r, e.Failed[r])
	}
	if len(e.Accepted) > 0 {
		fmt.Fprintf(&b, " (accepted for %s: a retry duplicates it for them)", strings.Join(e.Accepted, ", "))
	}
	return b.String()
}

// Temporary reports whether every failed recipient failed temporarily.
func (e *PartialError) Temporary() bool {
	for _, err := range e.Failed {
		if !errkind.IsTemporary(err) {
			return false
		}
	}
	return true
}

// replyError shows an SMTP/LMTP reply as the server wrote it ("550 5.1.1
// no such user") while keeping the *smtp.SMTPError for errors.As.
type replyError struct{ e *smtp.SMTPError }

func (r replyError) Error() string {
	s := fmt.Sprintf("%d", r.e.Code)
	if ec := r.e.EnhancedCode; ec != smtp.EnhancedCodeNotSet && ec != smtp.NoEnhancedCode {
		s += fmt.Sprintf(" %d.%d.%d", ec[0], ec[1], ec[2])
	}
	if r.e.Message != "" {
		s += " " + strings.ReplaceAll(r.e.Message, "\n", " / ")
	}
	return s
}

func (r replyError) Unwrap() error   { return r.e }
func (r replyError) Temporary() bool { return r.e.Code/100 == 4 }
