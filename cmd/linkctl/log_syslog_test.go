package main

import (
	"log/slog"
	"log/syslog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/config"
)

// A run started by a connection hook with its output on /dev/null and no
// daemon must still leave a trace: it logs to syslog although the config
// does not ask for it. With stderr anywhere else, it does not.
func TestDiscardedStderrLogsToSyslog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	old := openSyslog
	openSyslog = func() (*syslog.Writer, error) {
		return syslog.Dial("unixgram", sock, syslog.LOG_MAIL|syslog.LOG_INFO, "linkctl")
	}
	defer func() { openSyslog = old }()

	received := func() string {
		pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 4096)
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return ""
		}
		return string(buf[:n])
	}

	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()

	for _, c := range []struct {
		name   string
		stderr *os.File
		want   bool
	}{{"dev null", null, true}, {"pipe", w, false}} {
		lw := &logWriter{w: c.stderr}
		var lv slog.LevelVar
		log := withConfigLog(newLogger(lw, &lv, "text"), lw, &lv, "text", config.Log{})
		log.Info("run ended", "result", "ok")
		got := received()
		if c.want != strings.Contains(got, "run ended") {
			t.Errorf("%s: syslog got %q, want the line: %v", c.name, got, c.want)
		}
	}
}
