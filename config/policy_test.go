package config

import (
	"strings"
	"testing"
)

// Link policies: the list form and the single-uplink shorthand, sizes,
// defaults (metered: true) and the shorthand as a last "*" policy.
func TestLinkPolicies(t *testing.T) {
	testEnv(t, 1000, nil)
	cfg, err := Parse("t.yaml", []byte(`link:
  watch: [wwan0, ppp0]
  policies:
    - match: "wwan*"
      metered: auto
      budget: {run: 10M, day: 50M, month: 2G}
      max_message: 2M
    - {match: ppp0, budget: {month: 500M}}
  metered: false
flush:
`))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Link.Policies
	if len(p) != 3 {
		t.Fatalf("policies %+v", p)
	}
	if p[0].Match != "wwan*" || p[0].Metered != MeteredAuto || p[0].Budget.Run != 10<<20 || p[0].Budget.Day != 50<<20 ||
		p[0].Budget.Month != 2<<30 || p[0].MaxMessage != 2<<20 || p[0].Line != 4 {
		t.Errorf("wwan*: %+v", p[0])
	}
	if p[1].Match != "ppp0" || p[1].Metered != MeteredTrue || p[1].Budget.Month != 500<<20 || p[1].Budget.Run != 0 {
		t.Errorf("ppp0: %+v (want metered: true by default)", p[1])
	}
	if p[2].Match != "*" || p[2].Metered != MeteredFalse {
		t.Errorf("shorthand: %+v", p[2])
	}
	// The example: metered and a budget at link level.
	cfg, err = Parse("t.yaml", []byte("link: {metered: true, budget: {run: 10M}}\nflush:\n"))
	if err != nil || len(cfg.Link.Policies) != 1 || cfg.Link.Policies[0].Budget.Run != 10<<20 {
		t.Fatalf("shorthand: %+v, %v", cfg.Link, err)
	}
	cfg, _ = Parse("t.yaml", []byte("flush:\n"))
	if len(cfg.Link.Policies) != 0 {
		t.Errorf("no policy written, got %+v", cfg.Link.Policies)
	}
}

func TestLinkPolicyProblems(t *testing.T) {
	testEnv(t, 1000, nil)
	for _, c := range []struct{ in, want string }{
		{"link: {policies: [{metered: true}]}\nflush:\n", `t.yaml:1: link.policies[0].match: missing (expected an interface name or glob, e.g. wwan0 or ppp*)`},
		{"link: {policies: [{match: \"ppp[\"}]}\nflush:\n", `t.yaml:1: link.policies[0].match: invalid interface name or glob "ppp[" (expected e.g. wwan0 or ppp*)`},
		{"link:\n  policies:\n    - {match: ppp0}\n    - {match: ppp0}\nflush:\n", `t.yaml:4: link.policies[1].match: "ppp0" is matched already by the policy at line 3 (write one policy per link)`},
		{"link: {metered: sometimes}\nflush:\n", `t.yaml:1: link.metered: invalid value "sometimes" (expected one of: true, false, auto)`},
		{"link: {budget: {run: lots}}\nflush:\n", `t.yaml:1: link.budget.run: invalid size "lots" (expected bytes, e.g. 500000, 500k, 10M)`},
		{"link: {budget: {week: 1M}}\nflush:\n", `t.yaml:1: link.budget.week: unknown key (expected one of: run, day, month)`},
		{"link: {budget: {day: 2G, month: 1G}}\nflush:\n", `t.yaml:1: link.budget.day: is more than the month's budget (expected day <= month)`},
		{"link: {byte_budget: 10M}\nflush:\n", `t.yaml:1: link.byte_budget: unknown key`},
	} {
		_, err := Parse("t.yaml", []byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v\nwant %s", c.in, err, c.want)
		}
	}
}
