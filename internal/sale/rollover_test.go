package sale_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testserver"
)

// call sends a request without a body and decodes the JSON answer.
func call(t *testing.T, method, url string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: decode: %v", method, url, err)
	}
	return resp.StatusCode, out
}

// mustCall is call for requests that must answer want.
func mustCall(t *testing.T, method, url string, want int) map[string]any {
	t.Helper()
	status, body := call(t, method, url)
	if status != want {
		t.Fatalf("%s %s: %d %v, want %d", method, url, status, body, want)
	}
	return body
}

func timeField(t *testing.T, body map[string]any, name string) time.Time {
	t.Helper()
	s, _ := body[name].(string)
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%s %q: %v", name, s, err)
	}
	return v
}

// runScheduler runs every service's scheduler until the test ends, and
// waits for each to return before the test's pools close.
func runScheduler(t *testing.T, services ...*sale.Service) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range services {
		wg.Go(func() { s.RunScheduler(ctx) })
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// pollUntil calls done every few milliseconds until it reports true, and
// fails the test if that takes longer than limit.
func pollUntil(t *testing.T, limit time.Duration, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s", what, limit)
		}
		<-tick.C
	}
}

// nextSale waits until /sales/current answers a sale other than cur.
func nextSale(t *testing.T, base string, cur map[string]any) map[string]any {
	t.Helper()
	var next map[string]any
	pollUntil(t, 10*time.Second, fmt.Sprintf("sale after %v", cur["id"]), func() bool {
		next = mustCall(t, http.MethodGet, base+"/sales/current", http.StatusOK)
		return next["id"] != cur["id"]
	})
	return next
}

func TestRollover(t *testing.T) {
	t.Parallel()
	settings := sale.Settings{Duration: 2 * time.Second, Units: 20, Items: 5, PerUserLimit: 2, HoldTTL: time.Minute}
	srv := testserver.Start(t, testserver.Options{Settings: &settings})
	runScheduler(t, srv.Sales)
	checkout := func(item int) (int, map[string]any) {
		t.Helper()
		return call(t, http.MethodPost, fmt.Sprintf("%s/checkout?user_id=roller&id=%d", srv.URL, item))
	}
	mustCheckout := func(item int, saleID float64) map[string]any {
		t.Helper()
		status, hold := checkout(item)
		if status != http.StatusCreated || hold["sale_id"] != saleID {
			t.Fatalf("checkout of item %d: %d %v, want 201 in sale %v", item, status, hold, saleID)
		}
		return hold
	}
	purchase := func(hold map[string]any) map[string]any {
		t.Helper()
		return mustCall(t, http.MethodPost, srv.URL+"/purchase?code="+hold["code"].(string), http.StatusOK)
	}
	capped := func(when string) {
		t.Helper()
		status, body := checkout(5)
		if e, _ := body["error"].(map[string]any); status != http.StatusConflict || e["code"] != "user_limit_reached" {
			t.Fatalf("third checkout %s: %d %v, want 409 user_limit_reached", when, status, body)
		}
	}

	cur := mustCall(t, http.MethodGet, srv.URL+"/sales/current", http.StatusOK)
	// The steps up to the cap must happen inside one window.
	if time.Until(timeField(t, cur, "ends_at")) < time.Second {
		cur = nextSale(t, srv.URL, cur)
	}
	n := cur["id"].(float64)
	bought := mustCheckout(1, n)
	kept := mustCheckout(2, n)
	capped("in the first sale")
	purchase(bought)

	next := nextSale(t, srv.URL, cur)
	if next["id"] != n+1 || next["starts_at"] != cur["ends_at"] || next["units_available"] != float64(settings.Units) {
		t.Fatalf("sale after %v: %v, want id %v starting at %v with %d units free", cur, next, n+1, cur["ends_at"], settings.Units)
	}
	sent := time.Now()
	if end := timeField(t, cur, "ends_at"); !sent.After(end) {
		t.Fatalf("the next sale opened at %v, before sale %v ended at %v", sent, n, end)
	}
	// A fresh sale, a fresh cap: the unbought hold of sale N does not count.
	mustCheckout(1, n+1)
	mustCheckout(2, n+1)
	capped("in the second sale")

	sum := mustCall(t, http.MethodGet, fmt.Sprintf("%s/sales/%v", srv.URL, n+1), http.StatusOK)
	if sum["units_total"] != float64(settings.Units) || sum["units_available"] != float64(settings.Units-2) ||
		sum["units_held"] != float64(2) || sum["units_sold"] != float64(0) {
		t.Fatalf("sale %v: %v, want %d units with 2 held", n+1, sum, settings.Units)
	}
	// Its TTL, not its sale's window, bounds a hold.
	if p := purchase(kept); p["sale_id"] != n {
		t.Fatalf("purchase of the hold kept from sale %v: %v", n, p)
	}
	sum = mustCall(t, http.MethodGet, fmt.Sprintf("%s/sales/%v", srv.URL, n), http.StatusOK)
	if sum["units_sold"] != float64(2) || sum["units_held"] != float64(0) {
		t.Fatalf("sale %v: %v, want 2 units sold", n, sum)
	}

	var stray int64
	err := srv.Pool.QueryRow(context.Background(), `SELECT count(*) FROM checkout_attempts a JOIN sales s ON s.id = a.sale_id
		WHERE a.created_at < s.starts_at OR a.created_at >= s.ends_at`).Scan(&stray)
	if err != nil || stray != 0 {
		t.Fatalf("%d checkout attempts landed in a sale whose window did not contain them (%v)", stray, err)
	}
}

func TestTwoServersCreateEachSaleOnce(t *testing.T) {
	t.Parallel()
	const callers = 20
	settings := sale.Settings{Duration: time.Second, Units: 200, Items: 7, PerUserLimit: 2, HoldTTL: time.Minute}
	a := testserver.Start(t, testserver.Options{Settings: &settings, NoSale: true})
	b := testserver.Start(t, testserver.Options{Settings: &settings, NoSale: true, DBURL: a.DBURL})
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
	count := func() (n int64) {
		t.Helper()
		if err := a.Pool.QueryRow(ctx, "SELECT count(*) FROM sales").Scan(&n); err != nil {
			t.Fatalf("count sales: %v", err)
		}
		return n
	}
	if n := count(); n != 2 {
		t.Fatalf("%d concurrent EnsureSales made %d sales, want the current and the next", 2*callers, n)
	}

	// Both schedulers then race at every boundary; sales for two more windows
	// mean both have crossed two boundaries.
	runScheduler(t, a.Sales, b.Sales)
	pollUntil(t, 10*time.Second, "sales for two more windows", func() bool { return count() >= 4 })

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
}

func TestEnsureSaleIdempotent(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, testserver.Options{NoSale: true})
	ctx := context.Background()
	d := testserver.DefaultSettings.Duration
	start := sale.WindowStart(time.Now(), d).Add(3 * d)

	for i, want := range []bool{true, false} {
		created, err := srv.Sales.EnsureSale(ctx, start)
		if err != nil || created != want {
			t.Fatalf("EnsureSale call %d: created %v, err %v; want created %v", i+1, created, err, want)
		}
	}
	var sales, units int64
	err := srv.Pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM sales), (SELECT count(*) FROM units)").Scan(&sales, &units)
	if err != nil || sales != 1 || units != int64(testserver.DefaultSettings.Units) {
		t.Fatalf("after two EnsureSale: %d sales, %d units (%v), want 1 sale of %d units",
			sales, units, err, testserver.DefaultSettings.Units)
	}
}
