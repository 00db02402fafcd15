package assemble

import (
	"context"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/dial"
	"github.com/linkctl/linkctl/flush"
)

// DialOptions translates the dial section (nil: none, the daemon never
// dials). The queue triggers read the flush section's MTA listing; held,
// frozen and quarantined mail is left out (a dial would not send it). The
// budget gate is as.Gate (nil: no budget). The daemon adds its own Busy.
func (as *Assembler) DialOptions(cfg *config.Config) *dial.Options {
	d := cfg.Dial
	if len(d.Command) == 0 {
		return nil
	}
	o := &dial.Options{
		Command: d.Command, Iface: d.Interface,
		QueueAge: d.QueueAge, QueueCount: d.QueueCount, Every: d.Every,
		AppearTimeout: d.AppearTimeout, Retries: d.Retries, Backoff: d.Backoff, BackoffMax: d.BackoffMax,
		CheckEvery: d.CheckEvery, Logger: as.Logger,
	}
	for _, t := range d.At {
		o.At = append(o.At, dial.Clock(t))
	}
	for _, w := range d.Windows {
		o.Windows = append(o.Windows, dial.Window{From: dial.Clock(w.From), To: dial.Clock(w.To)})
	}
	for _, w := range d.Never {
		o.Never = append(o.Never, dial.Window{From: dial.Clock(w.From), To: dial.Clock(w.To)})
	}
	o.Gate = as.Gate
	if o.Gate == nil {
		if b := as.Budgets(cfg); b != nil {
			o.Gate = b
		}
	}
	if d.QueueAge > 0 || d.QueueCount > 0 {
		fo := as.FlushOptions(cfg)
		o.ListQueue = func(ctx context.Context) (dial.Queue, error) {
			msgs, err := flush.List(ctx, fo)
			return QueueOf(msgs), err
		}
	}
	return o
}

// QueueOf is what dialing reads of a queue listing: the arrival of every
// message a flush would send.
func QueueOf(msgs []flush.Message) dial.Queue {
	var q dial.Queue
	for _, m := range msgs {
		if !m.Held {
			q.Arrivals = append(q.Arrivals, m.Arrival)
		}
	}
	return q
}
