package linkwatch

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: 30 * time.Second}
	base := 100 * time.Millisecond
	for i := range 12 {
		d := b.next()
		if d < base/2 || d > base {
			t.Fatalf("delay %d = %v, want within [%v, %v]", i, d, base/2, base)
		}
		base = min(base*2, 30*time.Second)
	}
	if base != 30*time.Second {
		t.Fatalf("the base never reached the cap: %v", base)
	}
	b.reset()
	if d := b.next(); d > 100*time.Millisecond {
		t.Errorf("after reset: %v, want at most 100ms", d)
	}
	// Jitter: two daemons starting together do not retry in lockstep.
	same := 0
	for range 20 {
		x := backoff{min: time.Second, max: time.Minute}
		y := backoff{min: time.Second, max: time.Minute}
		if x.next() == y.next() {
			same++
		}
	}
	if same > 2 {
		t.Errorf("%d of 20 pairs of delays were equal: no jitter", same)
	}
}
