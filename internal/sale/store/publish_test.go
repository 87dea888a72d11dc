package store_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/db"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// TestSaleStartedComesFirst: a sale's first event is its start, even when
// the sale starts, and is bought from, between the moment a publisher's
// transaction begins (its now()) and the moment its publishing statement
// takes its snapshot. The publisher's turn is replayed statement by
// statement (what PublishEvents sends: EventsPublishLock, EventsPublish)
// with the purchase made in between.
func TestSaleStartedComesFirst(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{NoSale: true})
	ctx := context.Background()
	q := db.New()

	tx, err := srv.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var began time.Time
	if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&began); err != nil {
		t.Fatal(err)
	}
	// A sale starting just after the publisher's transaction began.
	if _, err := srv.Sales.EnsureSale(ctx, began.Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var hold apitest.Reply
	testutil.Poll(t, 5*time.Second, func() error {
		hold = apitest.Checkout(t, srv.URL, "early-bird", 1)
		if hold.Status != http.StatusCreated {
			return fmt.Errorf("checkout: %d %s", hold.Status, hold.Raw)
		}
		return nil
	})
	apitest.Bought(t, srv.URL, hold.Body)

	if locked, err := q.EventsPublishLock(ctx, tx); err != nil || !locked {
		t.Fatalf("publisher's lock: %v, %v", locked, err)
	}
	if _, err := q.EventsPublish(ctx, tx, db.EventsPublishParams{MaxEvents: 5000, Lookback: 25 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// The next turn, as a server runs it.
	if _, err := srv.Sales.PublishEvents(ctx, sale.Publish{Max: 5000, Lookback: 25 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	rows, err := srv.Pool.Query(ctx, `SELECT type::text FROM events ORDER BY sale_id, sequence`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"sale.started", "purchase.completed"}) {
		t.Errorf("events in sequence order %v, want the sale's start before its purchase", got)
	}
}
