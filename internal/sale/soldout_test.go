package sale_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
)

// While a sale is sold out the service tries the short query first; when a
// hold expires meanwhile, that query stores nothing and the batch is decided
// the full way: the freed unit is held, and every attempt stored once.
func TestSoldOutShortWayFallsBackWhenAUnitFreesUp(t *testing.T) {
	t.Parallel()
	e := saletest.New(t, saletest.WithUnits(20), saletest.WithItems(2), saletest.WithDBTimeout(time.Second))
	ctx := context.Background()
	for i := range 20 {
		saletest.Hold(t, e, fmt.Sprintf("holder-%d", i/10), int64(1+i%2))
	}
	// Sold out: this answer sets the hint, the next one takes the short way,
	// which takes no user lock: it answers while another session holds
	// late's lock (the full way would wait for it until its deadline).
	if _, err := e.Service.Checkout(ctx, sale.CheckoutRequest{UserID: "late", ItemID: 1}); !errors.Is(err, sale.ErrSoldOut) {
		t.Fatalf("checkout of a sold-out sale: %v, want ErrSoldOut", err)
	}
	release := holdUserLock(t, e, "late")
	if _, err := e.Service.Checkout(ctx, sale.CheckoutRequest{UserID: "late", ItemID: 1}); !errors.Is(err, sale.ErrSoldOut) {
		t.Fatalf("checkout of a sold-out sale while late's lock is taken: %v, want ErrSoldOut without waiting", err)
	}
	release()
	if n := saletest.ExpireHolds(t, e.Pool, e.Sale.ID); n != 20 {
		t.Fatalf("%d holds expired, want 20", n)
	}
	h, err := e.Service.Checkout(ctx, sale.CheckoutRequest{UserID: "late", ItemID: 2})
	if err != nil {
		t.Fatalf("checkout once holds expired: %v, want a hold", err)
	}
	if h.Item.ID != 2 || h.Code == "" {
		t.Fatalf("hold %+v", h)
	}
	if n := pgtest.Scalar(t, e.Pool, "SELECT count(*) FROM checkout_attempts WHERE user_id = 'late'"); n != 3 {
		t.Fatalf("%d attempts stored for late, want 3 (two sold_out, one held)", n)
	}
	if n := pgtest.Scalar(t, e.Pool, "SELECT count(*) FROM checkout_attempts WHERE user_id = 'late' AND outcome = 'held'"); n != 1 {
		t.Fatalf("%d held attempts for late, want 1", n)
	}
}

// While the sale looks sold out, a keyed checkout still goes the full way
// (its key is read under its user's lock) and a rate-limited one the short
// way; each is stored once, and a repeat of the key is replayed.
func TestSoldOutWithKeysAndRateLimits(t *testing.T) {
	t.Parallel()
	e := saletest.New(t, saletest.WithUnits(20), saletest.WithItems(2))
	ctx := context.Background()
	saletest.SellOut(t, e.Pool, e.Sale.ID)
	if _, err := e.Service.Checkout(ctx, sale.CheckoutRequest{UserID: "first", ItemID: 1}); !errors.Is(err, sale.ErrSoldOut) {
		t.Fatalf("first checkout: %v, want ErrSoldOut (sets the hint)", err)
	}
	keyed := sale.CheckoutRequest{UserID: "kim", ItemID: 1, IdempotencyKey: "k1"}
	if _, err := e.Service.Checkout(ctx, keyed); !errors.Is(err, sale.ErrSoldOut) || errors.Is(err, sale.ErrReplayed) {
		t.Fatalf("keyed checkout: %v, want a fresh ErrSoldOut", err)
	}
	if _, err := e.Service.Checkout(ctx, keyed); !errors.Is(err, sale.ErrSoldOut) || !errors.Is(err, sale.ErrReplayed) {
		t.Fatalf("its repeat: %v, want ErrSoldOut replayed", err)
	}
	limited := sale.CheckoutRequest{UserID: "kim", ItemID: 2, RateLimited: true}
	if _, err := e.Service.Checkout(ctx, limited); !errors.Is(err, sale.ErrRateLimited) {
		t.Fatalf("rate-limited checkout: %v, want ErrRateLimited", err)
	}
	if got := pgtest.Scalar(t, e.Pool, `SELECT count(*) FROM checkout_attempts WHERE user_id = 'kim'`); got != 2 {
		t.Errorf("%d attempts of kim, want 2 (sold_out, rate_limited)", got)
	}
	if got := pgtest.Scalar(t, e.Pool, `SELECT count(*) FROM idempotency_keys WHERE user_id = 'kim' AND outcome = 'sold_out'`); got != 1 {
		t.Errorf("%d kept answers, want 1", got)
	}
}

// A rate-limited checkout holds nothing even when units are free, and
// takes no user lock: it is answered while another session holds it.
func TestRateLimitedCheckoutTakesNoLock(t *testing.T) {
	t.Parallel()
	e := saletest.New(t, saletest.WithUnits(20), saletest.WithItems(2))
	release := holdUserLock(t, e, "busy")
	defer release()
	_, err := e.Service.Checkout(context.Background(), sale.CheckoutRequest{UserID: "busy", ItemID: 1, RateLimited: true})
	if !errors.Is(err, sale.ErrRateLimited) {
		t.Fatalf("rate-limited checkout while busy's lock is held: %v, want ErrRateLimited without waiting", err)
	}
	if got := pgtest.Scalar(t, e.Pool, `SELECT count(*) FROM checkout_attempts WHERE user_id = 'busy' AND outcome = 'rate_limited' AND sale_id = $1`, e.Sale.ID); got != 1 {
		t.Errorf("%d rate_limited attempts, want 1", got)
	}
	if got := pgtest.Scalar(t, e.Pool, `SELECT count(*) FROM units WHERE held_by = 'busy'`); got != 0 {
		t.Errorf("%d units held by busy, want 0", got)
	}
}
