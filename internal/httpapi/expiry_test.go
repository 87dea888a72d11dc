package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
)

// waitPastExpiry returns once the hold's expires_at has passed. PostgreSQL
// runs on this host, so its clock, which decides expiry, agrees with ours.
func waitPastExpiry(t *testing.T, hold map[string]any) {
	t.Helper()
	<-time.After(time.Until(apitest.Time(t, hold, "expires_at")) + time.Millisecond)
}

func TestHoldExpires(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.WeekLong(sale.Settings{Units: 1, Items: 1, PerUserLimit: 10, HoldTTL: time.Second}))

	alice := apitest.Held(t, srv.URL, "alice", 1)
	apitest.Expect(t, "bob's checkout while alice holds the only unit", apitest.Checkout(t, srv.URL, "bob", 1),
		http.StatusConflict, "sold_out")

	waitPastExpiry(t, alice)
	apitest.Expect(t, "alice's purchase after expiry", apitest.Purchase(t, srv.URL, alice), http.StatusGone, "code_expired")

	bob := apitest.Held(t, srv.URL, "bob", 1)
	if p := apitest.Bought(t, srv.URL, bob); p["user_id"] != "bob" {
		t.Fatalf("bob's purchase: %v", p)
	}
	// Once bob owns the unit, alice's code must stay dead.
	apitest.Expect(t, "alice's purchase after bob's", apitest.Purchase(t, srv.URL, alice), http.StatusGone, "code_expired")

	if n := pgtest.Scalar(t, srv.Pool, `SELECT count(DISTINCT unit_id) FROM checkout_attempts
		WHERE outcome = 'held' AND code = ANY($1)`, []string{alice["code"].(string), bob["code"].(string)}); n != 1 {
		t.Fatalf("alice and bob held %d different units, want the same one", n)
	}
	if n := pgtest.Scalar(t, srv.Pool, "SELECT count(*) FROM purchases WHERE user_id = 'bob'"); n != 1 {
		t.Fatalf("%d purchase rows for bob, want 1", n)
	}
	if n := pgtest.Scalar(t, srv.Pool, "SELECT count(*) FROM purchases"); n != 1 {
		t.Fatalf("%d purchase rows, want 1", n)
	}
}

// With a cap of one and a second unit free, only alice's own hold can refuse
// her second checkout: so it must stop counting when it expires.
func TestHoldExpiryFreesUserCap(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.WeekLong(sale.Settings{Units: 2, Items: 2, PerUserLimit: 1, HoldTTL: time.Second}))

	first := apitest.Held(t, srv.URL, "alice", 1)
	apitest.Expect(t, "second checkout while the first hold lives", apitest.Checkout(t, srv.URL, "alice", 2),
		http.StatusConflict, "user_limit_reached")

	waitPastExpiry(t, first)
	second := apitest.Held(t, srv.URL, "alice", 2)
	apitest.Expect(t, "purchase with the expired code", apitest.Purchase(t, srv.URL, first), http.StatusGone, "code_expired")
	if p := apitest.Bought(t, srv.URL, second); p["user_purchases"] != float64(1) {
		t.Fatalf("purchase: user_purchases %v, want 1", p["user_purchases"])
	}
}
