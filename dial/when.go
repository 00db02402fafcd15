package dial

import (
	"fmt"
	"time"
)

// Clock is a wall-clock time of day in minutes after local midnight,
// 0 to 1440 (24:00 only as a window's end).
type Clock int

func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60) }

// on is c on the calendar day of t, in t's location. time.Date normalises
// a wall time that a DST change skips (02:30 on a spring-forward night
// becomes 03:30) and picks the first of a repeated one.
func (c Clock) on(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, int(c)/60, int(c)%60, 0, 0, t.Location())
}

// Window is a daily stretch of local wall-clock time, [From, To). From
// after To crosses midnight ("22:00-06:00"); From == 0 and To == 1440 is
// the whole day.
type Window struct{ From, To Clock }

func (w Window) String() string { return w.From.String() + "-" + w.To.String() }

// minuteOfDay is t's local wall-clock time in minutes. Comparing wall
// clocks (not elapsed time since midnight) keeps a window on its printed
// times across a DST change: "22:00-06:00" ends at 06:00 by the clock on
// the wall whether the night had 7, 8 or 9 hours.
func minuteOfDay(t time.Time) Clock {
	h, m, _ := t.Clock()
	return Clock(h*60 + m)
}

// Contains reports whether t falls inside w.
func (w Window) Contains(t time.Time) bool {
	m := minuteOfDay(t)
	if w.From <= w.To {
		return m >= w.From && m < w.To
	}
	return m >= w.From || m < w.To // crosses midnight
}

// Allowed says whether a dial may start at t: inside one of windows (none:
// any time) and inside none of never. why says which rule refused.
func Allowed(t time.Time, windows, never []Window) (ok bool, why string) {
	for _, w := range never {
		if w.Contains(t) {
			return false, "inside never-dial window " + w.String()
		}
	}
	if len(windows) == 0 {
		return true, ""
	}
	for _, w := range windows {
		if w.Contains(t) {
			return true, ""
		}
	}
	return false, "outside the dial windows " + windowList(windows)
}

func windowList(ws []Window) string {
	s := ""
	for i, w := range ws {
		if i > 0 {
			s += ", "
		}
		s += w.String()
	}
	return s
}

// NextAt is the first of the fixed times at strictly after t (zero
// without any).
func NextAt(t time.Time, at []Clock) time.Time {
	var best time.Time
	for _, c := range at {
		for day := 0; day < 3; day++ {
			cand := c.on(t.AddDate(0, 0, day))
			if cand.After(t) {
				if best.IsZero() || cand.Before(best) {
					best = cand
				}
				break
			}
		}
	}
	return best
}

// NextOpen is the first minute after t at which a dial is Allowed (t
// itself when it is), looking at most two days ahead; zero when never
// (windows entirely covered by never-windows).
func NextOpen(t time.Time, windows, never []Window) time.Time {
	if ok, _ := Allowed(t, windows, never); ok {
		return t
	}
	c := t.Truncate(time.Minute)
	for i := 0; i < 2*24*60; i++ {
		c = c.Add(time.Minute)
		if ok, _ := Allowed(c, windows, never); ok {
			return c
		}
	}
	return time.Time{}
}

// Backoff is the wait before retry n (1 for the first retry): base,
// doubling each time, never above max.
func Backoff(n int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < n; i++ {
		d *= 2
		if d >= max || d <= 0 {
			return max
		}
	}
	return min(d, max)
}
