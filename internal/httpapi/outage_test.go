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

	"github.com/flashsale/flashsale/internal/testdb"
	"github.com/flashsale/flashsale/internal/testproxy"
	"github.com/flashsale/flashsale/internal/testserver"
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

// timed is roundTrip plus how long the answer took.
func timed(method, url string) (reply, time.Duration, error) {
	start := time.Now()
	r, err := roundTrip(method, url, "", nil)
	return r, time.Since(start), err
}

// wantFast503 checks an answer given while the database is unreachable.
func wantFast503(t *testing.T, what string, r reply, took time.Duration, err error) {
	t.Helper()
	const fast = 2500 * time.Millisecond // DBTimeout (1s) plus generous slack
	if err != nil {
		t.Errorf("%s during the outage: %v", what, err)
		return
	}
	wantError(t, r, http.StatusServiceUnavailable, "unavailable")
	if took > fast {
		t.Errorf("%s during the outage took %v, want under %v", what, took, fast)
	}
}

// TestDatabaseOutage: when the database vanishes without a word (packets
// dropped), every request must fail fast with 503 rather than hang, and the
// service must recover on its own once the database is back.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	p, dbURL := throughProxy(t, testdb.New(t))
	srv := testserver.Start(t, testserver.Options{DBURL: dbURL, DBTimeout: time.Second})
	saleID := currentID(t, srv.URL)
	hold := held(t, srv.URL, "ivan", 1)

	p.Cut()
	r, took, err := timed(http.MethodPost, srv.URL+"/checkout?user_id=ivan&id=2")
	wantFast503(t, "checkout", r, took, err)
	r, took, err = timed(http.MethodGet, srv.URL+"/readyz")
	wantFast503(t, "readyz", r, took, err)

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
	replies := make([]reply, len(during))
	tooks := make([]time.Duration, len(during))
	errs := make([]error, len(during))
	var wg sync.WaitGroup
	for i, req := range during {
		wg.Go(func() { replies[i], tooks[i], errs[i] = timed(req.method, srv.URL+req.path) })
	}
	wg.Wait()
	for i, req := range during {
		wantFast503(t, req.method+" "+req.path, replies[i], tooks[i], errs[i])
	}

	p.Restore()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := send(t, http.MethodPost, srv.URL+"/checkout?user_id=judy&id=5", "", nil)
		if r.status == http.StatusCreated {
			break
		}
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("checkout while recovering: status %d, body %s", r.status, r.body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful checkout within 15s of the database coming back: %s", r.body)
		}
		// Polling, not synchronising: the pool redials on its own schedule.
		<-time.After(50 * time.Millisecond)
	}
	if p := bought(t, srv.URL, hold); p["user_id"] != "ivan" {
		t.Fatalf("purchase after the outage: %v", p)
	}
	if r := get(t, srv.URL+"/readyz"); r.status != http.StatusOK {
		t.Fatalf("readyz after the outage: %d %s", r.status, r.body)
	}
}
