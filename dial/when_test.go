package dial

import (
	"testing"
	"time"
)

func at(t *testing.T, loc *time.Location, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWindowContains(t *testing.T) {
	night := Window{From: 22 * 60, To: 6 * 60}
	day := Window{From: 9 * 60, To: 17*60 + 30}
	all := Window{From: 0, To: 1440}
	for _, c := range []struct {
		w    Window
		when string
		want bool
	}{
		{night, "2026-12-06 22:00", true},
		{night, "2026-12-06 23:59", true},
		{night, "2026-12-07 00:00", true},
		{night, "2026-12-07 05:59", true},
		{night, "2026-12-07 06:00", false}, // the end is not inside
		{night, "2026-12-07 12:00", false},
		{night, "2026-12-06 21:59", false},
		{day, "2026-12-06 09:00", true},
		{day, "2026-12-06 17:29", true},
		{day, "2026-12-06 17:30", false},
		{day, "2026-12-06 08:59", false},
		{all, "2026-12-06 00:00", true},
		{all, "2026-12-06 23:59", true},
	} {
		if got := c.w.Contains(at(t, time.UTC, c.when)); got != c.want {
			t.Errorf("%s contains %s = %v, want %v", c.w, c.when, got, c.want)
		}
	}
}

func TestAllowedNeverWins(t *testing.T) {
	windows := []Window{{22 * 60, 6 * 60}}
	never := []Window{{0, 60}} // the provider's maintenance hour
	for when, want := range map[string]bool{
		"2026-12-06 23:00": true,
		"2026-12-07 00:30": false,
		"2026-12-07 01:00": true,
		"2026-12-07 12:00": false,
	} {
		ok, why := Allowed(at(t, time.UTC, when), windows, never)
		if ok != want {
			t.Errorf("Allowed(%s) = %v (%s), want %v", when, ok, why, want)
		}
		if !ok && why == "" {
			t.Errorf("Allowed(%s): refused without saying why", when)
		}
	}
	if ok, _ := Allowed(at(t, time.UTC, "2026-12-07 12:00"), nil, nil); !ok {
		t.Error("no windows should allow any time")
	}
}

// Across a DST change a window keeps its wall-clock times, and a fixed
// time skipped by the change still happens once that day.
func TestWindowsAndAtAcrossDST(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no tz database: %v", err)
	}
	night := Window{From: 22 * 60, To: 6 * 60}
	// 2026-03-29: clocks go from 02:00 to 03:00 (CET -> CEST).
	if !night.Contains(at(t, loc, "2026-03-29 05:30")) {
		t.Error("05:30 on the spring-forward night should be inside 22:00-06:00")
	}
	if night.Contains(at(t, loc, "2026-03-29 06:00")) {
		t.Error("06:00 by the wall clock ends the window, whatever the night's length")
	}
	// 2026-10-25: clocks go back from 03:00 to 02:00; 02:30 happens twice.
	first := time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC).In(loc) // 02:30 CEST
	second := first.Add(time.Hour)                                  // 02:30 CET
	if h, m, _ := second.Clock(); h != 2 || m != 30 {
		t.Fatalf("expected 02:30 to repeat, got %s", second)
	}
	if !night.Contains(first) || !night.Contains(second) {
		t.Error("both 02:30s are inside 22:00-06:00")
	}
	// at 02:30 on the spring-forward day: that wall time does not exist;
	// it is dialed once, at 03:30 local (time.Date's normalisation).
	n := NextAt(at(t, loc, "2026-03-29 01:00"), []Clock{2*60 + 30})
	if n.Day() != 29 || n.Sub(at(t, loc, "2026-03-29 01:00")) != 90*time.Minute {
		t.Errorf("NextAt on the spring-forward day = %s", n)
	}
	// The day after, 02:30 is 24h later than usual would say 23h: the wall
	// clock rules.
	n2 := NextAt(n, []Clock{2*60 + 30})
	if n2.Format("2006-01-02 15:04") != "2026-03-30 02:30" {
		t.Errorf("next = %s, want 2026-03-30 02:30", n2)
	}
}

func TestNextAt(t *testing.T) {
	times := []Clock{6 * 60, 18*60 + 30}
	for from, want := range map[string]string{
		"2026-12-06 05:00": "2026-12-06 06:00",
		"2026-12-06 06:00": "2026-12-06 18:30", // strictly after
		"2026-12-06 12:00": "2026-12-06 18:30",
		"2026-12-06 23:00": "2026-12-07 06:00", // over midnight
		"2026-12-31 23:00": "2027-01-01 06:00", // over the year
	} {
		if got := NextAt(at(t, time.UTC, from), times).Format("2006-01-02 15:04"); got != want {
			t.Errorf("NextAt(%s) = %s, want %s", from, got, want)
		}
	}
	if !NextAt(time.Now(), nil).IsZero() {
		t.Error("no fixed times: zero")
	}
}

func TestNextOpen(t *testing.T) {
	windows := []Window{{22 * 60, 6 * 60}}
	if got := NextOpen(at(t, time.UTC, "2026-12-06 12:00"), windows, nil); got.Format("15:04") != "22:00" {
		t.Errorf("NextOpen from noon = %s", got)
	}
	now := at(t, time.UTC, "2026-12-06 23:00")
	if got := NextOpen(now, windows, nil); !got.Equal(now) {
		t.Errorf("NextOpen inside = %s", got)
	}
	if got := NextOpen(now, windows, []Window{{0, 1440}}); !got.IsZero() {
		t.Errorf("never all day: %s", got)
	}
}

func TestBackoff(t *testing.T) {
	base, maxW := time.Minute, 5*time.Minute
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	for i, w := range want {
		if got := Backoff(i+1, base, maxW); got != w {
			t.Errorf("Backoff(%d) = %s, want %s", i+1, got, w)
		}
	}
	if got := Backoff(200, time.Minute, time.Hour); got != time.Hour {
		t.Errorf("Backoff(200) = %s: overflow", got)
	}
}
