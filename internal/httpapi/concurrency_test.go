package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testserver"
)

// stableSale returns s with a week-long window: per-sale counts would be
// wrong if a request straddled a window boundary and landed in the next sale.
func stableSale(s sale.Settings) *sale.Settings {
	s.Duration = 7 * 24 * time.Hour
	return &s
}

// fetch is post for goroutines other than the test's: it returns errors,
// because t.Fatal may only be called from the test goroutine.
func fetch(client *http.Client, method, target string) (int, map[string]any, error) {
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: decode: %w", method, target, err)
	}
	return resp.StatusCode, out, nil
}

// loadClient keeps up to conns connections open, so a burst of requests
// reuses them instead of opening (and leaving in TIME_WAIT) one per request.
func loadClient(t *testing.T, conns int) *http.Client {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

func checkoutURL(base, user string, item int) string {
	return fmt.Sprintf("%s/checkout?user_id=%s&id=%d", base, url.QueryEscape(user), item)
}

func purchaseURL(base, code string) string { return base + "/purchase?code=" + url.QueryEscape(code) }

func checkout(t *testing.T, base, user string, item int) (int, map[string]any) {
	t.Helper()
	return post(t, checkoutURL(base, user, item), "", "")
}

func purchase(t *testing.T, base string, hold map[string]any) (int, map[string]any) {
	t.Helper()
	code, _ := hold["code"].(string)
	return post(t, purchaseURL(base, code), "", "")
}

func errorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// expect fails the test unless the answer has status want and, for an
// error answer, error code wantCode.
func expect(t *testing.T, what string, status int, body map[string]any, want int, wantCode string) {
	t.Helper()
	if status != want || errorCode(body) != wantCode {
		t.Fatalf("%s: got %d %v, want %d %q", what, status, body, want, wantCode)
	}
}

func scalar(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func currentSaleID(t *testing.T, base string) float64 {
	t.Helper()
	status, body, err := fetch(http.DefaultClient, http.MethodGet, base+"/sales/current")
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /sales/current: %d %v %v", status, body, err)
	}
	return body["id"].(float64)
}

// together runs f(i) for i in [0, n) on the given number of workers, all
// released at once, and returns when every call has returned.
func together(workers, n int, f func(i int)) {
	var next atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			<-start
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		})
	}
	close(start)
	wg.Wait()
}

// refusals are the only answers a well-formed checkout may get besides 201.
var refusals = map[string]bool{"sold_out": true, "item_unavailable": true, "user_limit_reached": true}

func TestConcurrentCheckoutsNeverOversell(t *testing.T) {
	t.Parallel()
	const (
		units, items, limit = 300, 30, 10
		users, perUser      = 60, 20
		workers             = 200
	)
	srv := testserver.Start(t, testserver.Options{Settings: stableSale(sale.Settings{
		Units: units, Items: items, PerUserLimit: limit, HoldTTL: 10 * time.Minute,
	})})
	saleID := currentSaleID(t, srv.URL)
	client := loadClient(t, workers)

	// Request j of user u asks for item (u+j)%30+1, so each item is wanted by
	// 40 distinct users. An item can keep a free unit only if all 40 were at
	// the cap, i.e. owned 400 of the 300 units: so every unit must sell.
	// Requests go out user by user, so the first users race their own cap.
	type request struct {
		user string
		item int
	}
	var reqs []request
	for u := range users {
		for j := range perUser {
			reqs = append(reqs, request{fmt.Sprintf("user-%02d", u), (u+j)%items + 1})
		}
	}
	type result struct {
		status, bought int
		body           map[string]any
		err            error
	}
	results := make([]result, len(reqs))
	together(workers, len(reqs), func(i int) {
		r := &results[i]
		r.status, r.body, r.err = fetch(client, http.MethodPost, checkoutURL(srv.URL, reqs[i].user, reqs[i].item))
		if r.err == nil && r.status == http.StatusCreated {
			var bought map[string]any
			code, _ := r.body["code"].(string)
			r.bought, bought, r.err = fetch(client, http.MethodPost, purchaseURL(srv.URL, code))
			if r.err == nil && r.bought != http.StatusOK {
				r.err = fmt.Errorf("purchase of a fresh hold: %d %v", r.bought, bought)
			}
		}
	})

	created := int64(0)
	refused := map[string]int{}
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Fatalf("request %d (%+v): %v", i, reqs[i], r.err)
		case r.status == http.StatusCreated:
			created++
			if r.body["sale_id"] != saleID {
				t.Fatalf("hold in sale %v, want %v", r.body["sale_id"], saleID)
			}
		case r.status == http.StatusConflict && refusals[errorCode(r.body)]:
			refused[errorCode(r.body)]++
		default:
			t.Fatalf("request %d (%+v): %d %v, want 201 or 409 %v", i, reqs[i], r.status, r.body, refusals)
		}
	}
	t.Logf("%d checkouts: %d held and bought, refused %v", len(reqs), created, refused)

	checks := []struct {
		what string
		sql  string
		want int64
	}{
		{"purchases", "SELECT count(*) FROM purchases WHERE sale_id = $1", units},
		{"users above the cap", `SELECT count(*) FROM (SELECT user_id FROM purchases WHERE sale_id = $1
			GROUP BY user_id HAVING count(*) > 10) over_cap`, 0},
		{"units sold twice", "SELECT count(*) - count(DISTINCT unit_id) FROM purchases WHERE sale_id = $1", 0},
		{"codes sold twice", "SELECT count(*) - count(DISTINCT code) FROM purchases WHERE sale_id = $1", 0},
		{"unsold units", "SELECT count(*) FROM units WHERE sale_id = $1 AND sold_at IS NULL", 0},
		{"units sold without a purchase row", `SELECT count(*) FROM units u WHERE u.sale_id = $1 AND u.sold_at IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM purchases p WHERE p.unit_id = u.id)`, 0},
		{"checkout attempts", "SELECT count(*) FROM checkout_attempts WHERE sale_id = $1", int64(len(reqs))},
		{"attempts outside the sale", "SELECT count(*) FROM checkout_attempts WHERE sale_id IS DISTINCT FROM $1", 0},
		{"holds (201 answers)", "SELECT count(*) FROM checkout_attempts WHERE sale_id = $1 AND outcome = 'held'", created},
		{"summary: units sold", "SELECT units_sold FROM sale_summary WHERE id = $1", units},
		{"summary: units held", "SELECT units_held FROM sale_summary WHERE id = $1", 0},
		{"summary: units available", "SELECT units_available FROM sale_summary WHERE id = $1", 0},
		{"summary: attempts", "SELECT checkout_attempts FROM sale_summary WHERE id = $1", int64(len(reqs))},
	}
	for _, c := range checks {
		if got := scalar(t, srv.Pool, c.sql, int64(saleID)); got != c.want {
			t.Errorf("%s: %d, want %d", c.what, got, c.want)
		}
	}
	if refused["user_limit_reached"] == 0 {
		t.Errorf("no checkout was refused for the cap, so the race against it was not exercised")
	}
	if created != units {
		t.Errorf("%d holds were answered 201 and bought, want %d", created, units)
	}
	if got := scalar(t, srv.Pool, "SELECT max_units_per_user FROM sale_summary WHERE id = $1", int64(saleID)); got > limit {
		t.Errorf("summary: max_units_per_user %d, want <= %d", got, limit)
	}
}

func TestRacingPurchasesOfOneCode(t *testing.T) {
	t.Parallel()
	const racers = 20
	srv := testserver.Start(t, testserver.Options{Settings: stableSale(testserver.DefaultSettings)})
	status, hold := checkout(t, srv.URL, "racer", 3)
	expect(t, "checkout", status, hold, http.StatusCreated, "")

	client := loadClient(t, racers)
	code, _ := hold["code"].(string)
	type result struct {
		status int
		body   map[string]any
		err    error
	}
	results := make([]result, racers)
	together(racers, racers, func(i int) {
		results[i].status, results[i].body, results[i].err = fetch(client, http.MethodPost, purchaseURL(srv.URL, code))
	})

	first := results[0].body["purchase_id"]
	for i, r := range results {
		if r.err != nil || r.status != http.StatusOK {
			t.Fatalf("purchase %d: %d %v %v", i, r.status, r.body, r.err)
		}
		if r.body["purchase_id"] != first || first == nil || r.body["user_purchases"] != float64(1) {
			t.Fatalf("purchase %d answered %v; purchase 0 answered purchase_id %v", i, r.body, first)
		}
	}
	if n := scalar(t, srv.Pool, "SELECT count(*) FROM purchases WHERE code = $1", code); n != 1 {
		t.Fatalf("%d purchase rows for one code, want 1", n)
	}
	if n := scalar(t, srv.Pool, "SELECT count(*) FROM units WHERE sold_at IS NOT NULL"); n != 1 {
		t.Fatalf("%d units sold, want 1", n)
	}
}

func TestUserCapPerSale(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, testserver.Options{Settings: stableSale(testserver.DefaultSettings)})
	limit := testserver.DefaultSettings.PerUserLimit

	var holds []map[string]any
	for item := 1; item <= limit; item++ {
		status, hold := checkout(t, srv.URL, "greedy", item)
		expect(t, fmt.Sprintf("checkout %d of %d", item, limit), status, hold, http.StatusCreated, "")
		holds = append(holds, hold)
	}
	// Item limit+1 has free units: only the cap can refuse it.
	overCap := func(when string) {
		t.Helper()
		status, body := checkout(t, srv.URL, "greedy", limit+1)
		expect(t, "checkout over the cap "+when, status, body, http.StatusConflict, "user_limit_reached")
	}
	overCap("with every unit held")

	// Purchases count against the cap as the holds they replace did.
	for i, hold := range holds {
		status, body := purchase(t, srv.URL, hold)
		expect(t, fmt.Sprintf("purchase %d", i+1), status, body, http.StatusOK, "")
		if body["user_purchases"] != float64(i+1) {
			t.Fatalf("purchase %d: user_purchases %v", i+1, body["user_purchases"])
		}
		if i == limit/2 {
			overCap("with units both held and bought")
		}
	}
	overCap("with every unit bought")

	status, body := checkout(t, srv.URL, "someone-else", limit+1)
	expect(t, "another user's checkout", status, body, http.StatusCreated, "")
	if n := scalar(t, srv.Pool, "SELECT count(*) FROM purchases WHERE user_id = 'greedy'"); n != int64(limit) {
		t.Fatalf("greedy owns %d units, want %d", n, limit)
	}
}
