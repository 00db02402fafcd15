package assemble

import (
	"testing"
	"time"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/fetch"
	"github.com/linkctl/linkctl/fetch/imap"
	"github.com/linkctl/linkctl/fetch/pop3"
	"github.com/linkctl/linkctl/fetch/seen"
)

// The config applies every default; the stages keep zero-value fallbacks
// for their own tests. The two must be the same numbers, or a config
// without the key and a stage built without the config would disagree.
func TestFetchBoundsDefaultsAgree(t *testing.T) {
	for _, c := range []struct {
		key       string
		cfg, want any
	}{
		{"fetch.session_floor", config.DefaultSessionFloor, fetch.DefaultSessionFloor},
		{"fetch.min_rate", int64(config.DefaultMinRate), int64(fetch.DefaultMinRate)},
		{"fetch.per_message", config.DefaultPerMessage, fetch.DefaultPerMessage},
		{"fetch.timeout", config.DefaultFetchTimeout, fetch.DefaultRunTimeout},
		{"fetch.slot_wait", config.DefaultSlotWait, fetch.DefaultSlotWait},
		{"fetch.ack_window", config.DefaultAckWindow, fetch.DefaultAckWindow},
		{"fetch.record_sync", config.DefaultRecordSync, fetch.DefaultRecordSync},
		{"fetch.max_messages (pop3)", config.DefaultMaxMessages, pop3.DefaultMaxMessages},
		{"fetch.max_messages (imap)", config.DefaultMaxMessages, imap.DefaultMaxMessages},
		{"orphan digests", 100000, seen.DefaultOrphanDigests},
	} {
		if c.cfg != c.want {
			t.Errorf("%s: config default %v, stage default %v", c.key, c.cfg, c.want)
		}
	}
}

// Issue 15: a fetch has a session and a run deadline by default, and the
// keys reach the engine and the protocol clients.
func TestFetchBoundsReachTheEngine(t *testing.T) {
	parse := func(fetchKeys string) fetch.Options {
		t.Helper()
		cfg, err := config.Parse("/etc/linkctl/t.yaml", []byte(`fetch:
`+fetchKeys+`
  accounts:
    - {proto: pop3, server: pop.example.net, user: u, password_file: /p, to: me}
    - {proto: imap, server: imap.example.net, user: u, password_file: /p, to: me, max_messages: 50}
`))
		if err != nil {
			t.Fatal(err)
		}
		opts, done := New(nil).FetchOptions(cfg, nil)
		done()
		return opts
	}
	def := parse("  parallel: 2")
	if def.RunTimeout != 6*time.Hour || def.SessionFloor != 2*time.Minute || def.MinRate != 1024 ||
		def.PerMessage != 5*time.Second || def.SlotWait != 5*time.Minute || def.AckWindow != 1 ||
		def.RecordSync != 100*time.Millisecond {
		t.Errorf("defaults not applied: %+v", def)
	}
	set := parse(`  timeout: 1h
  session_floor: 30s
  min_rate: 4k
  per_message: 1s
  slot_wait: 1m
  ack_window: 4
  record_sync: 0s
  max_messages: 500`)
	if set.RunTimeout != time.Hour || set.SessionFloor != 30*time.Second || set.MinRate != 4096 ||
		set.PerMessage != time.Second || set.SlotWait != time.Minute || set.AckWindow != 4 ||
		set.RecordSync >= 0 {
		t.Errorf("keys not applied: %+v", set)
	}
	for _, bad := range []string{"  timeout: 0", "  session_floor: 0s", "  min_rate: 0"} {
		if _, err := config.Parse("/etc/linkctl/t.yaml", []byte("fetch:\n"+bad+"\n  accounts: [{proto: pop3, server: p.example.net, user: u, password_file: /p, to: me}]\n")); err == nil {
			t.Errorf("%q accepted: a fetch without an end", bad)
		}
	}
}
