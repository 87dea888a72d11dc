package pooltest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/pgbouncer"
	"github.com/flashsale/flashsale/internal/process"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// BenchmarkCheckoutModes measures what a pgx query mode costs with no
// pooler in the way: the service's checkout batches over a direct pool of
// 4 connections, 64 callers at once, on a sold-out sale (the storm's
// answer) and on one with units to hold (the herd's). Besides ns/op it
// reports the CPU per checkout of this process (go-µs/op) and of the
// pool's PostgreSQL backends (pg-µs/op), which other work on the box does
// not blur. Mode pgbouncer is what DB_POOLER=transaction does (cache
// describe) through pgbouncer with 4 PostgreSQL sessions. Run it under the
// benchmark lock:
//
//	flock /tmp/flashsale-bench.lock go test -run '^$' -bench CheckoutModes -benchtime 20000x ./internal/pooltest
func BenchmarkCheckoutModes(b *testing.B) {
	for _, path := range []string{"sold_out", "held"} {
		for _, mode := range []string{"cache_statement", "cache_describe", "exec", "pgbouncer"} {
			b.Run(path+"/"+mode, func(b *testing.B) { benchCheckout(b, mode, path == "held") })
		}
	}
}

func benchCheckout(b *testing.B, mode string, held bool) {
	ctx := context.Background()
	url := pgtest.New(b)
	var pool *pgxpool.Pool
	var err error
	if mode == "pgbouncer" {
		p, err := pgbouncer.Start(ctx, url, 4, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer p.Stop()
		pool, err = database.Open(ctx, p.URL, 4, 5*time.Second, database.Behind(database.PoolerTransaction))
	} else {
		pool, err = database.Open(ctx, url+"&default_query_exec_mode="+mode, 4, 5*time.Second)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	settings := sale.Settings{Duration: saletest.DefaultSettings.Duration,
		Units: 10, Items: 10, PerUserLimit: 10, HoldTTL: 10 * time.Minute, IdempotencyKeyTTL: time.Hour}
	if held {
		settings.Units, settings.Items = max(b.N, 1000), max(b.N/100, 10)
	}
	sales := sale.NewService(pool, settings, 5*time.Second, testutil.Logger(b, slog.LevelWarn))
	defer sales.Close()
	if err := sales.EnsureSales(ctx, time.Now()); err != nil {
		b.Fatal(err)
	}
	if !held {
		for item := range int64(settings.Items) {
			h, err := sales.Checkout(ctx, sale.CheckoutRequest{UserID: "seller", ItemID: item + 1})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := sales.Purchase(ctx, h.Code, ""); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Every pool connection (and, through pgbouncer, every PostgreSQL
	// session) is opened before the clock starts, so that their backends
	// are the ones measured.
	conns := make([]*pgxpool.Conn, 0, 4)
	for range 4 {
		c, err := pool.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns { // 4 open transactions: 4 sessions
		if _, err := c.Exec(ctx, "BEGIN"); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range conns {
		if _, err := c.Exec(ctx, "ROLLBACK"); err != nil {
			b.Fatal(err)
		}
		c.Release()
	}
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(ctx)
	rows, _ := admin.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	if len(pids) != 4 {
		b.Fatalf("%d PostgreSQL backends serve the pool, want 4", len(pids))
	}
	pgCPU := func() time.Duration {
		var sum time.Duration
		for _, pid := range pids {
			d, err := process.CPU(int(pid))
			if err != nil {
				b.Fatalf("CPU of backend %d: %v", pid, err)
			}
			sum += d
		}
		return sum
	}

	var next, failed atomic.Int64
	wantErr := sale.ErrSoldOut
	if held {
		wantErr = nil
	}
	b.SetParallelism(32)
	pg0, go0 := pgCPU(), process.SelfCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			item := 1 + n%int64(settings.Items)
			_, err := sales.Checkout(ctx, sale.CheckoutRequest{UserID: fmt.Sprintf("user-%d", n), ItemID: item})
			if !errors.Is(err, wantErr) {
				if failed.Add(1) == 1 {
					b.Errorf("checkout %d: %v, want %v", n, err, wantErr)
				}
			}
		}
	})
	b.StopTimer()
	pg, goCPU := pgCPU()-pg0, process.SelfCPU()-go0
	b.ReportMetric(float64(pg.Microseconds())/float64(b.N), "pg-µs/op")
	b.ReportMetric(float64(goCPU.Microseconds())/float64(b.N), "go-µs/op")
}
