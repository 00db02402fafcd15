package fetch

import (
	"context"

	"github.com/linkctl/linkctl/fetch/odmr"
	"github.com/linkctl/linkctl/internal/event"
)

// ODMRPush makes an Account.Push of an ODMR relay (RFC 2645): odmr.Run
// with opts, its accepted messages as the account's figures. The relay's
// 453 "no mail" is a run with nothing fetched (exit status 1 when every
// account found nothing), not an error. opts.Account is set from the sink's
// account when empty.
func ODMRPush(opts odmr.Options) func(ctx context.Context, sink event.Sink) (PushResult, error) {
	return func(ctx context.Context, sink event.Sink) (PushResult, error) {
		res, err := odmr.Run(ctx, opts, sink)
		return PushResult{Messages: res.Messages, Bytes: res.Bytes, Failed: res.Deferred + res.Rejected}, err
	}
}
