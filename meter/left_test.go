package meter

import (
	"context"
	"testing"
	"time"
)

// Left is what dial and plan ask: what the link's budgets leave for the
// next run, from the spending store; nothing limits an unmetered link or
// one without a policy.
func TestLeft(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.Local)
	f := &file{Version: 1, Policies: map[string]*Spending{
		"wwan*": {Day: dayOf(now), DayBytes: 40 << 10, Month: monthOf(now), MonthBytes: 900 << 10},
		"ppp*":  {Day: dayOf(now.AddDate(0, 0, -1)), DayBytes: 50 << 10, Month: monthOf(now), MonthBytes: 10 << 10},
	}}
	if err := f.save(dir); err != nil {
		t.Fatal(err)
	}
	m := New(Options{StateDir: dir, Now: func() time.Time { return now }, Policies: []Policy{
		{Match: "wwan*", Metered: MeteredYes, Run: 100 << 10, Day: 50 << 10, Month: 1 << 20},
		{Match: "ppp*", Metered: MeteredYes, Day: 50 << 10},
		{Match: "eth*", Metered: MeteredNo, Day: 1},
	}})
	for _, c := range []struct {
		iface string
		left  int64
		which string
		ok    bool
	}{
		{"wwan0", 10 << 10, "day", true}, // day 50k - 40k is less than the run's 100k and the month's 124k
		{"ppp0", 50 << 10, "day", true},  // yesterday's spending does not count today
		{"eth0", 0, "", false},           // not metered: no limit
		{"wg0", 0, "", false},            // no policy
	} {
		left, which, ok := m.Left(context.Background(), c.iface)
		if left != c.left || which != c.which || ok != c.ok {
			t.Errorf("Left(%s) = %d, %q, %v; want %d, %q, %v", c.iface, left, which, ok, c.left, c.which, c.ok)
		}
	}
	f.Policies["wwan*"].DayBytes = 60 << 10 // past the budget: nothing left, never negative
	if err := f.save(dir); err != nil {
		t.Fatal(err)
	}
	if left, which, ok := m.Left(context.Background(), "wwan0"); left != 0 || which != "day" || !ok {
		t.Errorf("spent day: Left = %d, %q, %v; want 0, day, true", left, which, ok)
	}
}
