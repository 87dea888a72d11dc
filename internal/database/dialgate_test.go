package database_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// door stands in front of the test database: while shut it hangs up on
// every connection at once (a server gone, a port refusing), counting them;
// open, it forwards them.
type door struct {
	ln     net.Listener
	target string
	open   atomic.Bool
	dials  atomic.Int64
}

func (d *door) serve() {
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		if !d.open.Load() {
			d.dials.Add(1)
			_ = c.Close()
			continue
		}
		go func() {
			defer c.Close()
			s, err := net.Dial("tcp", d.target)
			if err != nil {
				return
			}
			defer s.Close()
			go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
			_, _ = io.Copy(c, s)
		}()
	}
}

// TestDialsPacedDuringOutage: while the database refuses connections, a
// pool whose every request fails dials a handful of times a second, not
// once per request, and answers each request at once; once the database is
// back, the pool connects again by itself.
func TestDialsPacedDuringOutage(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.New(t)
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	d := &door{ln: ln, target: net.JoinHostPort(cfg.Host, itoa(cfg.Port))}
	go d.serve()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = ln.Addr().String()

	pool, err := database.Open(context.Background(), u.String(), 16, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	// 32 requests at a time for a second, each failing.
	const outage = time.Second
	var requests, slow atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(outage)
	for range 32 {
		wg.Go(func() {
			for time.Now().Before(end) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				start := time.Now()
				c, err := pool.Acquire(ctx)
				cancel()
				if err == nil {
					c.Release()
					t.Error("acquired a connection from a database that refuses them")
					return
				}
				if time.Since(start) > 200*time.Millisecond {
					slow.Add(1)
				}
				requests.Add(1)
			}
		})
	}
	wg.Wait()
	dials := d.dials.Load()
	t.Logf("%d failed requests in %v dialed %d times", requests.Load(), outage, dials)
	// The few attempts that start together before the first fails, then
	// one after each backoff (doubling from 50 ms to 500 ms): about 6 in
	// a second, and each may dial twice (TLS first, then plain, as
	// sslmode=prefer does). Unpaced, each request dialed.
	if dials > 20 || requests.Load() < 100 {
		t.Errorf("%d requests dialed %d times in %v, want at most 20 dials", requests.Load(), dials, outage)
	}
	if slow.Load() > 0 {
		t.Errorf("%d failed requests took over 200ms", slow.Load())
	}

	d.open.Store(true)
	testutil.Poll(t, 5*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return pool.Ping(ctx)
	})
	if n := pool.Stat().NewConnsCount(); n < 1 {
		t.Errorf("no connection after the outage")
	}
}

func itoa(p uint16) string { return (&net.TCPAddr{Port: int(p)}).String()[1:] }

// A connection to a server that no longer takes writes is not reused: the
// pool's next connection is a new one (River's pool has no other way to
// leave a demoted primary).
func TestReadOnlyConnectionNotReused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := database.Open(ctx, pgtest.New(t), 1, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var first, second int32
	// One connection, made read-only as a demoted primary's would be.
	if err := pool.QueryRow(ctx, `SELECT pg_backend_pid() FROM set_config('default_transaction_read_only', 'on', false)`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(ctx, `CREATE TABLE refused (id int)`)
	if err == nil {
		t.Fatal("a write on a read-only connection succeeded")
	}
	if err := pool.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&second); err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Errorf("the pool reused backend %d after it refused a write (%v)", first, err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE taken (id int)`); err != nil {
		t.Errorf("a write on the pool's new connection: %v", err)
	}
}
