package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testserver"
)

// waitPastExpiry returns once the hold's expires_at has passed. PostgreSQL
// runs on this host, so its clock, which decides expiry, agrees with ours.
func waitPastExpiry(t *testing.T, hold map[string]any) {
	t.Helper()
	s, _ := hold["expires_at"].(string)
	expires, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("expires_at %q: %v", s, err)
	}
	<-time.After(time.Until(expires) + time.Millisecond)
}

func TestHoldExpires(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, testserver.Options{Settings: stableSale(sale.Settings{
		Units: 1, Items: 1, PerUserLimit: 10, HoldTTL: time.Second,
	})})

	status, alice := checkout(t, srv.URL, "alice", 1)
	expect(t, "alice's checkout", status, alice, http.StatusCreated, "")
	status, body := checkout(t, srv.URL, "bob", 1)
	expect(t, "bob's checkout while alice holds the only unit", status, body, http.StatusConflict, "sold_out")

	waitPastExpiry(t, alice)
	status, body = purchase(t, srv.URL, alice)
	expect(t, "alice's purchase after expiry", status, body, http.StatusGone, "code_expired")

	status, bob := checkout(t, srv.URL, "bob", 1)
	expect(t, "bob's checkout after alice's hold expired", status, bob, http.StatusCreated, "")
	status, body = purchase(t, srv.URL, bob)
	expect(t, "bob's purchase", status, body, http.StatusOK, "")
	if body["user_id"] != "bob" {
		t.Fatalf("bob's purchase: %v", body)
	}
	// Once bob owns the unit, alice's code must stay dead.
	status, body = purchase(t, srv.URL, alice)
	expect(t, "alice's purchase after bob's", status, body, http.StatusGone, "code_expired")

	if n := scalar(t, srv.Pool, `SELECT count(DISTINCT unit_id) FROM checkout_attempts
		WHERE outcome = 'held' AND code = ANY($1)`, []string{alice["code"].(string), bob["code"].(string)}); n != 1 {
		t.Fatalf("alice and bob held %d different units, want the same one", n)
	}
	if n := scalar(t, srv.Pool, "SELECT count(*) FROM purchases WHERE user_id = 'bob'"); n != 1 {
		t.Fatalf("%d purchase rows for bob, want 1", n)
	}
	if n := scalar(t, srv.Pool, "SELECT count(*) FROM purchases"); n != 1 {
		t.Fatalf("%d purchase rows, want 1", n)
	}
}

// With a cap of one and a second unit free, only alice's own hold can refuse
// her second checkout: so it must stop counting when it expires.
func TestHoldExpiryFreesUserCap(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, testserver.Options{Settings: stableSale(sale.Settings{
		Units: 2, Items: 2, PerUserLimit: 1, HoldTTL: time.Second,
	})})

	status, first := checkout(t, srv.URL, "alice", 1)
	expect(t, "first checkout", status, first, http.StatusCreated, "")
	status, body := checkout(t, srv.URL, "alice", 2)
	expect(t, "second checkout while the first hold lives", status, body, http.StatusConflict, "user_limit_reached")

	waitPastExpiry(t, first)
	status, second := checkout(t, srv.URL, "alice", 2)
	expect(t, "second checkout after the first hold expired", status, second, http.StatusCreated, "")
	status, body = purchase(t, srv.URL, first)
	expect(t, "purchase with the expired code", status, body, http.StatusGone, "code_expired")
	status, body = purchase(t, srv.URL, second)
	expect(t, "purchase with the live code", status, body, http.StatusOK, "")
	if body["user_purchases"] != float64(1) {
		t.Fatalf("purchase: user_purchases %v, want 1", body["user_purchases"])
	}
}
