package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
)

// Reads (the sale and its counts, the item list, readiness) have a pool of
// their own: however many clients read, checkouts and purchases never wait
// for a connection behind them. First with every read connection taken,
// then with clients looping on the largest item page and the sale.
func TestReadsCannotStarveCheckouts(t *testing.T) {
	t.Parallel()
	opts := apitest.WeekLong(sale.Settings{Units: 300, Items: 30, PerUserLimit: 10, HoldTTL: 10 * time.Minute})
	opts.DBTimeout, opts.ReadPoolSize = time.Second, 2 // more than the default, to take them all
	srv := apitest.Start(t, opts)
	ctx := context.Background()

	var taken []*pgxpool.Conn
	for range 2 {
		c, err := srv.ReadPool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		taken = append(taken, c)
	}
	// A read waits for its own pool, then gives up.
	apitest.Expect(t, "GET /sales/current with every read connection taken", apitest.Get(t, srv.URL+"/sales/current"),
		http.StatusServiceUnavailable, "unavailable")
	start := time.Now()
	for i := range 10 {
		apitest.Bought(t, srv.URL, apitest.Held(t, srv.URL, fmt.Sprintf("early-%d", i), i+1))
	}
	// Ten checkouts and ten purchases, one after the other: had any waited
	// for a read connection, it would have answered 503 after DB_TIMEOUT.
	t.Logf("10 checkouts and purchases with the read pool taken: %v", time.Since(start))
	for _, c := range taken {
		c.Release()
	}

	const readers = 16
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, unavailable atomic.Int64
	client := loadClient(t, readers+4)
	for i := range readers {
		path := "/sales/current/items?limit=1000"
		if i%4 == 0 {
			path = "/sales/current"
		}
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := apitest.Send(client, http.MethodGet, srv.URL+path, "", nil)
				switch {
				case err != nil:
					t.Errorf("GET %s: %v", path, err)
					return
				case r.Status == http.StatusOK:
					ok.Add(1)
				case r.Status == http.StatusServiceUnavailable:
					unavailable.Add(1) // waited past DB_TIMEOUT for a read connection
				default:
					t.Errorf("GET %s: %d %s", path, r.Status, r.Raw)
					return
				}
			}
		})
	}
	// Checkouts while the readers run, until the readers have been
	// answered a good many times.
	checkouts := 0
	for ok.Load() < 4*readers || checkouts < 40 {
		user := fmt.Sprintf("late-%d", checkouts)
		r, err := apitest.Send(client, http.MethodPost, apitest.CheckoutURL(srv.URL, user, checkouts%30+1), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if code := apitest.ErrorCode(r.Body); r.Status != http.StatusCreated && !refusals[code] {
			t.Fatalf("checkout %d while %d clients read: %d %s", checkouts, readers, r.Status, r.Raw)
		}
		checkouts++
	}
	close(stop)
	wg.Wait()
	t.Logf("%d checkouts answered while %d readers got %d answers (%d of them 503)", checkouts, readers,
		ok.Load()+unavailable.Load(), unavailable.Load())
}

// With READ_MAX_AGE, the clients polling the sale's counts or an item page
// share one read and one encoding: here they are all answered while the
// only read connection is taken, so none of them went to the database.
// The checkout made meanwhile does not show until the shared answer ages.
func TestPolledReadsShareOneAnswer(t *testing.T) {
	t.Parallel()
	opts := apitest.WeekLong(sale.Settings{Units: 300, Items: 30, PerUserLimit: 10, HoldTTL: 10 * time.Minute})
	opts.DBTimeout, opts.ReadPoolSize = time.Second, 1
	opts.HTTP.ReadMaxAge = time.Hour
	srv := apitest.Start(t, opts)
	paths := []string{"/sales/current", "/sales/current/items?limit=10"}
	first := map[string]string{}
	for _, p := range paths {
		first[p] = string(apitest.Get(t, srv.URL+p).Raw)
	}
	conn, err := srv.ReadPool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	apitest.Held(t, srv.URL, "shared-reader", 1)

	client := loadClient(t, 32)
	var wg sync.WaitGroup
	for i := range 64 {
		p := paths[i%len(paths)]
		wg.Go(func() {
			r, err := apitest.Send(client, http.MethodGet, srv.URL+p, "", nil)
			switch {
			case err != nil:
				t.Errorf("GET %s: %v", p, err)
			case r.Status != http.StatusOK || string(r.Raw) != first[p]:
				t.Errorf("GET %s with the read connection taken: %d %s, want the shared 200 %s", p, r.Status, r.Raw, first[p])
			}
		})
	}
	wg.Wait()
	// A page nobody asked for yet needs the database, and waits for it.
	apitest.Expect(t, "GET an unshared item page with the read connection taken",
		apitest.Get(t, srv.URL+"/sales/current/items?after=10&limit=10"), http.StatusServiceUnavailable, "unavailable")
}
