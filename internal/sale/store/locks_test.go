package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/flashsale/flashsale/db"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
)

// A sale that another server creates between a batch's lock statement and
// its decision (first start-up, a missed boundary) must not let a user past
// the cap: the user locks do not depend on the sale. Two checkout batches
// of one user, statement by statement as tx.go sends them.
func TestCapHoldsWhenTheSaleAppearsBetweenStatements(t *testing.T) {
	t.Parallel()
	e := saletest.New(t, saletest.WithoutSales(), saletest.WithPerUserLimit(1))
	ctx := context.Background()
	q := db.New()
	observer := pgtest.Connect(t, e.URL)
	tx0, err := pgtest.Connect(t, e.URL).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx1, err := pgtest.Connect(t, e.URL).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	users := []string{"mallory"}
	decide := func(tx db.DBTX, item int64, code string) db.CheckoutOutcome {
		t.Helper()
		rows, err := q.CheckoutsDecide(ctx, tx, db.CheckoutsDecideParams{UserIDs: users, ItemIDs: []int64{item}, Codes: []string{code}})
		if err != nil || len(rows) != 1 {
			t.Fatalf("decide: %v %v", rows, err)
		}
		return rows[0].Outcome
	}

	if _, err := q.UserLocksTakeForCheckout(ctx, tx0, users); err != nil {
		t.Fatal(err)
	}
	// No sale when the first batch took its locks; there is one now.
	var now time.Time
	if err := e.Pool.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		t.Fatal(err)
	}
	if err := e.Service.EnsureSales(ctx, now); err != nil {
		t.Fatal(err)
	}
	if o := decide(tx0, 1, "code-first-batch"); o != db.CheckoutOutcomeHeld {
		t.Fatalf("first batch: %s, want held", o)
	}
	locked := make(chan error, 1)
	go func() {
		_, err := q.UserLocksTakeForCheckout(ctx, tx1, users)
		locked <- err
	}()
	pgtest.WaitingForLock(t, observer, 0)
	if err := tx0.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-locked; err != nil {
		t.Fatal(err)
	}
	if o := decide(tx1, 2, "code-second-batch"); o != db.CheckoutOutcomeUserLimitReached {
		t.Fatalf("second batch: %s, want user_limit_reached", o)
	}
	if err := tx1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := pgtest.Scalar(t, e.Pool, "SELECT count(*) FROM units WHERE held_by = 'mallory'"); n != 1 {
		t.Fatalf("mallory holds %d units with a cap of 1", n)
	}
}
