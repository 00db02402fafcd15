// Package logx holds what every linkctl package that logs shares about
// levels: the one trace level, below slog's Debug, at which the protocol
// clients (POP3, IMAP, SMTP/ETRN) log their transcripts with secrets shown
// as "***", and which `linkctl -vv` turns on.
package logx

import "log/slog"

// LevelTrace is the slog level of protocol transcripts: below Debug, so
// that -v (debug) does not show them and -vv does.
const LevelTrace = slog.Level(-8)
