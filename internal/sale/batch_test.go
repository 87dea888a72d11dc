package sale_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/saletest"
)

// A checkout whose caller gave up while it waited in the queue must never
// run: its caller was answered 503, so a hold made for it would lock a unit
// nobody has the code of. One connection, so one batch at a time; a
// session outside the service holds u1's lock so that u1's batch runs
// while u2 waits in the queue.
func TestAbandonedCheckoutNeverRuns(t *testing.T) {
	t.Parallel()
	e := saletest.New(t, saletest.WithPoolSize(1))
	url, pool, sales := e.URL, e.Pool, e.Service
	ctx := context.Background()

	blocker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close(ctx)
	tx, err := blocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(1, hashtext('u1'))"); err != nil {
		t.Fatal(err)
	}

	u1 := make(chan error, 1)
	go func() {
		_, err := sales.Checkout(ctx, "u1", 1)
		u1 <- err
	}()
	// u1's batch is running once its connection waits for the lock (seen
	// from a third connection: the service's only one is busy).
	observer, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close(ctx)
	apitest.Poll(t, 5*time.Second, func() error {
		var n int
		err := observer.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory'").Scan(&n)
		if err == nil && n != 1 {
			err = errors.New("u1's batch is not waiting for its lock yet")
		}
		return err
	})

	// u2's client goes away (a cancellation, not a deadline: the batch
	// would otherwise inherit the deadline and be cancelled too).
	gone, cancel := context.WithCancel(ctx)
	stop := time.AfterFunc(200*time.Millisecond, cancel)
	defer stop.Stop()
	if _, err := sales.Checkout(gone, "u2", 2); !errors.Is(err, sale.ErrUnavailable) {
		t.Fatalf("u2 gave up while queued: got %v, want ErrUnavailable", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-u1; err != nil {
		t.Fatalf("u1: %v", err)
	}
	// Anything still queued runs before this one.
	if _, err := sales.Checkout(ctx, "u3", 3); err != nil {
		t.Fatalf("u3: %v", err)
	}
	if n := apitest.Scalar(t, pool, "SELECT count(*) FROM checkout_attempts WHERE user_id = 'u2'"); n != 0 {
		t.Fatalf("u2's abandoned checkout was stored (%d attempts)", n)
	}
	if n := apitest.Scalar(t, pool, "SELECT count(*) FROM units WHERE held_by IS NOT NULL"); n != 2 {
		t.Fatalf("%d units held, want 2 (u1 and u3)", n)
	}
}
