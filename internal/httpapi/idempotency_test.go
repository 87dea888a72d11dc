package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// checkoutWithKey sends a checkout carrying an Idempotency-Key.
func checkoutWithKey(base, user string, item int, key string) (apitest.Reply, error) {
	req, err := http.NewRequest(http.MethodPost, apitest.CheckoutURL(base, user, item), nil)
	if err != nil {
		return apitest.Reply{}, err
	}
	req.Header.Set("Idempotency-Key", key)
	return apitest.SendRequest(apitest.Client, req)
}

func mustCheckoutWithKey(t *testing.T, base, user string, item int, key string) apitest.Reply {
	t.Helper()
	r, err := checkoutWithKey(base, user, item, key)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// wantReplay checks that again is exactly first, marked as a replay.
func wantReplay(t *testing.T, what string, first, again apitest.Reply) {
	t.Helper()
	if again.Status != first.Status || string(again.Raw) != string(first.Raw) {
		t.Errorf("%s: replay answered %d %s, want exactly %d %s", what, again.Status, again.Raw, first.Status, first.Raw)
	}
	if got := again.Header.Get("Idempotent-Replayed"); got != "true" {
		t.Errorf("%s: Idempotent-Replayed = %q, want true", what, got)
	}
}

func TestIdempotentCheckout(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.WeekLong(sale.Settings{Units: 20, Items: 2, PerUserLimit: 10, HoldTTL: time.Hour}))
	attempts := func(user string) int64 {
		return pgtest.Scalar(t, srv.Pool, "SELECT count(*) FROM checkout_attempts WHERE user_id = $1", user)
	}

	first := mustCheckoutWithKey(t, srv.URL, "ada", 1, "order-1")
	apitest.Expect(t, "first checkout", first, http.StatusCreated, "")
	if first.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("a first answer is marked as a replay")
	}
	again := mustCheckoutWithKey(t, srv.URL, "ada", 1, "order-1")
	wantReplay(t, "same key, same item", first, again)

	// The replay is the first answer even after the hold was bought.
	apitest.Bought(t, srv.URL, first.Body)
	wantReplay(t, "after the purchase", first, mustCheckoutWithKey(t, srv.URL, "ada", 1, "order-1"))

	// Another server on the same database (a restart) knows the key.
	other := apitest.Start(t, apitest.Options{DBURL: srv.DBURL})
	wantReplay(t, "on another server", first, mustCheckoutWithKey(t, other.URL, "ada", 1, "order-1"))

	apitest.Expect(t, "same key, other item", mustCheckoutWithKey(t, srv.URL, "ada", 2, "order-1"),
		http.StatusUnprocessableEntity, "idempotency_key_reused")
	if n := attempts("ada"); n != 1 {
		t.Errorf("ada has %d attempts, want 1: replays and reuses store nothing", n)
	}

	// Keys are per user: bob's "order-1" is his own.
	apitest.Expect(t, "bob's order-1", mustCheckoutWithKey(t, srv.URL, "bob", 1, "order-1"), http.StatusCreated, "")

	// A refusal is replayed too.
	refused := mustCheckoutWithKey(t, srv.URL, "ada", 99, "order-2")
	apitest.Expect(t, "unknown item", refused, http.StatusNotFound, "item_not_found")
	wantReplay(t, "a refusal", refused, mustCheckoutWithKey(t, srv.URL, "ada", 99, "order-2"))

	// Without a key, nothing changes: each request is its own attempt.
	apitest.Held(t, srv.URL, "ada", 2)
	apitest.Held(t, srv.URL, "ada", 2)
	if n := attempts("ada"); n != 4 {
		t.Errorf("ada has %d attempts, want 4", n)
	}
}

func TestIdempotencyKeyRacingRepeats(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.WeekLong(sale.Settings{Units: 100, Items: 10, PerUserLimit: 10, HoldTTL: time.Hour}))
	other := apitest.Start(t, apitest.Options{DBURL: srv.DBURL})
	const repeats = 50
	replies := make([]apitest.Reply, repeats)
	errs := make([]error, repeats)
	testutil.Together(repeats, repeats, func(i int) {
		base := srv.URL
		if i%2 == 1 {
			base = other.URL // two servers: the key holds across processes
		}
		replies[i], errs[i] = checkoutWithKey(base, "racer", 3, "one-click")
	})
	codes := map[string]int{}
	replayed := 0
	for i, r := range replies {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		apitest.Expect(t, fmt.Sprintf("repeat %d", i), r, http.StatusCreated, "")
		codes[r.Body["code"].(string)]++
		if r.Header.Get("Idempotent-Replayed") == "true" {
			replayed++
		}
	}
	if len(codes) != 1 || replayed != repeats-1 {
		t.Errorf("%d racing repeats gave codes %v and %d replays, want one code and %d replays", repeats, codes, replayed, repeats-1)
	}
	if n := pgtest.Scalar(t, srv.Pool, "SELECT count(*) FROM checkout_attempts WHERE user_id = 'racer'"); n != 1 {
		t.Errorf("%d attempts stored, want 1", n)
	}
	if n := pgtest.Scalar(t, srv.Pool, "SELECT count(*) FROM units WHERE held_by = 'racer'"); n != 1 {
		t.Errorf("%d units held, want 1", n)
	}
}

func TestIdempotencyKeyExpiry(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.WeekLong(sale.Settings{Units: 20, Items: 2, PerUserLimit: 10, HoldTTL: time.Hour}))
	first := mustCheckoutWithKey(t, srv.URL, "eve", 1, "k")
	apitest.Expect(t, "first", first, http.StatusCreated, "")

	// The key's time is up (the scheduler has not deleted it yet): the
	// repeat is a new attempt, and its answer is kept under the key.
	if _, err := srv.Pool.Exec(t.Context(), "UPDATE idempotency_keys SET expires_at = now() - interval '1 second'"); err != nil {
		t.Fatal(err)
	}
	fresh := mustCheckoutWithKey(t, srv.URL, "eve", 1, "k")
	apitest.Expect(t, "after expiry", fresh, http.StatusCreated, "")
	if fresh.Header.Get("Idempotent-Replayed") != "" || fresh.Body["code"] == first.Body["code"] {
		t.Errorf("after expiry: %v %s, want a new hold", fresh.Header, fresh.Raw)
	}
	wantReplay(t, "the new answer", fresh, mustCheckoutWithKey(t, srv.URL, "eve", 1, "k"))

	// The scheduler's sweep deletes expired keys and only those.
	if _, err := srv.Pool.Exec(t.Context(), "UPDATE idempotency_keys SET expires_at = now() - interval '1 second'"); err != nil {
		t.Fatal(err)
	}
	apitest.Expect(t, "another key", mustCheckoutWithKey(t, srv.URL, "eve", 2, "k2"), http.StatusCreated, "")
	if err := srv.Sales.DeleteExpiredIdempotencyKeys(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := pgtest.Scalar(t, srv.Pool, "SELECT count(*) FROM idempotency_keys"); n != 1 {
		t.Errorf("%d keys left after the sweep, want 1 (k2)", n)
	}
}

func TestIdempotencyKeyMustBeWellFormed(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	for name, key := range map[string]string{
		"empty":        "",
		"too long":     strings.Repeat("k", sale.MaxIdempotencyKeyBytes+1),
		"not ASCII":    "clé",
		"control char": "a\tb",
	} {
		r, err := checkoutWithKey(srv.URL, "ivy", 1, key)
		if err != nil {
			t.Fatal(err)
		}
		apitest.Expect(t, name, r, http.StatusBadRequest, "invalid_request")
	}
	apitest.Expect(t, "255 characters", mustCheckoutWithKey(t, srv.URL, "ivy", 1, strings.Repeat("k", 255)), http.StatusCreated, "")
	if n := pgtest.Scalar(t, srv.Pool, "SELECT count(*) FROM checkout_attempts"); n != 1 {
		t.Errorf("%d attempts stored, want 1: malformed requests are refused before the sale", n)
	}
}

// TestIdempotencyKeyAfter503: a checkout answered 503 because the database
// was away stored nothing, so its repeat with the key is a fresh attempt.
func TestIdempotencyKeyAfter503(t *testing.T) {
	t.Parallel()
	p, dbURL := throughProxy(t, pgtest.New(t))
	srv := apitest.Start(t, apitest.Options{DBURL: dbURL, DBTimeout: time.Second})
	p.Cut()
	r, err := checkoutWithKey(srv.URL, "olga", 1, "retry-me")
	wantFast503(t, "keyed checkout", r, err)
	p.Restore()
	testutil.Poll(t, 15*time.Second, func() error {
		r := mustCheckoutWithKey(t, srv.URL, "olga", 1, "retry-me")
		if r.Status == http.StatusServiceUnavailable {
			return fmt.Errorf("still 503: %s", r.Raw)
		}
		apitest.Expect(t, "repeat after the outage", r, http.StatusCreated, "")
		if r.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("the repeat of a request that stored nothing is marked as a replay")
		}
		return nil
	})
	if n := pgtest.Scalar(t, srv.Pool, "SELECT count(*) FROM checkout_attempts WHERE user_id = 'olga'"); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}
