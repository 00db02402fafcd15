package daemon

// Dial on demand (package dial): the daemon runs the dial policy in a
// goroutine of its own, tells it every edge of the watcher (an up edge
// ends a dial's wait for the link), and answers its question whether a
// dial may start now. A dial only brings the link up: the watcher's up
// edge then starts the run like any other, and the drop stage hangs up.

import (
	"context"
	"time"

	"github.com/linkctl/linkctl/control"
	"github.com/linkctl/linkctl/dial"
	"github.com/linkctl/linkctl/internal/errkind"
)

// dialBusy says why no dial may start now: a run in flight or queued, the
// link already up, the daemon stopping.
func (d *Daemon) dialBusy() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.stopping:
		return "the daemon is stopping"
	case d.cur != nil:
		return "a run is in flight"
	case !d.queue.empty():
		return "a run is queued"
	case d.link.Up:
		if d.link.Iface != "" {
			return d.link.Iface + " is already up"
		}
		return "the link is already up"
	}
	// A link already up when the daemon starts gives its up edge only
	// after the watcher's first reading and the settle time: until the
	// watcher has read the links, "down" is not known.
	if w, ok := d.opts.Watcher.(interface {
		Current() (bool, string, time.Time)
	}); ok {
		if _, reason, _ := w.Current(); reason == "" {
			return "the link watcher has not read the links yet"
		}
	}
	return ""
}

// dialOptions completes the dial section's options with the daemon's own
// Busy (nil: no dial section, a policy that never dials).
func (d *Daemon) dialOptions(opts *dial.Options) dial.Options {
	var o dial.Options
	if opts != nil {
		o = *opts
	}
	o.Busy = d.dialBusy
	if o.Logger == nil {
		o.Logger = d.log
	}
	return o
}

// runDialer runs the dial policy until ctx ends. Without a dial section
// it waits: a reload may add one (Policy.Update).
func (d *Daemon) runDialer(ctx context.Context) { d.dialer.Run(ctx) }

// handleDial serves `linkctl dial`: one dial now, its result the reply.
func (d *Daemon) handleDial(ctx context.Context) control.Reply {
	if !d.dialer.Enabled() {
		return control.Reply{Exit: int(errkind.Usage), Error: "the config has no dial section: nothing to dial with"}
	}
	res, err := d.dialer.DialNow(ctx)
	if err != nil {
		return control.Reply{Exit: errkind.ExitCode(err), Error: err.Error()}
	}
	return control.Reply{Text: res + "; the pipeline runs on the up edge (linkctl status shows it)"}
}
