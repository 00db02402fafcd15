package linkwatch

import (
	"math/rand/v2"
	"time"
)

// backoff is a capped exponential delay with jitter: each call to next
// doubles the base (from min up to max) and returns a random delay between
// half the base and the base. The jitter keeps two daemons that lost their
// sockets at the same moment (a suspend, a namespace-wide ENOBUFS) from
// retrying in lockstep.
type backoff struct {
	min, max time.Duration
	base     time.Duration // the next delay's upper bound; 0: min
}

func (b *backoff) next() time.Duration {
	if b.base < b.min {
		b.base = b.min
	}
	d := b.base
	b.base = min(b.base*2, b.max)
	return d/2 + rand.N(d/2+1)
}

// reset starts again at min (after a healthy period).
func (b *backoff) reset() { b.base = 0 }

// Subscription backoff: the first resubscription comes within 100 ms (a
// lost message may hide a down edge, though the watcher re-reads the state
// at once anyway), a socket that keeps dying is retried at most every 30 s,
// and one that lived for subHealthy counts as healthy: its death starts the
// sequence again.
const (
	subBackoffMin = 100 * time.Millisecond
	subBackoffMax = 30 * time.Second
	subHealthy    = time.Minute
)
