package deliver

import "context"

// The commit point of a delivery is the step after which the local side
// has the message whatever happens next: the final dot of SMTP/LMTP DATA
// (RFC 5321 section 4.1.1.4: the server commits on it), the rename into a
// Maildir's new/, the end of an MDA's stdin. Between that step and the
// moment the fetch engine has recorded the message, a crash of linkctl
// (kill -9) leaves a message that the local side has and the record does
// not: the next run delivers it again. With several sessions in parallel,
// each of them can sit in that window at once (a local MTA that fsyncs
// before its 250 spends most of a delivery there), so one kill duplicated
// as many messages as there were sessions.
//
// A caller can bound that: WithCommitGate attaches a function the targets
// call just before their commit point. It may block (the engine lets one
// delivery at a time past it, until the previous one is recorded); an
// error from it aborts the delivery before the commit point, so nothing
// reaches the local side. Everything before the commit point (the
// envelope, the transfer of the message) still runs in parallel.

type commitGateKey struct{}

// WithCommitGate returns ctx carrying gate: Deliver calls gate just before
// the commit point, at most once per message (once per MDA run).
func WithCommitGate(ctx context.Context, gate func(context.Context) error) context.Context {
	return context.WithValue(ctx, commitGateKey{}, gate)
}

// EnterCommit calls the gate of ctx, if any: a Target outside this
// package calls it just before its commit point.
func EnterCommit(ctx context.Context) error { return enterCommit(ctx) }

// enterCommit calls the gate of ctx, if any.
func enterCommit(ctx context.Context) error {
	if g, ok := ctx.Value(commitGateKey{}).(func(context.Context) error); ok && g != nil {
		return g(ctx)
	}
	return nil
}

// Some targets still have work after their commit point that cannot undo
// it: a Maildir fsyncs new/ after the rename, so that the rename survives
// a crash of the machine. WithCommitted lets the caller record the
// message as soon as the commit point is passed (and so let the next
// delivery through its gate) instead of after that work: the target calls
// done right after its commit point, at most once per message, from the
// goroutine that called Deliver and before Deliver returns. If
// Deliver then fails all the same, the message is in the local side but
// may not survive a crash of the machine; the caller should deliver it
// again rather than delete it.

type committedKey struct{}

// WithCommitted returns ctx carrying done (see above).
func WithCommitted(ctx context.Context, done func()) context.Context {
	return context.WithValue(ctx, committedKey{}, done)
}

// Committed calls the done function of ctx, if any: a Target calls it
// right after its commit point (see WithCommitted).
func Committed(ctx context.Context) {
	if f, ok := ctx.Value(committedKey{}).(func()); ok && f != nil {
		f()
	}
}
