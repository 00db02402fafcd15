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

// enterCommit calls the gate of ctx, if any.
func enterCommit(ctx context.Context) error {
	if g, ok := ctx.Value(commitGateKey{}).(func(context.Context) error); ok && g != nil {
		return g(ctx)
	}
	return nil
}
