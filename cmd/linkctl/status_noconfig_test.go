package main

import (
	"encoding/json"
	"testing"
)

// status needs a config only to find the daemon's socket: without one it
// asks the default socket and still shows the link (issue 18).
func TestStatusWithoutConfig(t *testing.T) {
	out, errOut, code := linkctl(t, []string{"LINKCTL_CONFIG=/nonexistent/linkctl.yaml", "XDG_RUNTIME_DIR=" + t.TempDir()},
		"status", "--json")
	if code != 0 {
		t.Fatalf("status without a config: exit %d, stderr %q", code, errOut)
	}
	var st struct {
		Daemon bool `json:"daemon"`
		Link   struct {
			Reason string `json:"reason"`
		} `json:"link"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Link.Reason == "" {
		t.Fatalf("status --json = %q (%v): want the link state", out, err)
	}
}
