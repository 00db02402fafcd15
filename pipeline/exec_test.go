package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
)

func TestExecPassesStageAndIface(t *testing.T) {
	out := filepath.Join(t.TempDir(), "env")
	r := New(Options{Steps: []Step{{Stage: Exec{StageName: "after-mail", Argv: []string{"sh", "-c", "echo $LINKCTL_STAGE $LINKCTL_IFACE > " + out}}}}})
	if _, err := r.Run(context.Background(), Request{Iface: "ppp0"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if got := strings.TrimSpace(string(b)); got != "after-mail ppp0" {
		t.Fatalf("command saw %q, want %q", got, "after-mail ppp0")
	}
}

func TestExecExitCodes(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		temp bool
		say  string
	}{
		{[]string{"sh", "-c", "echo it broke >&2; exit 3"}, false, "exited with status 3: it broke"},
		{[]string{"sh", "-c", "exit 75"}, true, "status 75"},
		{[]string{"/nonexistent/hook"}, false, "not found"},
	} {
		_, err := Exec{Argv: tc.argv}.Run(context.Background(), nil)
		if err == nil {
			t.Fatalf("%v: no error", tc.argv)
		}
		if errkind.IsTemporary(err) != tc.temp || !strings.Contains(err.Error(), tc.say) {
			t.Errorf("%v: err %q temporary %v, want %q temporary %v", tc.argv, err, errkind.IsTemporary(err), tc.say, tc.temp)
		}
	}
}

func TestExecOutputBecomesNotes(t *testing.T) {
	var notes []string
	sink := event.Sink(func(e event.Event) {
		if e.Type == event.Note {
			notes = append(notes, e.Text)
		}
	})
	if _, err := (Exec{Argv: []string{"echo", "hello"}}).Run(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || notes[0] != "hello" {
		t.Fatalf("notes %q", notes)
	}
}

func TestExecCancelStopsTheCommand(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel(errors.New("link down")) }()
	_, err := Exec{Argv: []string{"sleep", "30"}, Grace: time.Second}.Run(ctx, nil)
	if err == nil || err.Error() != "link down" {
		t.Fatalf("err %v, want the cancellation cause", err)
	}
}

func TestExecCancelReachesTheShellsChildren(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		for {
			if b, err := os.ReadFile(pidFile); err == nil && len(b) > 0 {
				cancel(errors.New("link down"))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	// The child sleeps in the background of a shell that waits for it.
	_, err := Exec{Argv: []string{"sh", "-c", "sleep 30 & echo $! > " + pidFile + "; wait"}, Grace: time.Second}.Run(ctx, nil)
	if err == nil {
		t.Fatal("cancelled command returned no error")
	}
	b, _ := os.ReadFile(pidFile)
	pid := strings.TrimSpace(string(b))
	// Signals are delivered asynchronously: give the child a bounded
	// moment to die (gone, or a zombie waiting for its new parent).
	for i := 0; ; i++ {
		st, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(st), ") Z") {
			return
		}
		if i == 100 {
			t.Fatalf("the shell's child %s survived the cancellation", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
