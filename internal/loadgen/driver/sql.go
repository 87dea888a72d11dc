package driver

import (
	"context"

	"github.com/flashsale/flashsale/internal/sale"
)

// SQLDriver is the baseline: the service's own transactions (the checkout
// and purchase batches with their group commit) run straight on PostgreSQL
// through sale.Service over a pgxpool, with no HTTP in between. The
// service's throughput divided by this one is what HTTP and JSON cost.
type SQLDriver struct {
	sales *sale.Service
}

// NewSQL drives the checkout and purchase transactions through sales.
func NewSQL(sales *sale.Service) *SQLDriver {
	return &SQLDriver{sales: sales}
}

// NewWorker implements Driver.
func (d *SQLDriver) NewWorker() Worker { return sqlWorker{d.sales} }

type sqlWorker struct{ sales *sale.Service }

// refused is the answer err stands for: a refusal, named as the API names
// it, or no answer at all.
func refused(err error) Result {
	if o := sale.Outcome(err); o != "" {
		return Result{Outcome: o}
	}
	return Result{Err: err}
}

func (sqlWorker) Close() {}

func (w sqlWorker) Checkout(ctx context.Context, userID string, itemID int64) Result {
	hold, err := w.sales.Checkout(ctx, sale.CheckoutRequest{UserID: userID, ItemID: itemID})
	if err != nil {
		return refused(err)
	}
	return Result{Outcome: Held, Code: hold.Code}
}

func (w sqlWorker) Purchase(ctx context.Context, code string) Result {
	p, err := w.sales.Purchase(ctx, code, "")
	if err != nil {
		return refused(err)
	}
	return Result{Outcome: Purchased, PurchaseID: p.ID}
}
