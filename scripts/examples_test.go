package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkctl/linkctl/config"
)

// The four setups of the README: each must be a config linkctl accepts, and
// say what it is for.
func TestExamplesParse(t *testing.T) {
	want := map[string]func(*config.Config) string{
		"ppp-postfix.yaml": func(c *config.Config) string {
			if c.Flush.MTA != "postfix" || len(c.ETRN.Servers) != 1 || len(c.Fetch.Accounts) != 1 || len(c.Drop.Command) == 0 {
				return "want postfix flush, one ETRN relay, one account and a drop command"
			}
			return ""
		},
		"lte-exim.yaml": func(c *config.Config) string {
			if c.Flush.MTA != "exim" || c.Link.Interval == 0 || len(c.Fetch.Accounts) != 2 {
				return "want exim flush, an interval and two accounts"
			}
			return ""
		},
		"vpn-imap.yaml": func(c *config.Config) string {
			if len(c.Pipeline) != 1 || c.Pipeline[0].Stage != "fetch" || c.Fetch.Accounts[0].Proto != "imap" || c.Fetch.Deliver.LMTP == "" {
				return "want a fetch-only pipeline with an IMAP account delivering by LMTP"
			}
			return ""
		},
		"etrn-only.yaml": func(c *config.Config) string {
			if len(c.Fetch.Accounts) != 0 || len(c.ETRN.Servers) != 2 {
				return "want two ETRN relays and no mailbox"
			}
			return ""
		},
	}
	for name, check := range want {
		p := filepath.Join("examples", name)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Parse(p, data)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if msg := check(cfg); msg != "" {
			t.Errorf("%s: %s", p, msg)
		}
	}
}

// The systemd unit: the directives the daemon relies on and the hardening
// promised in the README, and, where systemd-analyze exists, no directive
// it does not know.
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile("systemd/linkctl.service")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			got[k] = v
		}
	}
	for k, v := range map[string]string{
		"Type":                    "notify",
		"ExecStart":               "/usr/local/bin/linkctl daemon",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"StateDirectory":          "linkctl",
		"RuntimeDirectory":        "linkctl",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"NoNewPrivileges":         "yes",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
	} {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	caps := strings.Fields(got["CapabilityBoundingSet"])
	if len(caps) == 0 || caps[0] != "CAP_NET_ADMIN" {
		t.Errorf("CapabilityBoundingSet=%q, want CAP_NET_ADMIN first", got["CapabilityBoundingSet"])
	}
	for _, c := range caps {
		if c == "CAP_SYS_ADMIN" || c == "CAP_NET_RAW" {
			t.Errorf("CapabilityBoundingSet keeps %s", c)
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: unit syntax not verified")
	}
	// verify wants the ExecStart binary and the man page to exist.
	unit := strings.ReplaceAll(string(data), "/usr/local/bin/linkctl", "/bin/true")
	unit = strings.ReplaceAll(unit, "Documentation=man:linkctl(1)\n", "")
	p := filepath.Join(t.TempDir(), "linkctl.service")
	if err := os.WriteFile(p, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", p).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
