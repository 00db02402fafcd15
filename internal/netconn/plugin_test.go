package netconn

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestPluginSubstitutesWholeArgsAndCarriesTheStream(t *testing.T) {
	// The "server" echoes its arguments, then echoes what it reads.
	c, err := Plugin(context.Background(), []string{"sh", "-c", `echo "$1 $2 x%h"; cat`, "sh", "%h", "%p"}, "mail.example.net", "143")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	line, _ := r.ReadString('\n')
	if line != "mail.example.net 143 x%h\n" {
		t.Fatalf("plugin saw args %q (only whole-element %%h/%%p are replaced)", line)
	}
	io.WriteString(c, "a1 NOOP\n")
	if line, _ = r.ReadString('\n'); line != "a1 NOOP\n" {
		t.Fatalf("stream carried %q", line)
	}
}

func TestPluginDyingMidStreamIsAnErrorWithItsStderr(t *testing.T) {
	c, err := Plugin(context.Background(), []string{"sh", "-c", "printf '* OK half'; echo 'ssh: connection reset' >&2; exit 255"}, "h", "p")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(c)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("err %v, want an unexpected EOF quoting the plugin's stderr", err)
	}
}

func TestPluginStallTimesOut(t *testing.T) {
	c, err := Plugin(context.Background(), []string{"sleep", "30"}, "h", "p")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err = c.Read(make([]byte, 10))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err %v, want a timeout", err)
	}
}

func TestPluginMissingBinary(t *testing.T) {
	_, err := Plugin(context.Background(), []string{"/nonexistent/imapd"}, "h", "p")
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err %v", err)
	}
}
