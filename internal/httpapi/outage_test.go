package httpapi_test

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/testproxy"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// throughProxy returns a proxy in front of dbURL's server and the URL that
// reaches the same database through it.
func throughProxy(t *testing.T, dbURL string) (*testproxy.Proxy, string) {
	t.Helper()
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("parse %s: %v", dbURL, err)
	}
	p := testproxy.Start(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	u, err := url.Parse(dbURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("TEST_DATABASE_URL must be a postgres:// URL to be proxied, got %q", dbURL)
	}
	u.Host = p.Addr()
	return p, u.String()
}

// wantFast503 checks an answer given while the database is unreachable.
func wantFast503(t *testing.T, what string, r apitest.Reply, err error) {
	t.Helper()
	const fast = 2500 * time.Millisecond // DBTimeout (1s) plus generous slack
	if err != nil {
		t.Errorf("%s during the outage: %v", what, err)
		return
	}
	apitest.Check(t, what+" during the outage", r, http.StatusServiceUnavailable, "unavailable")
	if r.Took > fast {
		t.Errorf("%s during the outage took %v, want under %v", what, r.Took, fast)
	}
}

// TestDatabaseOutage: when the database vanishes without a word (packets
// dropped), every request must fail fast with 503 rather than hang, and the
// service must recover on its own once the database is back.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	p, dbURL := throughProxy(t, pgtest.New(t))
	srv := apitest.Start(t, apitest.Options{DBURL: dbURL, DBTimeout: time.Second})
	saleID := apitest.CurrentSaleID(t, srv.URL)
	hold := apitest.Held(t, srv.URL, "ivan", 1)

	p.Cut()
	r, err := apitest.Send(apitest.Client, http.MethodPost, srv.URL+"/checkout?user_id=ivan&id=2", "", nil)
	wantFast503(t, "checkout", r, err)
	r, err = apitest.Send(apitest.Client, http.MethodGet, srv.URL+"/readyz", "", nil)
	wantFast503(t, "readyz", r, err)

	// Concurrent, so that requests queueing for the pool's connections would
	// show up as slow answers too.
	during := []struct{ method, path string }{
		{http.MethodPost, "/checkout?user_id=judy&id=3"},
		{http.MethodPost, "/checkout?user_id=ivan&id=4"},
		{http.MethodPost, "/purchase?code=" + hold["code"].(string)},
		{http.MethodGet, "/sales/current"},
		{http.MethodGet, "/sales/current/items"},
		{http.MethodGet, fmt.Sprintf("/sales/%d", saleID)},
		{http.MethodGet, "/users/ivan/purchases"},
		{http.MethodGet, fmt.Sprintf("/items/%d/1/image.svg", saleID)},
		{http.MethodGet, "/readyz"},
	}
	replies := make([]apitest.Reply, len(during))
	errs := make([]error, len(during))
	var wg sync.WaitGroup
	for i, req := range during {
		wg.Go(func() { replies[i], errs[i] = apitest.Send(apitest.Client, req.method, srv.URL+req.path, "", nil) })
	}
	wg.Wait()
	for i, req := range during {
		wantFast503(t, req.method+" "+req.path, replies[i], errs[i])
	}

	p.Restore()
	// Polling, not synchronising: the pool redials on its own schedule.
	testutil.Poll(t, 15*time.Second, func() error {
		r := apitest.Checkout(t, srv.URL, "judy", 5)
		if r.Status == http.StatusServiceUnavailable {
			return fmt.Errorf("checkout after the database came back: still 503: %s", r.Raw)
		}
		apitest.Expect(t, "checkout while recovering", r, http.StatusCreated, "")
		return nil
	})
	if p := apitest.Bought(t, srv.URL, hold); p["user_id"] != "ivan" {
		t.Fatalf("purchase after the outage: %v", p)
	}
	apitest.Expect(t, "readyz after the outage", apitest.Get(t, srv.URL+"/readyz"), http.StatusOK, "")
}
