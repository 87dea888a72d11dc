package sale_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
)

// TestSalesNeverOverlap: a SALE_DURATION changed while sales of the old
// length exist must not create a sale overlapping them; the schema refuses
// it, and the service says why and keeps the existing sales.
func TestSalesNeverOverlap(t *testing.T) {
	t.Parallel()
	hourly := saletest.New(t, saletest.WithDuration(time.Hour), saletest.WithUnits(10), saletest.WithItems(1))

	// Three-hour windows starting at multiples of 3h: the current one
	// contains the hourly sales that exist.
	settings := hourly.Settings
	settings.Duration = 3 * time.Hour
	longer := saletest.New(t, saletest.WithDatabase(hourly.URL), saletest.WithSettings(settings), saletest.WithoutSales())
	// A window starting an hour before the current hourly sale overlaps it
	// without sharing its start.
	_, err := longer.Service.EnsureSale(t.Context(), hourly.Sale.StartsAt.Add(-time.Hour))
	if !errors.Is(err, sale.ErrSaleOverlap) {
		t.Fatalf("EnsureSale over the hourly sales: %v, want ErrSaleOverlap", err)
	}
	if err := longer.Service.EnsureSales(t.Context(), hourly.Sale.StartsAt.Add(30*time.Minute)); err != nil {
		t.Fatalf("EnsureSales must keep going past an overlap: %v", err)
	}
	if after := pgtest.Scalar(t, hourly.Pool, "SELECT count(*) FROM sales WHERE tstzrange(starts_at, ends_at) && tstzrange($1, $2)",
		hourly.Sale.StartsAt, hourly.Sale.EndsAt); after != 1 {
		t.Errorf("%d sales overlap the current hour, want 1", after)
	}
	cur, err := longer.Service.Current(t.Context())
	if err != nil || cur.ID != hourly.Sale.ID {
		t.Errorf("current sale %v (%v), want the hourly sale %d", cur.ID, err, hourly.Sale.ID)
	}

	// The constraint itself, for anyone writing SQL by hand.
	_, err = hourly.Pool.Exec(t.Context(), `INSERT INTO sales (starts_at, ends_at, units_total, items, per_user_limit, hold_ttl)
		VALUES ($1, $2, 1, 1, 1, interval '1 minute')`, hourly.Sale.StartsAt.Add(time.Minute), hourly.Sale.EndsAt.Add(time.Minute))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.ConstraintName != "sales_no_overlap" {
		t.Errorf("overlapping insert: %v, want sales_no_overlap", err)
	}
}
