package main

import (
	"strings"
	"testing"
)

// `linkctl --version` is what packagers and bug reporters type first; it
// answers like the `version` command, without a config.
func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-V"}, {"version"}} {
		out, errOut, code := linkctl(t, []string{"LINKCTL_CONFIG=/nonexistent/linkctl.yaml"}, args...)
		if code != 0 || !strings.HasPrefix(out, "linkctl ") {
			t.Errorf("linkctl %v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}
