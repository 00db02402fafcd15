package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDialBlock(t *testing.T) {
	testEnv(t, 1000, nil)
	cfg, err := Parse("t.yaml", []byte(`link: {watch: [ppp0]}
flush:
drop: {command: [poff, provider]}
dial:
  command: [pon, provider]
  queue_age: 30m
  queue_count: 20
  at: ["06:00", "18:30"]
  every: 4h
  windows: ["22:00-06:00", "12:00-13:00"]
  never: ["00:00-01:00"]
  appear_timeout: 60s
  retries: 2
  backoff: 30s
  backoff_max: 4m
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Dial{
		Command: []string{"pon", "provider"}, Interface: "ppp0",
		QueueAge: 30 * time.Minute, QueueCount: 20,
		At:    []TimeOfDay{6 * 60, 18*60 + 30},
		Every: 4 * time.Hour, Windows: []Window{{22 * 60, 6 * 60}, {12 * 60, 13 * 60}}, Never: []Window{{0, 60}},
		AppearTimeout: 60 * time.Second, Retries: 2, Backoff: 30 * time.Second, BackoffMax: 4 * time.Minute,
		CheckEvery: 5 * time.Minute, // min(30m/4, 5m)
	}
	if !reflect.DeepEqual(cfg.Dial, want) {
		t.Errorf("got  %+v\nwant %+v", cfg.Dial, want)
	}
}

func TestDialDefaults(t *testing.T) {
	testEnv(t, 1000, nil)
	cfg, err := Parse("t.yaml", []byte("link: {watch: [wwan*]}\nflush:\ndial: {command: [nmcli, connection, up, lte], queue_age: 2m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Dial
	if d.Interface != "" || d.AppearTimeout != 90*time.Second || d.Retries != 3 || d.Backoff != time.Minute ||
		d.BackoffMax != 15*time.Minute || d.CheckEvery != 30*time.Second {
		t.Errorf("defaults %+v", d)
	}
	cfg, _ = Parse("t.yaml", []byte("flush:\n"))
	if len(cfg.Dial.Command) != 0 {
		t.Errorf("no dial section, yet %+v", cfg.Dial)
	}
}

func TestDialValidation(t *testing.T) {
	testEnv(t, 1000, nil)
	for _, c := range []struct{ in, want string }{
		{"dial: {queue_age: 30m}", `t.yaml:2: dial.command: missing (expected the command that brings the link up, e.g. [pon, provider] or [nmcli, connection, up, lte])`},
		{"dial: {command: pon provider}", `t.yaml:2: dial.command: command "pon provider" is one string (expected a list such as [poff, provider]; linkctl runs no shell)`},
		{`dial: {command: [pon], at: ["6pm"]}`, `t.yaml:2: dial.at[0]: invalid time of day "6pm" (expected HH:MM, 00:00 to 23:59, e.g. "06:00")`},
		{`dial: {command: [pon], at: ["24:00"]}`, `t.yaml:2: dial.at[0]: invalid time of day "24:00" (expected HH:MM, 00:00 to 23:59, e.g. "06:00")`},
		{`dial: {command: [pon], windows: ["22:00"]}`, `t.yaml:2: dial.windows[0]: invalid window "22:00" (expected local time ranges such as ["22:00-06:00"]; 00:00-24:00 is the whole day)`},
		{`dial: {command: [pon], windows: ["22:00-22:00"]}`, `t.yaml:2: dial.windows[0]: window "22:00-22:00" is empty (expected local time ranges such as ["22:00-06:00"]; 00:00-24:00 is the whole day)`},
		{`dial: {command: [pon], never: ["25:00-26:00"]}`, `t.yaml:2: dial.never[0]: invalid window "25:00-26:00" (expected local time ranges such as ["22:00-06:00"]; 00:00-24:00 is the whole day)`},
		{`dial: {command: [pon], every: 10s}`, `t.yaml:2: dial.every: 10s is shorter than a minute (expected e.g. 4h; dialing that often costs more than it saves)`},
		{`dial: {command: [pon], backoff: 5m, backoff_max: 1m}`, `t.yaml:2: dial.backoff_max: 1m0s is shorter than backoff (5m0s) (expected backoff_max >= backoff)`},
		{`dial: {command: [pon], retries: -1}`, `t.yaml:2: dial.retries: invalid number "-1" (expected a whole number from 0 to 100)`},
		{`dial: {command: [pon], qeue_age: 5m}`, `t.yaml:2: dial.qeue_age: unknown key (expected one of: command, interface, queue_age, queue_count, at, every, windows, never, appear_timeout, retries, backoff, backoff_max, check_every; did you mean queue_age?)`},
	} {
		_, err := Parse("t.yaml", []byte("flush:\n"+c.in+"\n"))
		got := strings.Join(problems(t, err), "\n")
		if got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.in, got, c.want)
		}
	}
	// 24:00 ends a window; 00:00-24:00 is the whole day.
	cfg, err := Parse("t.yaml", []byte("flush:\ndial: {command: [pon], windows: [\"00:00-24:00\"]}\n"))
	if err != nil || !reflect.DeepEqual(cfg.Dial.Windows, []Window{{0, 1440}}) {
		t.Errorf("whole day: %v %+v", err, cfg.Dial.Windows)
	}
}

// `linkctl check` prints the dial block with every default, and the print
// parses back into the same block.
func TestDialRedactedRoundTrip(t *testing.T) {
	testEnv(t, 1000, nil)
	c, err := Parse("t.yaml", []byte("link: {watch: [ppp0]}\nflush:\ndial: {command: [pon, provider], queue_age: 1h, at: [\"6:05\"], windows: [\"22:00-06:00\"], never: [\"00:00-00:30\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"dial:\n", "  command: [pon, provider]\n", "  at: [\"06:05\"]\n", "  windows: ['22:00-06:00']\n", "  appear_timeout: 1m30s\n", "  check_every: 5m\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("Redacted lacks %q:\n%s", want, out)
		}
	}
	c2, err := Parse("t.yaml", out)
	if err != nil {
		t.Fatalf("does not parse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(c.Dial, c2.Dial) {
		t.Errorf("round trip differs:\n%+v\n%+v", c.Dial, c2.Dial)
	}
}
