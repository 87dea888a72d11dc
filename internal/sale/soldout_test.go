package sale_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/saletest"
	"github.com/flashsale/flashsale/internal/testfactory"
)

// While a sale is sold out the service tries the short query first; when a
// hold expires meanwhile, that query stores nothing and the batch is decided
// the full way: the freed unit is held, and every attempt stored once.
func TestSoldOutShortWayFallsBackWhenAUnitFreesUp(t *testing.T) {
	t.Parallel()
	e := saletest.New(t, saletest.WithUnits(20), saletest.WithItems(2), saletest.WithDBTimeout(time.Second))
	ctx := context.Background()
	for i := range 20 {
		testfactory.Hold(t, e, fmt.Sprintf("holder-%d", i/10), int64(1+i%2))
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
	if n := testfactory.ExpireHolds(t, e.Pool, e.Sale.ID); n != 20 {
		t.Fatalf("%d holds expired, want 20", n)
	}
	h, err := e.Service.Checkout(ctx, sale.CheckoutRequest{UserID: "late", ItemID: 2})
	if err != nil {
		t.Fatalf("checkout once holds expired: %v, want a hold", err)
	}
	if h.Item.ID != 2 || h.Code == "" {
		t.Fatalf("hold %+v", h)
	}
	if n := apitest.Scalar(t, e.Pool, "SELECT count(*) FROM checkout_attempts WHERE user_id = 'late'"); n != 3 {
		t.Fatalf("%d attempts stored for late, want 3 (two sold_out, one held)", n)
	}
	if n := apitest.Scalar(t, e.Pool, "SELECT count(*) FROM checkout_attempts WHERE user_id = 'late' AND outcome = 'held'"); n != 1 {
		t.Fatalf("%d held attempts for late, want 1", n)
	}
}
