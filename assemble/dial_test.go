package assemble

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/dial"
)

type spentGate struct{}

func (spentGate) Spent(string) (string, bool) { return "month budget spent", true }

// The dial section becomes the daemon's dial options, and the queue
// triggers read the configured MTA's listing (here a script printing
// postqueue -j lines), leaving held mail out.
func TestDialOptions(t *testing.T) {
	dir := t.TempDir()
	mailq := filepath.Join(dir, "mailq")
	os.WriteFile(mailq, []byte(`#!/bin/sh
echo '{"queue_name": "deferred", "queue_id": "A1", "arrival_time": 1795580406, "message_size": 308, "sender": "a@home.test", "recipients": [{"address": "b@far.test"}]}'
echo '{"queue_name": "hold", "queue_id": "A2", "arrival_time": 1795580000, "message_size": 308, "sender": "a@home.test", "recipients": [{"address": "c@far.test"}]}'
`), 0o755)
	cfg, err := config.Parse(filepath.Join(dir, "linkctl.yaml"), []byte(`link: {watch: [ppp0]}
state_dir: `+dir+`
flush: {mta: command, flush_command: [/bin/true], list_command: [`+mailq+`]}
drop: {command: [poff, provider]}
dial:
  command: [pon, provider]
  queue_age: 30m
  at: ["06:00"]
  windows: ["22:00-06:00"]
  never: ["00:00-00:30"]
  retries: 2
`))
	if err != nil {
		t.Fatal(err)
	}
	as := &Assembler{Gate: spentGate{}}
	o := as.DaemonOptions(cfg).Dial
	if o == nil {
		t.Fatal("no dial options")
	}
	if o.Iface != "ppp0" || o.QueueAge != 30*time.Minute || o.Retries != 2 || o.AppearTimeout != 90*time.Second ||
		len(o.At) != 1 || o.At[0] != 6*60 || len(o.Windows) != 1 || o.Windows[0] != (dial.Window{From: 22 * 60, To: 6 * 60}) ||
		len(o.Never) != 1 || o.Never[0] != (dial.Window{From: 0, To: 30}) || o.Gate == nil || o.CheckEvery != 5*time.Minute {
		t.Errorf("options %+v", o)
	}
	q, err := o.ListQueue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Arrivals) != 1 || !q.Arrivals[0].Equal(time.Unix(1795580406, 0)) {
		t.Errorf("queue %+v, want the one deferred message (held left out)", q)
	}
	cfg.Dial = config.Dial{}
	if as.DaemonOptions(cfg).Dial != nil {
		t.Error("no dial section: the daemon must not dial")
	}
}
