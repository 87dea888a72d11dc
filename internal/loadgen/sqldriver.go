package loadgen

import (
	"context"
	"errors"

	"github.com/flashsale/flashsale/internal/sale"
)

// SQLDriver is the baseline: the service's own transactions (the checkout
// and purchase batches with their group commit) run straight on PostgreSQL through
// sale.Service over a pgxpool, with no HTTP in between. The service's
// throughput divided by this one is what HTTP and JSON cost.
type SQLDriver struct {
	sales *sale.Service
}

// NewSQLDriver drives the checkout and purchase transactions through sales.
func NewSQLDriver(sales *sale.Service) *SQLDriver {
	return &SQLDriver{sales: sales}
}

// NewWorker implements Driver.
func (d *SQLDriver) NewWorker() Worker { return sqlWorker{d.sales} }

type sqlWorker struct{ sales *sale.Service }

// refusals names the refusals the way the API's error codes do.
var refusals = []struct {
	err  error
	name string
}{
	{sale.ErrSoldOut, "sold_out"},
	{sale.ErrItemUnavailable, "item_unavailable"},
	{sale.ErrUserLimit, "user_limit_reached"},
	{sale.ErrItemNotFound, "item_not_found"},
	{sale.ErrNoActiveSale, "no_active_sale"},
	{sale.ErrCodeNotFound, "code_not_found"},
	{sale.ErrCodeExpired, "code_expired"},
}

func outcomeOf(err error) Result {
	for _, o := range refusals {
		if errors.Is(err, o.err) {
			return Result{Outcome: o.name}
		}
	}
	return Result{Err: err}
}

func (sqlWorker) Close() {}

func (w sqlWorker) Checkout(ctx context.Context, userID string, itemID int64) Result {
	hold, err := w.sales.Checkout(ctx, sale.CheckoutRequest{UserID: userID, ItemID: itemID})
	if err != nil {
		return outcomeOf(err)
	}
	return Result{Outcome: "held", Code: hold.Code}
}

func (w sqlWorker) Purchase(ctx context.Context, code string) Result {
	p, err := w.sales.Purchase(ctx, code, "")
	if err != nil {
		return outcomeOf(err)
	}
	return Result{Outcome: "purchased", PurchaseID: p.ID}
}
