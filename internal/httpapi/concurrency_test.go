package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// loadClient keeps up to conns connections open, so a burst of requests
// reuses them instead of opening (and leaving in TIME_WAIT) one per request.

// stressDBTimeout bounds the database calls of the tests that pile
// hundreds of requests on a few users: they check invariants under
// contention, not latency (the outage tests do), and on a busy 2-core box
// running the whole suite one user's serialised batches can pass the
// default 2s.
const stressDBTimeout = 10 * time.Second

// startLoaded starts a server for a race test, with a week-long sale of s
// and a database timeout long enough for hundreds of racing requests, and
// returns it, its sale and a client of conns connections.
func startLoaded(t *testing.T, s sale.Settings, conns int) (*apitest.Server, int64, *http.Client) {
	t.Helper()
	opts := apitest.WeekLong(s)
	opts.DBTimeout = stressDBTimeout
	srv := apitest.Start(t, opts)
	return srv, apitest.CurrentSaleID(t, srv.URL), loadClient(t, conns)
}

func loadClient(t *testing.T, conns int) *http.Client {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
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
	srv, saleID, client := startLoaded(t, sale.Settings{Units: units, Items: items, PerUserLimit: limit, HoldTTL: 10 * time.Minute}, workers)

	// Request j of user u asks for item (u+j)%30+1, so each item is wanted by
	// 40 distinct users. An item can keep a free unit only if all 40 were at
	// the cap, i.e. owned 400 of the 300 units: so every unit must sell.
	// Requests go out user by user, so the first users race their own cap.
	reqs := testutil.SpreadDemand("user", users, perUser, items)
	type result struct {
		checkout, purchase apitest.Reply
		err                error
	}
	results := make([]result, len(reqs))
	testutil.Together(workers, len(reqs), func(i int) {
		r := &results[i]
		r.checkout, r.err = apitest.Send(client, http.MethodPost, apitest.CheckoutURL(srv.URL, reqs[i].User, int(reqs[i].Item)), "", nil)
		if r.err == nil && r.checkout.Status == http.StatusCreated {
			code, _ := r.checkout.Body["code"].(string)
			r.purchase, r.err = apitest.Send(client, http.MethodPost, apitest.PurchaseURL(srv.URL, code), "", nil)
		}
	})

	created := int64(0)
	refused := map[string]int{}
	for i, r := range results {
		what := fmt.Sprintf("request %d (%+v)", i, reqs[i])
		switch code := apitest.ErrorCode(r.checkout.Body); {
		case r.err != nil:
			t.Fatalf("%s: %v", what, r.err)
		case r.checkout.Status == http.StatusCreated:
			created++
			apitest.Expect(t, what+": checkout", r.checkout, http.StatusCreated, "")
			apitest.Expect(t, what+": purchase of a fresh hold", r.purchase, http.StatusOK, "")
			if got := apitest.Int(t, r.checkout.Body, "sale_id"); got != saleID {
				t.Fatalf("hold in sale %d, want %d", got, saleID)
			}
		case r.checkout.Status == http.StatusConflict && refusals[code]:
			refused[code]++
		default:
			t.Fatalf("%s: %d %s, want 201 or 409 %v", what, r.checkout.Status, r.checkout.Raw, refusals)
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
		if got := pgtest.Scalar(t, srv.Pool, c.sql, saleID); got != c.want {
			t.Errorf("%s: %d, want %d", c.what, got, c.want)
		}
	}
	if refused["user_limit_reached"] == 0 {
		t.Errorf("no checkout was refused for the cap, so the race against it was not exercised")
	}
	if created != units {
		t.Errorf("%d holds were answered 201 and bought, want %d", created, units)
	}
	if got := pgtest.Scalar(t, srv.Pool, "SELECT max_units_per_user FROM sale_summary WHERE id = $1", saleID); got > limit {
		t.Errorf("summary: max_units_per_user %d, want <= %d", got, limit)
	}
}

func TestRacingPurchasesOfOneCode(t *testing.T) {
	t.Parallel()
	const racers = 20
	srv := apitest.Start(t, apitest.WeekLong(apitest.DefaultSettings))
	hold := apitest.Held(t, srv.URL, "racer", 3)

	client := loadClient(t, racers)
	code, _ := hold["code"].(string)
	replies := make([]apitest.Reply, racers)
	errs := make([]error, racers)
	testutil.Together(racers, racers, func(i int) {
		replies[i], errs[i] = apitest.Send(client, http.MethodPost, apitest.PurchaseURL(srv.URL, code), "", nil)
	})

	first := replies[0].Body["purchase_id"]
	for i, r := range replies {
		if errs[i] != nil {
			t.Fatalf("purchase %d: %v", i, errs[i])
		}
		apitest.Expect(t, fmt.Sprintf("purchase %d", i), r, http.StatusOK, "")
		if r.Body["purchase_id"] != first || first == nil || r.Body["user_purchases"] != float64(1) {
			t.Fatalf("purchase %d answered %v; purchase 0 answered purchase_id %v", i, r.Body, first)
		}
	}
	if n := pgtest.Scalar(t, srv.Pool, "SELECT count(*) FROM purchases WHERE code = $1", code); n != 1 {
		t.Fatalf("%d purchase rows for one code, want 1", n)
	}
	if n := pgtest.Scalar(t, srv.Pool, "SELECT count(*) FROM units WHERE sold_at IS NOT NULL"); n != 1 {
		t.Fatalf("%d units sold, want 1", n)
	}
}

func TestUserCapPerSale(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.WeekLong(apitest.DefaultSettings))
	limit := apitest.DefaultSettings.PerUserLimit

	var holds []map[string]any
	for item := 1; item <= limit; item++ {
		holds = append(holds, apitest.Held(t, srv.URL, "greedy", item))
	}
	// Item limit+1 has free units: only the cap can refuse it.
	overCap := func(when string) {
		t.Helper()
		apitest.Expect(t, "checkout over the cap "+when, apitest.Checkout(t, srv.URL, "greedy", limit+1),
			http.StatusConflict, "user_limit_reached")
	}
	overCap("with every unit held")

	// Purchases count against the cap as the holds they replace did.
	for i, hold := range holds {
		if p := apitest.Bought(t, srv.URL, hold); p["user_purchases"] != float64(i+1) {
			t.Fatalf("purchase %d: user_purchases %v", i+1, p["user_purchases"])
		}
		if i == limit/2 {
			overCap("with units both held and bought")
		}
	}
	overCap("with every unit bought")

	apitest.Held(t, srv.URL, "someone-else", limit+1)
	if n := pgtest.Scalar(t, srv.Pool, "SELECT count(*) FROM purchases WHERE user_id = 'greedy'"); n != int64(limit) {
		t.Fatalf("greedy owns %d units, want %d", n, limit)
	}
}
