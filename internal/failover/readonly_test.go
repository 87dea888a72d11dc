package failover_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// TestReadOnlyNode: the server's database turns read-only under it, as a
// demoted primary does (its sessions end, new ones get read-only
// transactions and PostgreSQL answers writes with 25006). Checkouts and
// purchases answer 503 unavailable, not 500; /readyz goes false; both come
// back once the database takes writes again, without a restart.
func TestReadOnlyNode(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{DBTimeout: time.Second})
	hold := apitest.Held(t, srv.URL, "ana", 1)
	apitest.Expect(t, "readyz before", apitest.Get(t, srv.URL+"/readyz"), http.StatusOK, "")

	cfg, err := pgx.ParseConfig(srv.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	name := cfg.Database
	admin := func(sql string) {
		t.Helper()
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, pgtest.AdminURL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	admin(fmt.Sprintf("ALTER DATABASE %s SET default_transaction_read_only = on", pgx.Identifier{name}.Sanitize()))
	admin(fmt.Sprintf("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'", name))

	testutil.Poll(t, 10*time.Second, func() error {
		if r := apitest.Get(t, srv.URL+"/readyz"); r.Status != http.StatusServiceUnavailable {
			return fmt.Errorf("readyz answered %d", r.Status)
		}
		return nil
	})
	// Each on connections dialed to the read-only database: readiness
	// dropped those it had.
	for i := range 3 {
		apitest.Expect(t, "checkout on a read-only database", apitest.Checkout(t, srv.URL, "bo", 2+i),
			http.StatusServiceUnavailable, "unavailable")
		apitest.Expect(t, "purchase on a read-only database", apitest.Purchase(t, srv.URL, hold),
			http.StatusServiceUnavailable, "unavailable")
	}
	apitest.Expect(t, "readyz on a read-only database", apitest.Get(t, srv.URL+"/readyz"),
		http.StatusServiceUnavailable, "unavailable")

	admin(fmt.Sprintf("ALTER DATABASE %s RESET default_transaction_read_only", pgx.Identifier{name}.Sanitize()))
	testutil.Poll(t, 10*time.Second, func() error {
		if r := apitest.Checkout(t, srv.URL, "bo", 9); r.Status != http.StatusCreated {
			return fmt.Errorf("checkout answered %d: %s", r.Status, r.Raw)
		}
		return nil
	})
	apitest.Bought(t, srv.URL, hold)
	apitest.Expect(t, "readyz after", apitest.Get(t, srv.URL+"/readyz"), http.StatusOK, "")
}
