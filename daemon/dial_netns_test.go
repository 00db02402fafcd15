package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkctl/linkctl/control"
	"github.com/linkctl/linkctl/dial"
	"github.com/linkctl/linkctl/drop"
	"github.com/linkctl/linkctl/flush"
	"github.com/linkctl/linkctl/internal/event"
	"github.com/linkctl/linkctl/linkwatch/nstest"
	"github.com/linkctl/linkctl/pipeline"
)

func writeScript(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func lines(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

// Dial on demand against the kernel: a veth link in a namespace of the
// test's own is the uplink; the dial command (a script) sets it up; the
// outbound queue is read through the flush package's driver, whose list
// command prints a postqueue -j line for a message queued an hour ago
// (on the policy's clock); the pipeline records its run and its drop stage
// sets the link down. Inside the dial window that is exactly one dial, one
// run and a hang-up; outside it, no dial at all.
func TestNetnsDialOnDemand(t *testing.T) {
	for _, c := range []struct {
		name  string
		hour  int
		dials int
	}{{"inside window", 23, 1}, {"outside window", 12, 0}} {
		t.Run(c.name, func(t *testing.T) {
			ns := nstest.New(t)
			dir := t.TempDir()
			dials, runs := filepath.Join(dir, "dials"), filepath.Join(dir, "runs")
			dialCmd := writeScript(t, filepath.Join(dir, "dial.sh"),
				fmt.Sprintf("echo dialed >> %s\nexec ip -n %s link set up0 up", dials, ns.Name))
			hangup := []string{"ip", "-n", ns.Name, "link", "set", "up0", "down"}

			t0 := time.Now()
			base := time.Date(2026, 12, 6, c.hour, 0, 0, 0, time.Local)
			now := func() time.Time { return base.Add(time.Since(t0)) }
			mailq := writeScript(t, filepath.Join(dir, "mailq.sh"), fmt.Sprintf(
				`echo '{"queue_name": "deferred", "queue_id": "880709843C3", "arrival_time": %d, "message_size": 308, "sender": "alice@home.test", "recipients": [{"address": "bob@far.test", "delay_reason": "connect to far.test: Network is unreachable"}]}'`,
				now().Add(-time.Hour).Unix()))
			drv := flush.Driver{Name: flush.Command, List: []string{mailq}, Parse: flush.ParseAuto}

			var h *harness
			record := pipeline.Exec{StageName: "record", Argv: []string{"sh", "-c", "echo ran >> " + runs}}
			hang := pipeline.Func{StageName: "drop", Fn: func(ctx context.Context, sink event.Sink) (pipeline.Report, error) {
				res, err := drop.Run(ctx, drop.Options{Command: hangup, Idle: 50 * time.Millisecond,
					Busy: func() string { return h.d.Busy("drop") }, Superseded: h.d.Superseded}, sink)
				return pipeline.Report{Summary: res.Summary}, err
			}}
			h = startNS(t, ns, 50*time.Millisecond, []pipeline.Step{{Stage: record}, {Stage: hang, Always: true}}, func(o *Options) {
				o.Dial = &dial.Options{
					Command: []string{dialCmd}, Iface: "up0",
					QueueAge: 30 * time.Minute, CheckEvery: 100 * time.Millisecond,
					Windows:       []dial.Window{{From: 22 * 60, To: 6 * 60}},
					AppearTimeout: 5 * time.Second, Retries: 1, Backoff: time.Second,
					ListQueue: func(ctx context.Context) (dial.Queue, error) {
						msgs, err := flush.List(ctx, flush.Options{Driver: &drv})
						var q dial.Queue
						for _, m := range msgs {
							q.Arrivals = append(q.Arrivals, m.Arrival)
						}
						return q, err
					},
					Now: now,
				}
			})
			if c.dials == 0 {
				time.Sleep(time.Second) // ten queue checks
				st := h.d.Snapshot()
				if n := lines(dials); n != 0 {
					t.Fatalf("%d dials outside the window", n)
				}
				if st.Dial == nil || !strings.Contains(st.Dial.Holding, "outside the dial windows 22:00-06:00") {
					t.Errorf("status does not say why: %+v", st.Dial)
				}
				// `linkctl dial` by hand: windows do not apply.
				rep := h.d.handle(context.Background(), control.Request{Op: control.OpDial}, func(event.Event) {})
				if rep.Exit != 0 || !strings.Contains(rep.Text, "link up after") {
					t.Fatalf("linkctl dial: %+v", rep)
				}
				h.lastRun(1)
				h.linkIs(false)
				if n := lines(dials); n != 1 {
					t.Errorf("%d dials after linkctl dial, want 1", n)
				}
				return
			}
			h.lastRun(1)
			h.linkIs(false)         // the drop stage hung up
			time.Sleep(time.Second) // ten more queue checks: the mail that link saw does not dial again
			if n := lines(dials); n != 1 {
				t.Errorf("%d dials, want exactly 1", n)
			}
			if n := lines(runs); n != 1 {
				t.Errorf("%d runs, want exactly 1", n)
			}
			st := h.d.Snapshot()
			if st.Dial == nil || !strings.HasPrefix(st.Dial.LastResult, "link up after") ||
				!strings.Contains(st.Dial.LastCause, "outbound mail waiting 1h") {
				t.Errorf("dial status %+v", st.Dial)
			}
			if st.Link.Up {
				t.Error("the link is still up: the drop stage did not hang up")
			}
		})
	}
}

// The daemon never dials while the link is up or a run is in flight.
func TestDialRefusedWhileUpOrRunning(t *testing.T) {
	g := newGate("fetch")
	dir := t.TempDir()
	dials := filepath.Join(dir, "dials")
	h := start(t, []pipeline.Step{{Stage: g.stage()}}, func(o *Options) {
		o.Dial = &dial.Options{Command: []string{"sh", "-c", "echo dialed >> " + dials}, AppearTimeout: time.Second}
	})
	ask := func() control.Reply {
		return h.d.handle(context.Background(), control.Request{Op: control.OpDial}, func(event.Event) {})
	}
	h.edge(up("ppp0"))
	wait(t, g.started, "the run")
	if r := ask(); r.Exit == 0 || !strings.Contains(r.Error, "a run is in flight") {
		t.Errorf("dial during a run: %+v", r)
	}
	g.release <- struct{}{}
	h.lastRun(1)
	if r := ask(); r.Exit == 0 || !strings.Contains(r.Error, "ppp0 is already up") {
		t.Errorf("dial while up: %+v", r)
	}
	if n := lines(dials); n != 0 {
		t.Errorf("%d dials", n)
	}
	if st := h.d.Snapshot(); st.Dial == nil || st.Dial.Dials != 0 {
		t.Errorf("status %+v", st.Dial)
	}
}
