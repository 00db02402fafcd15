package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/pipeline"
)

// renderer shows a run's events: on a terminal a live progress line that is
// redrawn in place, with a permanent line per finished stage and per note;
// elsewhere (a log file, journald, a pipe) one log line per event.
//
// It is the one place a run's boundaries are logged: the runner logs none
// (see package pipeline), and a daemon's runs reach the log only through
// the renderer it is given as its Sink.
type renderer struct {
	mu       sync.Mutex
	w        io.Writer
	log      *slog.Logger
	live     bool
	lastDraw time.Time
	drawn    bool
	progress map[string]*progressLine // "stage/account"
}

type progressLine struct {
	stage, account       string
	count, total         int
	bytes, totalBytes    int64
	started, lastChanged time.Time
}

func newRenderer(w io.Writer, log *slog.Logger) *renderer {
	r := &renderer{w: w, log: log, live: isTerminal(w), progress: map[string]*progressLine{}}
	if r.live {
		termLog.attach(r)
	}
	return r
}

// termLog is where the logger writes on stderr. While a live progress line
// is on the terminal, a log line first clears it and then redraws it, and
// below -v only warnings are logged: the progress display already tells
// the story that the info lines would repeat.
var termLog logWriter

type logWriter struct {
	mu      sync.Mutex
	w       io.Writer
	r       *renderer
	level   slog.LevelVar
	verbose int
}

func (l *logWriter) attach(r *renderer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w != r.w {
		return
	}
	l.r = r
	if l.verbose == 0 && l.level.Level() < slog.LevelWarn {
		l.level.Set(slog.LevelWarn)
	}
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	r, w := l.r, l.w
	l.mu.Unlock()
	if w == nil {
		return len(p), nil
	}
	if r == nil {
		return w.Write(p)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clear()
	n, err := w.Write(p)
	r.draw(true)
	return n, err
}

// Fd lets newLogger see the terminal or journal behind the writer.
func (l *logWriter) Fd() uintptr {
	if f, ok := l.w.(interface{ Fd() uintptr }); ok {
		return f.Fd()
	}
	return ^uintptr(0)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Sink is the event.Sink to hand to the runner.
func (r *renderer) Sink(e event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.live {
		r.logEvent(e)
		return
	}
	switch e.Type {
	case event.RunStart:
		line := fmt.Sprintf("run %d: %s", e.Run, e.Cause)
		if e.Text != "" {
			line += " on " + e.Text
		}
		r.println(line)
	case event.StageStart:
		r.progress[e.Stage+"/"] = &progressLine{stage: e.Stage, started: e.Time}
		r.draw(true)
	case event.Message, event.Progress:
		key := e.Stage + "/" + e.Account
		p := r.progress[key]
		if p == nil {
			p = &progressLine{stage: e.Stage, account: e.Account, started: e.Time}
			r.progress[key] = p
			delete(r.progress, e.Stage+"/")
		}
		p.count, p.bytes, p.lastChanged = max(p.count, e.Count), max(p.bytes, e.Bytes), e.Time
		p.total, p.totalBytes = max(p.total, e.Total), max(p.totalBytes, e.TotalBytes)
		r.draw(false)
	case event.Note:
		who := e.Stage
		if e.Account != "" {
			who += " " + e.Account
		}
		r.println(fmt.Sprintf("  %s: %s", who, e.Text))
	case event.StageEnd:
		for k, p := range r.progress {
			if p.stage == e.Stage {
				delete(r.progress, k)
			}
		}
		text := e.Text
		if e.Err != "" {
			text = e.Err
		}
		line := fmt.Sprintf("  %-9s %-10s %s", e.Result, e.Stage, indent(text, 23))
		if e.Elapsed > 0 {
			line += fmt.Sprintf(" (%s)", roundDur(e.Elapsed))
		}
		r.println(line)
		r.draw(true)
	case event.RunEnd:
		r.clear()
	}
}

func (r *renderer) logEvent(e event.Event) {
	attrs := []any{"run", e.Run}
	if e.Stage != "" {
		attrs = append(attrs, "stage", e.Stage)
	}
	if e.Account != "" {
		attrs = append(attrs, "account", e.Account)
	}
	switch e.Type {
	case event.RunStart:
		attrs = append(attrs, "cause", e.Cause)
		if e.Text != "" {
			attrs = append(attrs, "iface", e.Text)
		}
		r.log.Info("run started", attrs...)
	case event.StageStart:
		r.log.Info("stage started", attrs...)
	case event.Message:
		r.log.Info("message", append(attrs, "count", e.Count, "bytes", e.Bytes)...)
	case event.Progress:
		r.log.Debug("progress", append(attrs, "count", e.Count, "bytes", e.Bytes)...)
	case event.Note:
		r.log.Info(e.Text, attrs...)
	case event.StageEnd, event.RunEnd:
		msg := "stage ended"
		if e.Type == event.RunEnd {
			msg = "run ended"
		}
		attrs = append(attrs, "result", e.Result, "elapsed", roundDur(e.Elapsed))
		if e.Text != "" {
			attrs = append(attrs, "summary", e.Text)
		}
		if e.Err != "" {
			attrs = append(attrs, "error", e.Err)
		}
		lvl := slog.LevelInfo
		if e.Result == event.Temporary || e.Result == event.Permanent || e.Result == event.Cancelled {
			lvl = slog.LevelWarn
		}
		r.log.Log(nil, lvl, msg, attrs...)
	}
}

// draw redraws the live line, at most ten times a second unless forced.
func (r *renderer) draw(force bool) {
	now := time.Now()
	if !force && now.Sub(r.lastDraw) < 100*time.Millisecond {
		return
	}
	r.lastDraw = now
	keys := make([]string, 0, len(r.progress))
	for k := range r.progress {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		p := r.progress[k]
		s := p.stage
		if p.account != "" {
			s += " " + p.account
		}
		if p.count > 0 || p.total > 0 {
			s += " " + countText(p.count, p.total)
		}
		if p.bytes > 0 {
			s += " " + bytesText(p.bytes)
			if el := now.Sub(p.started).Seconds(); el > 1 {
				s += fmt.Sprintf(" %s/s", bytesText(int64(float64(p.bytes)/el)))
			}
		} else if p.count == 0 {
			s += fmt.Sprintf(" %s", roundDur(now.Sub(p.started)))
		}
		parts = append(parts, s)
	}
	line := strings.Join(parts, " | ")
	if len(line) > 150 {
		line = line[:147] + "..."
	}
	fmt.Fprintf(r.w, "\r\033[K%s", line)
	r.drawn = line != ""
}

func (r *renderer) clear() {
	if r.drawn {
		fmt.Fprint(r.w, "\r\033[K")
		r.drawn = false
	}
}

func (r *renderer) println(s string) {
	r.clear()
	fmt.Fprintln(r.w, s)
	r.draw(true)
}

func countText(n, total int) string {
	if total > 0 {
		return fmt.Sprintf("%d/%d msgs", n, total)
	}
	return fmt.Sprintf("%d msgs", n)
}

// bytesText prints a byte count the way a user reads it (kB = 1000 B).
func bytesText(n int64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%.0f MB", float64(n)/1e6)
	case n >= 1_000_000:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.0f kB", float64(n)/1e3)
	case n >= 1000:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// printSummary writes the run's summary table.
func printSummary(w io.Writer, rep pipeline.RunReport) {
	if len(rep.Stages) == 0 {
		return
	}
	fmt.Fprintf(w, "\nsummary of run %d (%s, %s):\n", rep.ID, rep.Cause, roundDur(rep.End.Sub(rep.Start)))
	for _, s := range rep.Stages {
		text := s.Summary
		if s.Err != "" {
			text = s.Err
		}
		fmt.Fprintf(w, "  %-10s %-9s %s\n", s.Name, s.Result, indent(text, 23))
	}
}

// indent keeps a multi-line text (one line per account or relay) in its
// column.
func indent(text string, col int) string {
	return strings.ReplaceAll(strings.TrimRight(text, "\n"), "\n", "\n"+strings.Repeat(" ", col))
}
