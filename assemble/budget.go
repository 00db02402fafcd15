package assemble

import (
	"context"
	"fmt"

	"github.com/linkctl/linkctl/config"
	"github.com/linkctl/linkctl/meter"
)

// budgets answers the budget questions of `linkctl plan` (Budget) and of
// dial on demand (dial.BudgetGate) from the meter's spending store, the
// same figures the fetch stage admits messages against.
type budgets struct{ m *meter.Meter }

// Budgets is cfg's link budgets, or nil when no link policy sets one.
func (as *Assembler) Budgets(cfg *config.Config) interface {
	Budget
	Spent(iface string) (why string, spent bool)
} {
	for _, p := range cfg.Link.Policies {
		if p.Budget.Run > 0 || p.Budget.Day > 0 || p.Budget.Month > 0 {
			return budgets{meter.New(as.MeterOptions(cfg))}
		}
	}
	return nil
}

// Remaining is what the budgets of iface's link leave for a run.
func (b budgets) Remaining(iface string) (int64, bool) {
	left, _, ok := b.m.Left(context.Background(), iface)
	return left, ok
}

// Spent says whether a budget of iface's link has nothing left: dialing
// for a run that may fetch nothing would only cost the connection.
func (b budgets) Spent(iface string) (string, bool) {
	left, which, ok := b.m.Left(context.Background(), iface)
	if !ok || left > 0 {
		return "", false
	}
	return fmt.Sprintf("the %s budget of %s is spent", which, iface), true
}
