package sale_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
)

// When PostgreSQL kills the connection a batch runs on, before its COMMIT
// took effect, nothing was stored: the batch is retried once on another
// connection and its callers never see the failure.
func TestBatchOnKilledConnectionIsRetried(t *testing.T) {
	t.Parallel()
	e := saletest.New(t, saletest.WithPoolSize(1))
	ctx := context.Background()
	observer := pgtest.Connect(t, e.URL)
	release := holdUserLock(t, e, "kim")

	done := make(chan error, 1)
	var hold sale.Hold
	go func() {
		var err error
		hold, err = e.Service.Checkout(ctx, sale.CheckoutRequest{UserID: "kim", ItemID: 1})
		done <- err
	}()
	first := pgtest.WaitingForLock(t, observer, 0)
	var killed bool
	if err := observer.QueryRow(ctx, "SELECT pg_terminate_backend($1)", first).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate backend %d: %v %v", first, killed, err)
	}
	// The retry waits for the same lock on a new connection.
	if second := pgtest.WaitingForLock(t, observer, first); second == first {
		t.Fatalf("retry on the killed backend %d", first)
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("checkout on a killed connection: %v, want its retry to succeed", err)
	}
	if n := pgtest.Scalar(t, e.Pool, "SELECT count(*) FROM checkout_attempts WHERE user_id = 'kim' AND outcome = 'held'"); n != 1 {
		t.Fatalf("%d held attempts stored for kim, want 1", n)
	}

	// An idle connection killed between batches: the next batch, a
	// purchase, meets the dead connection first and is retried as well.
	var pid int32
	if err := observer.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`).Scan(&pid); err != nil {
		t.Fatalf("find the service's connection: %v", err)
	}
	if _, err := observer.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	p, err := e.Service.Purchase(ctx, hold.Code, "")
	if err != nil {
		t.Fatalf("purchase after its connection was killed: %v, want its retry to succeed", err)
	}
	if p.UserPurchases != 1 || p.UserID != "kim" {
		t.Fatalf("purchase: %+v", p)
	}
	if n := pgtest.Scalar(t, e.Pool, "SELECT count(*) FROM purchases WHERE user_id = 'kim'"); n != 1 {
		t.Fatalf("%d purchases stored for kim, want 1", n)
	}
}

// A batch still waiting at its deadline is cancelled and rolled back: the
// caller gets ErrUnavailable and nothing of the request is stored.
func TestBatchPastItsDeadlineStoresNothing(t *testing.T) {
	t.Parallel()
	e := saletest.New(t, saletest.WithPoolSize(2), saletest.WithDBTimeout(300*time.Millisecond))
	release := holdUserLock(t, e, "lee")
	_, err := e.Service.Checkout(context.Background(), sale.CheckoutRequest{UserID: "lee", ItemID: 1})
	release()
	if !errors.Is(err, sale.ErrUnavailable) || errors.Is(err, sale.ErrOutcomeUnknown) {
		t.Fatalf("checkout waiting past its deadline: %v, want ErrUnavailable with nothing stored", err)
	}
	if n := pgtest.Scalar(t, e.Pool, "SELECT count(*) FROM checkout_attempts WHERE user_id = 'lee'"); n != 0 {
		t.Fatalf("%d attempts stored for a checkout answered unavailable", n)
	}
	if n := pgtest.Scalar(t, e.Pool, "SELECT count(*) FROM units WHERE held_by = 'lee'"); n != 0 {
		t.Fatalf("%d units held for a checkout answered unavailable", n)
	}
	if _, err := e.Service.Checkout(context.Background(), sale.CheckoutRequest{UserID: "lee", ItemID: 1}); err != nil {
		t.Fatalf("checkout once the lock is free: %v", err)
	}
}

// Deadlines that land anywhere in a batch's life (queued, sending, waiting,
// committing) never make an answer lie: a checkout answered with a hold is
// stored, and one answered ErrUnavailable (other than ErrOutcomeUnknown) is
// not.
func TestAnswersMatchWhatWasStoredAtAnyDeadline(t *testing.T) {
	t.Parallel()
	e := saletest.New(t, saletest.WithPoolSize(4), saletest.WithDBTimeout(time.Second))
	// Every connection of the pool opened and its statements prepared, as
	// on a server that has been serving for a while.
	var warm sync.WaitGroup
	for i := range 16 {
		warm.Go(func() {
			if _, err := e.Service.Checkout(context.Background(), sale.CheckoutRequest{UserID: fmt.Sprintf("warm-%d", i), ItemID: 1}); err != nil && !errors.Is(err, sale.ErrItemUnavailable) {
				t.Error(err)
			}
		})
	}
	warm.Wait()
	// Rounds of concurrent checkouts sharing one deadline, from shorter
	// than a batch to longer: a batch's deadline is its earliest caller's,
	// so a shared one lands at every point of a batch's life.
	const perRound = 80
	deadlines := []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 5 * time.Millisecond,
		8 * time.Millisecond, 12 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}
	n := perRound * len(deadlines)
	errs := make([]error, n)
	for r, d := range deadlines {
		var wg sync.WaitGroup
		for j := range perRound {
			i := r*perRound + j
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), d)
				defer cancel()
				_, errs[i] = e.Service.Checkout(ctx, sale.CheckoutRequest{UserID: fmt.Sprintf("edge-%d", i), ItemID: int64(1 + i%30)})
			})
		}
		wg.Wait()
	}
	rows, err := e.Pool.Query(context.Background(), "SELECT user_id, outcome::text FROM checkout_attempts WHERE user_id LIKE 'edge-%'")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]string{}
	for rows.Next() {
		var user, outcome string
		if err := rows.Scan(&user, &outcome); err != nil {
			t.Fatal(err)
		}
		stored[user] = outcome
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	var held, refused, unavailable, unknown int
	for i, err := range errs {
		user := fmt.Sprintf("edge-%d", i)
		outcome, ok := stored[user]
		switch {
		case errors.Is(err, sale.ErrOutcomeUnknown):
			unknown++
		case errors.Is(err, sale.ErrUnavailable):
			unavailable++
			if ok {
				t.Errorf("%s answered unavailable (%v) but stored as %s", user, err, outcome)
			}
		case err == nil:
			held++
			if outcome != "held" {
				t.Errorf("%s answered with a hold but stored as %q", user, outcome)
			}
		default:
			refused++
			if !ok {
				t.Errorf("%s answered %v but not stored", user, err)
			}
		}
	}
	t.Logf("%d held, %d refused, %d unavailable with nothing stored, %d outcome unknown", held, refused, unavailable, unknown)
	if held+refused+unavailable+unknown != n {
		t.Fatalf("answers counted %d, want %d", held+refused+unavailable+unknown, n)
	}
}
