package assemble

import (
	"context"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/internal/errkind"
	"github.com/linkctl/linkctl/linkwatch"
	"github.com/linkctl/linkctl/meter"
	"github.com/linkctl/linkctl/pipeline"
)

// MeterOptions translates the link policies into the meter's options.
func (as *Assembler) MeterOptions(cfg *config.Config) meter.Options {
	opts := meter.Options{StateDir: cfg.StateDir, Logger: as.Logger}
	for _, p := range cfg.Link.Policies {
		mp := meter.Policy{Match: p.Match, Run: p.Budget.Run, Day: p.Budget.Day, Month: p.Budget.Month, MaxMessage: p.MaxMessage}
		switch p.Metered {
		case config.MeteredFalse:
			mp.Metered = meter.MeteredNo
		case config.MeteredAuto:
			mp.Metered = meter.MeteredAuto
		default:
			mp.Metered = meter.MeteredYes
		}
		opts.Policies = append(opts.Policies, mp)
	}
	return opts
}

// meterErrKey carries a meter that could not start into the stages: the
// fetch then refuses to move mail it cannot account for.
type meterErrKey struct{}

// Around is the runner's pipeline.Options.Around: it meters each run on
// the link the run is for (the request's interface; for a run started
// by hand without one, the first watched link that is usable now, or
// none) by the policy of that link. The stages find the meter's Run in
// their context (meter.RunFrom). cfg is the config of the runs to come;
// Reloaded replaces it.
func (as *Assembler) Around(cfg *config.Config) func(context.Context, pipeline.Request) (context.Context, func(pipeline.RunReport)) {
	as.meterCfg.Store(cfg)
	return func(ctx context.Context, req pipeline.Request) (context.Context, func(pipeline.RunReport)) {
		cfg := as.meterCfg.Load()
		if cfg == nil || len(cfg.Link.Policies) == 0 {
			return ctx, nil
		}
		iface := req.Iface
		if iface == "" {
			if st, err := (linkwatch.NetlinkReader{}).Read(); err == nil {
				iface = linkwatch.UsableIface(st, cfg.Link.Watch)
			}
		}
		run, err := meter.New(as.MeterOptions(cfg)).Begin(ctx, iface, req.Cause)
		if err != nil {
			as.log().Error("cannot count this run's bytes: the fetch will not run", "iface", iface, "err", err)
			return context.WithValue(ctx, meterErrKey{}, err), nil
		}
		if run == nil {
			return ctx, nil
		}
		return meter.WithRun(ctx, run), func(pipeline.RunReport) {
			rec, err := run.End()
			if err != nil {
				as.log().Warn("spending store", "err", err)
			}
			as.log().Info("link spending", "run", rec.Summary())
		}
	}
}

// meterFor is what the fetch of a run gets from the meter: nil, or the
// error that kept the meter from starting.
func meterFor(ctx context.Context) (*meter.Run, error) {
	if err, ok := ctx.Value(meterErrKey{}).(error); ok {
		return nil, errkind.WrapPermanent(errkind.KindOf(err), "fetch", err)
	}
	return meter.RunFrom(ctx), nil
}
