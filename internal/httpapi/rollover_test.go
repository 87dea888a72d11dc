package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// nextSale waits until /sales/current answers a sale other than cur.
func nextSale(t *testing.T, base string, cur map[string]any) map[string]any {
	t.Helper()
	var next map[string]any
	testutil.Poll(t, 10*time.Second, func() error {
		if next = apitest.GetOK(t, base+"/sales/current"); next["id"] == cur["id"] {
			return fmt.Errorf("no sale after %v: /sales/current still answers it", cur["id"])
		}
		return nil
	})
	return next
}

func TestRollover(t *testing.T) {
	t.Parallel()
	settings := sale.Settings{Duration: 2 * time.Second, Units: 20, Items: 5, PerUserLimit: 2, HoldTTL: time.Minute}
	srv := apitest.Start(t, apitest.Options{Settings: &settings})
	saletest.RunScheduler(t, srv.Sales)
	const user = "roller"
	heldIn := func(item int, saleID float64) map[string]any {
		t.Helper()
		hold := apitest.Held(t, srv.URL, user, item)
		if hold["sale_id"] != saleID {
			t.Fatalf("checkout of item %d: %v, want a hold in sale %v", item, hold, saleID)
		}
		return hold
	}
	capped := func(when string) {
		t.Helper()
		apitest.Expect(t, "third checkout "+when, apitest.Checkout(t, srv.URL, user, 5), http.StatusConflict, "user_limit_reached")
	}

	cur := apitest.GetOK(t, srv.URL+"/sales/current")
	// The steps up to the cap must happen inside one window.
	if time.Until(apitest.Time(t, cur, "ends_at")) < time.Second {
		cur = nextSale(t, srv.URL, cur)
	}
	n := cur["id"].(float64)
	toBuy := heldIn(1, n)
	kept := heldIn(2, n)
	capped("in the first sale")
	apitest.Bought(t, srv.URL, toBuy)

	next := nextSale(t, srv.URL, cur)
	if next["id"] != n+1 || next["starts_at"] != cur["ends_at"] || next["units_available"] != float64(settings.Units) {
		t.Fatalf("sale after %v: %v, want id %v starting at %v with %d units free", cur, next, n+1, cur["ends_at"], settings.Units)
	}
	sent := time.Now()
	if end := apitest.Time(t, cur, "ends_at"); !sent.After(end) {
		t.Fatalf("the next sale opened at %v, before sale %v ended at %v", sent, n, end)
	}
	// A fresh sale, a fresh cap: the unbought hold of sale N does not count.
	heldIn(1, n+1)
	heldIn(2, n+1)
	capped("in the second sale")

	sum := apitest.GetOK(t, fmt.Sprintf("%s/sales/%v", srv.URL, n+1))
	if sum["units_total"] != float64(settings.Units) || sum["units_available"] != float64(settings.Units-2) ||
		sum["units_held"] != float64(2) || sum["units_sold"] != float64(0) {
		t.Fatalf("sale %v: %v, want %d units with 2 held", n+1, sum, settings.Units)
	}
	// Its TTL, not its sale's window, bounds a hold.
	if p := apitest.Bought(t, srv.URL, kept); p["sale_id"] != n {
		t.Fatalf("purchase of the hold kept from sale %v: %v", n, p)
	}
	sum = apitest.GetOK(t, fmt.Sprintf("%s/sales/%v", srv.URL, n))
	if sum["units_sold"] != float64(2) || sum["units_held"] != float64(0) {
		t.Fatalf("sale %v: %v, want 2 units sold", n, sum)
	}

	if stray := pgtest.Scalar(t, srv.Pool, `SELECT count(*) FROM checkout_attempts a JOIN sales s ON s.id = a.sale_id
		WHERE a.created_at < s.starts_at OR a.created_at >= s.ends_at`); stray != 0 {
		t.Fatalf("%d checkout attempts landed in a sale whose window did not contain them", stray)
	}
}

func TestTwoServersCreateEachSaleOnce(t *testing.T) {
	t.Parallel()
	const callers = 20
	// Windows of 2 s: both schedulers would have to stall for a whole
	// window (the suite loads the 2 cores under -race) before one is
	// skipped, which is what the test would then report.
	settings := sale.Settings{Duration: 2 * time.Second, Units: 200, Items: 7, PerUserLimit: 2, HoldTTL: time.Minute}
	a := apitest.Start(t, apitest.Options{Settings: &settings, NoSale: true})
	b := apitest.Start(t, apitest.Options{Settings: &settings, NoSale: true, DBURL: a.DBURL})
	ctx := context.Background()

	now := time.Now()
	start := make(chan struct{})
	errs := make(chan error, 2*callers)
	var wg sync.WaitGroup
	for _, svc := range []*sale.Service{a.Sales, b.Sales} {
		for range callers {
			wg.Go(func() {
				<-start
				errs <- svc.EnsureSales(ctx, now)
			})
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("EnsureSales: %v", err)
		}
	}
	count := func() int64 {
		t.Helper()
		return pgtest.Scalar(t, a.Pool, "SELECT count(*) FROM sales")
	}
	if n := count(); n != 2 {
		t.Fatalf("%d concurrent EnsureSales made %d sales, want the current and the next", 2*callers, n)
	}

	// Both schedulers then race at every boundary; sales for two more windows
	// mean both have crossed two boundaries.
	saletest.RunScheduler(t, a.Sales, b.Sales)
	testutil.Poll(t, 20*time.Second, func() error {
		if n := count(); n < 4 {
			return fmt.Errorf("%d sales, want 4: the current and next, and two more windows", n)
		}
		return nil
	})

	rows, err := a.Pool.Query(ctx, `SELECT s.id, s.starts_at, s.ends_at, s.units_total, s.items,
			(SELECT count(*) FROM units u WHERE u.sale_id = s.id),
			(SELECT count(*) FROM items i WHERE i.sale_id = s.id),
			(SELECT count(DISTINCT item_id) FROM units u WHERE u.sale_id = s.id)
		FROM sales s ORDER BY s.starts_at`)
	if err != nil {
		t.Fatalf("list sales: %v", err)
	}
	defer rows.Close()
	var prevEnd time.Time
	for rows.Next() {
		var id, units, items, itemsWithUnits int64
		var startsAt, endsAt time.Time
		var unitsTotal, itemsTotal int32
		if err := rows.Scan(&id, &startsAt, &endsAt, &unitsTotal, &itemsTotal, &units, &items, &itemsWithUnits); err != nil {
			t.Fatalf("scan sale: %v", err)
		}
		if !prevEnd.IsZero() && !startsAt.Equal(prevEnd) {
			t.Errorf("sale %d starts at %v, the one before ends at %v: a window is missing or doubled", id, startsAt, prevEnd)
		}
		prevEnd = endsAt
		if units != int64(unitsTotal) || items != int64(itemsTotal) || itemsWithUnits != int64(itemsTotal) {
			t.Errorf("sale %d has %d units of %d items (%d with units), want %d units of %d items",
				id, units, items, itemsWithUnits, unitsTotal, itemsTotal)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("list sales: %v", err)
	}
	// Each with its one partition of attempts, however many servers raced.
	if n := pgtest.Scalar(t, a.Pool, `SELECT count(*) FROM sales s WHERE (SELECT count(*) FROM pg_inherits i
			JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = 'checkout_attempts'::regclass
			  AND pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES IN (%L)', s.id)) <> 1`); n != 0 {
		t.Errorf("%d sales without exactly one partition of checkout_attempts", n)
	}
}

func TestEnsureSaleIdempotent(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{NoSale: true})
	ctx := context.Background()
	d := apitest.DefaultSettings.Duration
	start := sale.WindowStart(time.Now(), d).Add(3 * d)

	for i, want := range []bool{true, false} {
		created, err := srv.Sales.EnsureSale(ctx, start)
		if err != nil || created != want {
			t.Fatalf("EnsureSale call %d: created %v, err %v; want created %v", i+1, created, err, want)
		}
	}
	var sales, units int64
	err := srv.Pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM sales), (SELECT count(*) FROM units)").Scan(&sales, &units)
	if err != nil || sales != 1 || units != int64(apitest.DefaultSettings.Units) {
		t.Fatalf("after two EnsureSale: %d sales, %d units (%v), want 1 sale of %d units",
			sales, units, err, apitest.DefaultSettings.Units)
	}
}
