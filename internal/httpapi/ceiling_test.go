package httpapi_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/httpapi"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// TestSoldOutStackAnswersAsTheServer: the HTTP ceiling's checkout answers
// exactly what the real server answers once its sale is sold out (status,
// body, content type), refuses a bad request the same way, and applies
// the per-user rate limit: it measures the real stack's answer, not a
// cheaper one.
func TestSoldOutStackAnswersAsTheServer(t *testing.T) {
	t.Parallel()
	settings := sale.Settings{Duration: time.Hour, Units: 1, Items: 1, PerUserLimit: 1, HoldTTL: 10 * time.Minute}
	srv := apitest.Start(t, apitest.Options{Settings: &settings})
	apitest.Bought(t, srv.URL, apitest.Held(t, srv.URL, "alice", 1))

	// Two checkouts per user, then one every 100 s.
	limits := httpapi.RateLimits{UserRate: 0.01, UserBurst: 2}
	ceiling := httptest.NewServer(httpapi.NewSoldOut(httpapi.Options{
		Log: testutil.Logger(t, slog.LevelWarn), Limits: limits,
	}))
	t.Cleanup(ceiling.Close)

	for _, req := range []struct {
		name, path string
	}{
		{"sold out", "/checkout?user_id=bob&id=1"},
		{"bad item id", "/checkout?user_id=bob&id=x"},
	} {
		real := apitest.Do(t, http.MethodPost, srv.URL+req.path, "", nil)
		got := apitest.Do(t, http.MethodPost, ceiling.URL+req.path, "", nil)
		if got.Status != real.Status || string(got.Raw) != string(real.Raw) ||
			got.Header.Get("Content-Type") != real.Header.Get("Content-Type") || got.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: ceiling %d %q %v, server %d %q %v", req.name, got.Status, got.Raw, got.Header,
				real.Status, real.Raw, real.Header)
		}
	}
	// The malformed request took no token: bob has one left.
	apitest.Expect(t, "ceiling, bob's second checkout", apitest.Do(t, http.MethodPost, ceiling.URL+"/checkout?user_id=bob&id=1", "", nil),
		http.StatusConflict, "sold_out")
	limited := apitest.Do(t, http.MethodPost, ceiling.URL+"/checkout?user_id=bob&id=1", "", nil)
	apitest.Expect(t, "ceiling, over the user limit", limited, http.StatusTooManyRequests, "rate_limited")
	if limited.Header.Get("Retry-After") != "100" {
		t.Errorf("429 without Retry-After: %v", limited.Header)
	}
	apitest.Expect(t, "ceiling readyz", apitest.Do(t, http.MethodGet, ceiling.URL+"/readyz", "", nil), http.StatusOK, "")
}
