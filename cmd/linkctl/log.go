package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/internal/logx"
)

// newLogger picks the log format for where stderr goes: journald when
// systemd started us with stderr on the journal (JOURNAL_STREAM names
// stderr's device:inode, systemd.exec(5)), else text or JSON.
func newLogger(w io.Writer, level slog.Leveler, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: levelNames}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	if f, ok := w.(interface{ Fd() uintptr }); ok && onJournal(f.Fd()) {
		return slog.New(&journalHandler{w: w, level: level})
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// levelNames prints the trace level as TRACE rather than DEBUG-4.
func levelNames(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok && l <= logx.LevelTrace {
			a.Value = slog.StringValue("TRACE")
		}
	}
	return a
}

// withConfigLog adds the config's log file and syslog to the logger.
func withConfigLog(base *slog.Logger, stderr io.Writer, level slog.Leveler, format string, lc config.Log) *slog.Logger {
	if lc.Level != "" {
		switch lc.Level {
		case "debug":
			level = minLevel(level, slog.LevelDebug)
		case "trace":
			level = minLevel(level, logx.LevelTrace)
		}
		base = newLogger(stderr, level, format)
	}
	handlers := []slog.Handler{base.Handler()}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: levelNames}
	if lc.File != "" {
		f, err := os.OpenFile(lc.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			base.Warn("cannot open the log file named in the config", "file", lc.File, "error", err)
		} else if lc.Format == "json" {
			handlers = append(handlers, slog.NewJSONHandler(f, opts))
		} else {
			handlers = append(handlers, slog.NewTextHandler(f, opts))
		}
	}
	// A run whose stderr goes nowhere (a connection hook's >/dev/null, no
	// daemon to run it) would leave no trace: it logs to syslog (the
	// journal, under systemd) even when the config does not ask for it.
	discarded := isDevNull(stderr)
	if lc.Syslog || discarded {
		sw, err := openSyslog()
		switch {
		case err != nil && !discarded:
			base.Warn("cannot reach syslog", "error", err)
		case err == nil:
			handlers = append(handlers, &syslogHandler{w: sw, level: level})
		}
	}
	if len(handlers) == 1 {
		return base
	}
	return slog.New(slog.NewMultiHandler(handlers...))
}

// openSyslog connects to the local syslog, facility mail (a variable for
// tests).
var openSyslog = func() (*syslog.Writer, error) {
	return syslog.New(syslog.LOG_MAIL|syslog.LOG_INFO, "linkctl")
}

// isDevNull reports whether w, stderr, is /dev/null (the character device
// 1:3 on Linux), seen through the terminal log writer.
func isDevNull(w io.Writer) bool {
	if lw, ok := w.(*logWriter); ok {
		w = lw.w
	}
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	var st, null syscall.Stat_t
	if syscall.Fstat(int(f.Fd()), &st) != nil || syscall.Stat(os.DevNull, &null) != nil {
		return false
	}
	return st.Mode&syscall.S_IFMT == syscall.S_IFCHR && st.Rdev == null.Rdev
}

func minLevel(a slog.Leveler, b slog.Level) slog.Leveler {
	if a.Level() < b {
		return a
	}
	return b
}

func onJournal(fd uintptr) bool {
	js := os.Getenv("JOURNAL_STREAM")
	if js == "" {
		return false
	}
	dev, ino, ok := strings.Cut(js, ":")
	if !ok {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(fd), &st); err != nil {
		return false
	}
	return strconv.FormatUint(st.Dev, 10) == dev && strconv.FormatUint(st.Ino, 10) == ino
}

// journalHandler writes "<prio>message key=value" lines: journald reads the
// syslog priority prefix (sd-daemon(3)) and adds the timestamp itself.
type journalHandler struct {
	w     io.Writer
	level slog.Leveler
	attrs []slog.Attr
	group string
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *journalHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "<%d>%s", syslogPrio(r.Level), r.Message)
	write := func(a slog.Attr) bool {
		if a.Equal(slog.Attr{}) {
			return true
		}
		key := a.Key
		if h.group != "" {
			key = h.group + "." + key
		}
		fmt.Fprintf(&b, " %s=%s", key, strconv.Quote(a.Value.String()))
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	b.WriteByte('\n')
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}

func syslogPrio(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}

// syslogHandler sends records to the local syslog (facility mail).
type syslogHandler struct {
	w     *syslog.Writer
	level slog.Leveler
	attrs []slog.Attr
}

func (h *syslogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *syslogHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%s", a.Key, strconv.Quote(a.Value.String()))
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	switch syslogPrio(r.Level) {
	case 3:
		return h.w.Err(b.String())
	case 4:
		return h.w.Warning(b.String())
	case 6:
		return h.w.Info(b.String())
	}
	return h.w.Debug(b.String())
}

func (h *syslogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *syslogHandler) WithGroup(string) slog.Handler { return h }
