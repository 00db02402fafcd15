package drop

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/linkwatch/nstest"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func hangupCommand(t *testing.T) ([]string, string) {
	marker := filepath.Join(t.TempDir(), "hung-up")
	return []string{"touch", marker}, marker
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestDropRunsCommandWhenIdle(t *testing.T) {
	argv, marker := hangupCommand(t)
	var notes []string
	sink := event.Sink(func(e event.Event) { notes = append(notes, e.Text) })
	res, err := Run(context.Background(), Options{Command: argv, Idle: time.Millisecond, Logger: testLogger(t)}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Dropped || !exists(marker) {
		t.Fatalf("result %+v, command ran: %v", res, exists(marker))
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "every earlier stage ended") {
		t.Errorf("notes = %q, want the reason for dropping now", notes)
	}
}

func TestDropWaitsWhileBusy(t *testing.T) {
	argv, marker := hangupCommand(t)
	var calls atomic.Int32
	busy := func() string {
		if calls.Add(1) < 3 {
			if exists(marker) {
				t.Error("hung up while busy")
			}
			return "a follow-up run is pending"
		}
		return ""
	}
	res, err := Run(context.Background(), Options{Command: argv, Idle: time.Millisecond, MaxWait: time.Hour, Busy: busy}, nil)
	if err != nil || !res.Dropped || calls.Load() != 3 {
		t.Fatalf("res %+v err %v after %d checks; want dropped after 3", res, err, calls.Load())
	}
}

func TestDropKeepsLinkWhenBusyTooLong(t *testing.T) {
	argv, marker := hangupCommand(t)
	res, err := Run(context.Background(), Options{Command: argv, Idle: time.Millisecond, MaxWait: 5 * time.Millisecond,
		Busy: func() string { return "stage fetch still running" }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Dropped || exists(marker) || res.Summary != "link kept: stage fetch still running" {
		t.Fatalf("res %+v, command ran: %v", res, exists(marker))
	}
}

func TestDropCancelledDoesNotHangUp(t *testing.T) {
	argv, marker := hangupCommand(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("link down"))
	res, err := Run(ctx, Options{Command: argv, Idle: time.Hour}, nil)
	if err == nil || res.Dropped || exists(marker) {
		t.Fatalf("res %+v err %v: want cancelled without hanging up", res, err)
	}
	if !strings.Contains(res.Summary, "link down") {
		t.Errorf("summary %q does not say why", res.Summary)
	}
}

// loopbackSession opens a TCP session on loopback and returns the
// listening port and both ends; the test's cleanup closes them and the
// listener.
func loopbackSession(t *testing.T) (port int, c, s net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return ln.Addr().(*net.TCPAddr).Port, c, s
}

func TestDropInboundSMTPHoldsTheLink(t *testing.T) {
	port, c, s := loopbackSession(t)
	argv, marker := hangupCommand(t)
	opts := Options{Command: argv, Idle: time.Millisecond, MaxWait: 5 * time.Millisecond, SMTPPorts: []int{port}, CountLoopback: true}
	res, _ := Run(context.Background(), opts, nil)
	if res.Dropped || exists(marker) || !strings.Contains(res.Summary, "1 inbound SMTP session") {
		t.Fatalf("res %+v: dropped during an inbound session", res)
	}
	c.Close()
	s.Close()
	opts.MaxWait = time.Hour
	if res, err := Run(context.Background(), opts, nil); err != nil || !res.Dropped {
		t.Fatalf("res %+v err %v: want dropped once the session closed", res, err)
	}
}

func TestDropCommandErrors(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		kind errkind.Kind
		temp bool
		text string
	}{
		{"missing binary", []string{"/nonexistent/poff", "provider"}, errkind.Usage, false, "not found"},
		{"fails with stderr", []string{"sh", "-c", "echo 'no such provider' >&2; exit 1"}, errkind.Internal, false, `exit status 1: "no such provider"`},
		{"tempfail", []string{"sh", "-c", "exit 75"}, errkind.Internal, true, "exit status 75"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), Options{Command: tt.argv, Idle: time.Millisecond}, nil)
			if err == nil || errkind.KindOf(err) != tt.kind || errkind.IsTemporary(err) != tt.temp || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("err = %v (kind %v, temp %v); want %v temp=%v containing %q",
					err, errkind.KindOf(err), errkind.IsTemporary(err), tt.kind, tt.temp, tt.text)
			}
		})
	}
}

func TestDropNeedsExactlyOneMethod(t *testing.T) {
	if _, err := Run(context.Background(), Options{}, nil); errkind.KindOf(err) != errkind.Usage {
		t.Errorf("no method: err = %v", err)
	}
	if _, err := Run(context.Background(), Options{Command: []string{"poff"}, Interface: "ppp0"}, nil); errkind.KindOf(err) != errkind.Usage {
		t.Errorf("both methods: err = %v", err)
	}
}

func TestNetnsDropInterface(t *testing.T) {
	n := nstest.New(t)
	n.Set(true)
	res, err := Run(context.Background(), Options{Interface: "up0", Idle: time.Millisecond, Handle: n.NL}, nil)
	if err != nil || !res.Dropped {
		t.Fatalf("res %+v err %v", res, err)
	}
	l, err := n.NL.LinkByName("up0")
	if err != nil {
		t.Fatal(err)
	}
	if l.Attrs().Flags&net.FlagUp != 0 {
		t.Errorf("up0 still administratively up after the drop: flags %v", l.Attrs().Flags)
	}
	_, err = Run(context.Background(), Options{Interface: "wwan9", Idle: time.Millisecond, Handle: n.NL}, nil)
	if errkind.KindOf(err) != errkind.Usage || !strings.Contains(err.Error(), `no interface "wwan9"`) {
		t.Errorf("unknown interface: err = %v", err)
	}
}

func TestDropSupersededByFollowUpRun(t *testing.T) {
	argv, marker := hangupCommand(t)
	busyCalls := 0
	res, err := Run(context.Background(), Options{Command: argv, Idle: time.Millisecond, MaxWait: time.Hour,
		Busy:       func() string { busyCalls++; return "x" },
		Superseded: func() string { return "a follow-up run is already requested (linkctl up)" }}, nil)
	if err != nil || res.Dropped || exists(marker) || busyCalls != 0 {
		t.Fatalf("res %+v err %v busy checked %d times: want skipped at once", res, err, busyCalls)
	}
	if res.Summary != "link kept: a follow-up run is already requested (linkctl up)" {
		t.Errorf("summary %q", res.Summary)
	}
}
