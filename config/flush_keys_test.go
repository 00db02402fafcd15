package config

import (
	"slices"
	"strings"
	"testing"
)

// Issue 17: a named driver can be pointed at a second instance.
func TestFlushInstanceKeys(t *testing.T) {
	cfg, err := Parse("/etc/linkctl/t.yaml", []byte(`flush:
  mta: exim
  command: /usr/sbin/exim4
  args: [-C, /etc/exim4/second.conf]
  env: {Z_LAST: "2", MAIL_CONFIG: /etc/postfix-out}
`))
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Flush
	if f.Command != "/usr/sbin/exim4" || !slices.Equal(f.Args, []string{"-C", "/etc/exim4/second.conf"}) ||
		!slices.Equal(f.Env, []string{"MAIL_CONFIG=/etc/postfix-out", "Z_LAST=2"}) {
		t.Errorf("flush = %+v", f)
	}
	for _, c := range []struct{ yaml, want string }{
		{"flush: {mta: auto, command: /usr/sbin/exim4}", "flush.command: only with a named mta"},
		{"flush: {mta: exim, command: bin/exim4}", `flush.command: relative path "bin/exim4"`},
		{"flush: {mta: postfix, env: {1BAD: x}}", `flush.env: invalid variable name "1BAD"`},
		{"flush: {mta: postfix, env: [MAIL_CONFIG=/x]}", "flush.env: is a list, not a mapping"},
	} {
		_, err := Parse("/etc/linkctl/t.yaml", []byte(c.yaml+"\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.yaml, err, c.want)
		}
	}
}
