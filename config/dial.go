package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults of the dial section.
const (
	DefaultAppearTimeout = 90 * time.Second
	DefaultDialRetries   = 3
	DefaultDialBackoff   = time.Minute
	DefaultDialBackoffMx = 15 * time.Minute
	DefaultDialCheckMax  = 5 * time.Minute // queue checks: every min(queue_age/4, this)
	MinDialCheck         = 10 * time.Second
)

// TimeOfDay is a local wall-clock time in minutes after midnight (0 to
// 1440; 24:00 only as a window's end).
type TimeOfDay int

func (t TimeOfDay) String() string { return fmt.Sprintf("%02d:%02d", int(t)/60, int(t)%60) }

// Window is a daily stretch of local time, [From, To); From after To
// crosses midnight ("22:00-06:00").
type Window struct{ From, To TimeOfDay }

func (w Window) String() string { return w.From.String() + "-" + w.To.String() }

// Dial configures dialing on demand. Command is empty when the config has
// no dial section: the daemon then never dials.
type Dial struct {
	Command       []string // argv that brings the link up
	Interface     string   // the link it brings up (default: link.watch's only plain name)
	QueueAge      time.Duration
	QueueCount    int
	At            []TimeOfDay
	Every         time.Duration
	Windows       []Window // none: any time
	Never         []Window
	AppearTimeout time.Duration // default DefaultAppearTimeout
	Retries       int           // default DefaultDialRetries
	Backoff       time.Duration // default DefaultDialBackoff
	BackoffMax    time.Duration // default DefaultDialBackoffMx
	CheckEvery    time.Duration // default min(queue_age/4, 5m), at least 10s
}

type rawDial struct {
	Node          *yaml.Node `yaml:"-"`
	Command       *yaml.Node `yaml:"command"`
	Interface     *yaml.Node `yaml:"interface"`
	QueueAge      *yaml.Node `yaml:"queue_age"`
	QueueCount    *yaml.Node `yaml:"queue_count"`
	At            *yaml.Node `yaml:"at"`
	Every         *yaml.Node `yaml:"every"`
	Windows       *yaml.Node `yaml:"windows"`
	Never         *yaml.Node `yaml:"never"`
	AppearTimeout *yaml.Node `yaml:"appear_timeout"`
	Retries       *yaml.Node `yaml:"retries"`
	Backoff       *yaml.Node `yaml:"backoff"`
	BackoffMax    *yaml.Node `yaml:"backoff_max"`
	CheckEvery    *yaml.Node `yaml:"check_every"`
}

func (c *checker) dial(r *rawDial, link Link) Dial {
	if r == nil {
		return Dial{}
	}
	d := Dial{
		Command:       c.argv(r.Command, "dial.command"),
		Interface:     c.word(r.Interface, "dial.interface", "", "expected an interface name such as ppp0"),
		QueueAge:      c.dur(r.QueueAge, "dial.queue_age", 0),
		QueueCount:    c.integer(r.QueueCount, "dial.queue_count", 0, 0, 1000000),
		Every:         c.dur(r.Every, "dial.every", 0),
		AppearTimeout: c.dur(r.AppearTimeout, "dial.appear_timeout", DefaultAppearTimeout),
		Retries:       c.integer(r.Retries, "dial.retries", DefaultDialRetries, 0, 100),
		Backoff:       c.dur(r.Backoff, "dial.backoff", DefaultDialBackoff),
		BackoffMax:    c.dur(r.BackoffMax, "dial.backoff_max", DefaultDialBackoffMx),
	}
	if isNull(r.Command) {
		c.add(r.Node, "dial.command", "missing", "expected the command that brings the link up, e.g. [pon, provider] or [nmcli, connection, up, lte]")
	}
	if len(d.Interface) > 15 {
		c.add(r.Interface, "dial.interface", fmt.Sprintf("%q is longer than an interface name can be", d.Interface), "expected at most 15 characters")
	}
	if d.Interface == "" && len(link.Watch) == 1 && !strings.ContainsAny(link.Watch[0], "*?[") && link.Watch[0] != "default-route" {
		d.Interface = link.Watch[0]
	}
	if d.AppearTimeout == 0 && !isNull(r.AppearTimeout) {
		c.add(r.AppearTimeout, "dial.appear_timeout", "is 0", "expected how long the link may take to come up, e.g. 90s")
		d.AppearTimeout = DefaultAppearTimeout
	}
	if d.Backoff == 0 && !isNull(r.Backoff) {
		c.add(r.Backoff, "dial.backoff", "is 0", "expected the first retry's wait, e.g. 1m")
		d.Backoff = DefaultDialBackoff
	}
	if d.BackoffMax < d.Backoff {
		if !isNull(r.BackoffMax) {
			c.add(r.BackoffMax, "dial.backoff_max", fmt.Sprintf("%s is shorter than backoff (%s)", d.BackoffMax, d.Backoff), "expected backoff_max >= backoff")
		}
		d.BackoffMax = d.Backoff
	}
	if !isNull(r.Every) && d.Every > 0 && d.Every < time.Minute {
		c.add(r.Every, "dial.every", fmt.Sprintf("%s is shorter than a minute", d.Every), "expected e.g. 4h; dialing that often costs more than it saves")
		d.Every = 0
	}
	// The queue is listed every min(queue_age/4, 5m): often enough that
	// mail waits at most a quarter longer than queue_age, rarely enough
	// that an idle daemon hardly wakes up.
	def := DefaultDialCheckMax
	if d.QueueAge > 0 {
		def = max(min(d.QueueAge/4, DefaultDialCheckMax), MinDialCheck)
	}
	d.CheckEvery = c.dur(r.CheckEvery, "dial.check_every", def)
	if d.CheckEvery < time.Second {
		c.add(r.CheckEvery, "dial.check_every", fmt.Sprintf("%s is shorter than a second", d.CheckEvery), "expected e.g. 1m")
		d.CheckEvery = def
	}
	for i, s := range c.list(r.At, "dial.at", true, `expected times of day such as ["06:00", "18:30"]`) {
		t, ok := parseTimeOfDay(s, false)
		if !ok {
			c.add(elem(r.At, i), fmt.Sprintf("dial.at[%d]", i), fmt.Sprintf("invalid time of day %q", s), `expected HH:MM, 00:00 to 23:59, e.g. "06:00"`)
			continue
		}
		d.At = append(d.At, t)
	}
	d.Windows = c.windows(r.Windows, "dial.windows")
	d.Never = c.windows(r.Never, "dial.never")
	return d
}

func (c *checker) windows(n *yaml.Node, path string) []Window {
	const exp = `expected local time ranges such as ["22:00-06:00"]; 00:00-24:00 is the whole day`
	var out []Window
	for i, s := range c.list(n, path, true, exp) {
		from, to, ok := strings.Cut(s, "-")
		f, ok1 := parseTimeOfDay(from, false)
		t, ok2 := parseTimeOfDay(to, true)
		switch {
		case !ok || !ok1 || !ok2:
			c.add(elem(n, i), fmt.Sprintf("%s[%d]", path, i), fmt.Sprintf("invalid window %q", s), exp)
		case f == t:
			c.add(elem(n, i), fmt.Sprintf("%s[%d]", path, i), fmt.Sprintf("window %q is empty", s), exp)
		default:
			out = append(out, Window{From: f, To: t})
		}
	}
	return out
}

// parseTimeOfDay reads HH:MM; 24:00 only when end is set.
func parseTimeOfDay(s string, end bool) (TimeOfDay, bool) {
	hs, ms, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || len(hs) < 1 || len(hs) > 2 || len(ms) != 2 {
		return 0, false
	}
	h, err1 := strconv.Atoi(hs)
	m, err2 := strconv.Atoi(ms)
	if err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59 {
		return 0, false
	}
	v := h*60 + m
	if v > 1440 || v == 1440 && !end || h > 24 {
		return 0, false
	}
	return TimeOfDay(v), true
}
