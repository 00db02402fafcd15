package control

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/internal/testpeer"
)

// The test binary doubles as a control client run under another uid.
const clientEnv = "LINKCTL_CONTROL_TEST_CLIENT"

func TestMain(m *testing.M) {
	if path := os.Getenv(clientEnv); path != "" {
		r, err := Do(context.Background(), path, Request{Op: OpStatus}, nil)
		if err != nil {
			fmt.Printf("ERR %d %v\n", errkind.ExitCode(err), err)
			os.Exit(0)
		}
		b, _ := json.Marshal(r)
		fmt.Printf("REPLY %s\n", b)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type served struct {
	srv   *Server
	calls atomic.Int32
}

func serve(t *testing.T, dir string, h Handler) *served {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	srv, err := Listen(filepath.Join(dir, "control.sock"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &served{srv: srv}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ctx, func(ctx context.Context, req Request, send func(event.Event)) Reply {
			s.calls.Add(1)
			return h(ctx, req, send)
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func statusHandler(ctx context.Context, req Request, send func(event.Event)) Reply {
	switch req.Op {
	case OpStatus:
		return Reply{Status: map[string]any{"link": "up", "running": false}}
	case OpUp:
		send(event.Event{Type: event.RunStart, Run: 3, Cause: "linkctl up", Text: req.Iface})
		send(event.Event{Type: event.StageEnd, Run: 3, Stage: "fetch", Result: event.Temporary})
		send(event.Event{Type: event.RunEnd, Run: 3, Result: event.Temporary})
		return Reply{Exit: 12, Error: "stage fetch: connection reset"}
	}
	return Reply{Exit: 5, Error: "unexpected " + req.Op}
}

func TestStatusRoundTrip(t *testing.T) {
	s := serve(t, "", statusHandler)
	fi, err := os.Stat(s.srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	r, err := Do(context.Background(), s.srv.Path(), Request{Op: OpStatus}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Done || r.Exit != 0 || string(r.Status) != `{"link":"up","running":false}` {
		t.Fatalf("reply %+v status %s", r, r.Status)
	}
}

func TestUpStreamsEventsThenExit(t *testing.T) {
	s := serve(t, "", statusHandler)
	var got []string
	r, err := Do(context.Background(), s.srv.Path(), Request{Op: OpUp, Iface: "ppp0", Wait: true}, func(e event.Event) {
		got = append(got, fmt.Sprintf("%s %s %s %s", e.Type, e.Stage, e.Result, e.Text))
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"run.start   ppp0", "stage.end fetch temporary ", "run.end  temporary "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("events %q, want %q", got, want)
	}
	if r.Exit != 12 || r.Error != "stage fetch: connection reset" {
		t.Errorf("reply %+v", r)
	}
}

func TestBadRequests(t *testing.T) {
	s := serve(t, "", statusHandler)
	tests := []struct {
		line string
		exit int
		text string
	}{
		{`{"op":"reboot"}`, 5, `unknown op "reboot"`},
		{`{"op":"up","iface":"../../etc"}`, 5, "not allowed"},
		{`{"op":"up","iface":"aaaaaaaaaaaaaaaaaaaaaa"}`, 5, "too long"},
		{`{"op":"status","sudo":true}`, 4, "unknown field"},
		{`not json`, 4, "invalid character"},
		{strings.Repeat("x", MaxRequest+10), 4, "too long"},
	}
	for _, tt := range tests {
		c, err := net.Dial("unix", s.srv.Path())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "%s\n", tt.line)
		b, _ := io.ReadAll(c)
		c.Close()
		r, err := ParseResponse([]byte(strings.TrimSpace(string(b))))
		if err != nil || !r.Done || r.Exit != tt.exit || !strings.Contains(r.Error, tt.text) {
			t.Errorf("%.30s: reply %+v (%v), want exit %d with %q", tt.line, r, err, tt.exit, tt.text)
		}
	}
	if n := s.calls.Load(); n != 0 {
		t.Errorf("handler called %d times for bad requests", n)
	}
}

func TestNoDaemon(t *testing.T) {
	dir := t.TempDir()
	if _, err := Do(context.Background(), filepath.Join(dir, "none.sock"), Request{Op: OpStatus}, nil); err != ErrNoDaemon {
		t.Errorf("missing socket: err = %v, want ErrNoDaemon", err)
	}
	// A socket file left by a daemon that died: nobody answers.
	stale := filepath.Join(dir, "stale.sock")
	ln, _ := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := Do(context.Background(), stale, Request{Op: OpStatus}, nil); err != ErrNoDaemon {
		t.Errorf("stale socket: err = %v, want ErrNoDaemon", err)
	}
	// The next daemon replaces it.
	srv, err := Listen(stale, nil)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	srv.Close()
}

func TestSecondDaemonRefused(t *testing.T) {
	s := serve(t, "", statusHandler)
	_, err := Listen(s.srv.Path(), nil)
	if errkind.KindOf(err) != errkind.Locked {
		t.Fatalf("second Listen: err = %v, want Locked", err)
	}
	if _, err := Do(context.Background(), s.srv.Path(), Request{Op: OpStatus}, nil); err != nil {
		t.Errorf("the first daemon stopped answering: %v", err)
	}
}

// TestOtherUIDRefused runs the client as nobody. With the socket's mode
// 0600 the kernel refuses the connection; with the mode loosened by
// mistake, SO_PEERCRED still does, before the handler sees anything.
func TestOtherUIDRefused(t *testing.T) {
	testpeer.NeedRoot(t)
	const nobody = 65534
	dir, err := os.MkdirTemp("", "linkctl-control-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	// The test binary may sit in a directory nobody cannot enter.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "client.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	s := serve(t, dir, statusHandler)
	runAsNobody := func() string {
		cmd := exec.Command(bin)
		cmd.Env = []string{clientEnv + "=" + s.srv.Path()}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("client as nobody: %v: %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}

	out := runAsNobody()
	if !strings.HasPrefix(out, "ERR 6 ") || !strings.Contains(out, "permission denied") {
		t.Errorf("mode 0600: client got %q, want a permission error (exit 6)", out)
	}
	if err := os.Chmod(s.srv.Path(), 0o666); err != nil {
		t.Fatal(err)
	}
	out = runAsNobody()
	want := `"exit":6,"error":"permission denied: uid 65534 may not control this daemon`
	if !strings.HasPrefix(out, "REPLY ") || !strings.Contains(out, want) {
		t.Errorf("mode 0666: client got %q, want the SO_PEERCRED refusal", out)
	}
	if strings.Contains(out, `"status"`) || s.calls.Load() != 0 {
		t.Errorf("the handler served uid %d: %q", nobody, out)
	}
	// Root still gets through.
	if _, err := Do(context.Background(), s.srv.Path(), Request{Op: OpStatus}, nil); err != nil {
		t.Errorf("root refused: %v", err)
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{`{"op":"up","iface":"ppp0","wait":true}`, `{"op":"status"}`, `{"op":"down","iface":"wwan0"}`,
		`{"op":"quit"}`, `{}`, `{"op":"up"} {"op":"up"}`, `[1,2]`, `{"op":"up","iface":"a\u0000b"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := ParseRequest(line)
		if err != nil {
			return
		}
		// What parses must be a known op with a clean interface name, and
		// survive a round trip.
		if checkIface(req.Iface) != nil {
			t.Fatalf("accepted iface %q", req.Iface)
		}
		b, _ := json.Marshal(req)
		again, err := ParseRequest(b)
		if err != nil || again != req {
			t.Fatalf("round trip: %+v -> %s -> %+v, %v", req, b, again, err)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{`{"done":true,"exit":12,"error":"x"}`, `{"keepalive":true}`,
		`{"event":{"type":"run.start","run":1,"time":"2026-01-01T00:00:00Z"}}`, `{"done":true,"status":{"a":1}}`, `{"exit":-1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseResponse(line)
		if err == nil && (r.Exit < 0 || r.Exit > 255) {
			t.Fatalf("accepted exit %d", r.Exit)
		}
	})
}

// TestShutdownNotHeldBySilentClient: a client that connects and sends
// nothing (the request read waits 10 s) does not hold up Serve's return
// when the daemon stops.
func TestShutdownNotHeldBySilentClient(t *testing.T) {
	srv, err := Listen(filepath.Join(t.TempDir(), "control.sock"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, statusHandler) }()
	c, err := net.Dial("unix", srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(100 * time.Millisecond) // accepted, its request read under way
	t0 := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(8 * time.Second):
		t.Fatal("Serve did not return within 8 s of its ctx ending, a silent client open")
	}
	if took := time.Since(t0); took > 3*time.Second {
		t.Errorf("Serve returned %s after its ctx ended, want about 1 s", took)
	}
}
