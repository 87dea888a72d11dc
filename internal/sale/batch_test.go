package sale_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
)

// A checkout whose caller gave up while it waited in the queue must never
// run: its caller was answered 503, so a hold made for it would lock a unit
// nobody has the code of. One connection, so one batch at a time; a
// session outside the service holds u1's lock so that u1's batch runs
// while u2 waits in the queue.
func TestAbandonedCheckoutNeverRuns(t *testing.T) {
	t.Parallel()
	e := saletest.New(t, saletest.WithPoolSize(1))
	pool, sales := e.Pool, e.Service
	ctx := context.Background()
	release := holdUserLock(t, e, "u1")

	u1 := make(chan error, 1)
	go func() {
		_, err := sales.Checkout(ctx, sale.CheckoutRequest{UserID: "u1", ItemID: 1})
		u1 <- err
	}()
	// u1's batch is running once its connection waits for the lock (seen
	// from a third connection: the service's only one is busy).
	pgtest.WaitingForLock(t, pgtest.Connect(t, e.URL), 0)

	// u2's client goes away (a cancellation, not a deadline: the batch
	// would otherwise inherit the deadline and be cancelled too).
	gone, cancel := context.WithCancel(ctx)
	stop := time.AfterFunc(200*time.Millisecond, cancel)
	defer stop.Stop()
	if _, err := sales.Checkout(gone, sale.CheckoutRequest{UserID: "u2", ItemID: 2}); !errors.Is(err, sale.ErrUnavailable) {
		t.Fatalf("u2 gave up while queued: got %v, want ErrUnavailable", err)
	}
	release()
	if err := <-u1; err != nil {
		t.Fatalf("u1: %v", err)
	}
	// Anything still queued runs before this one.
	if _, err := sales.Checkout(ctx, sale.CheckoutRequest{UserID: "u3", ItemID: 3}); err != nil {
		t.Fatalf("u3: %v", err)
	}
	if n := pgtest.Scalar(t, pool, "SELECT count(*) FROM checkout_attempts WHERE user_id = 'u2'"); n != 0 {
		t.Fatalf("u2's abandoned checkout was stored (%d attempts)", n)
	}
	if n := pgtest.Scalar(t, pool, "SELECT count(*) FROM units WHERE held_by IS NOT NULL"); n != 2 {
		t.Fatalf("%d units held, want 2 (u1 and u3)", n)
	}
}
