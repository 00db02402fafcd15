package flush

import (
	"context"
	"slices"
	"strings"
)

// opensmtpdResume lifts the routes OpenSMTPD disabled after failed
// connections. Its MTA process marks a route 'D' (disabled) after
// errors and keeps it so for a penalty time that grows with each
// failure; `smtpctl schedule all` makes the envelopes due but they stay
// pending on the disabled route, so a flush right after the next hop came
// back would report them deferred. `smtpctl show routes` prints one route
// per line, "ID. [src] <-> dst (name) FLAGS nconn=...", FLAGS four
// characters with 'D' for disabled (smtpd mta.c); each disabled one gets
// `smtpctl resume route ID` before the flush.
//
// Best effort: an smtpctl without "show routes", or a route that
// vanished in between, leaves the flush to run as before.
func opensmtpdResume(base []string) func(context.Context, *Runner) error {
	return func(ctx context.Context, r *Runner) error {
		out, err := r.Run(ctx, append(slices.Clone(base), "show", "routes"))
		if err != nil {
			return nil
		}
		for _, id := range disabledRoutes(out) {
			r.Run(ctx, append(slices.Clone(base), "resume", "route", id))
		}
		return ctx.Err()
	}
}

// disabledRoutes returns the ids of the routes `smtpctl show routes`
// marks disabled.
func disabledRoutes(out []byte) []string {
	var ids []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasSuffix(f[0], ".") {
			continue
		}
		id := strings.TrimSuffix(f[0], ".")
		if id == "" || strings.Trim(id, "0123456789") != "" {
			continue
		}
		// The flags are the field before "nconn=".
		for i := 1; i < len(f); i++ {
			if strings.HasPrefix(f[i], "nconn=") {
				if flags := f[i-1]; len(flags) == 4 && strings.Contains(flags, "D") {
					ids = append(ids, id)
				}
				break
			}
		}
	}
	return ids
}
