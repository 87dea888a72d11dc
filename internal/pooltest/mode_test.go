package pooltest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/pgbouncer"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// startPgBouncer runs pgbouncer in front of dbURL until the test ends; it
// fails the test, never skips it, when pgbouncer is not installed.
func startPgBouncer(t *testing.T, dbURL string, poolSize int) *pgbouncer.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := pgbouncer.Start(ctx, dbURL, poolSize, logWriter{t})
	if err != nil {
		t.Fatalf("%v (make pgbouncer installs it)", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stop pgbouncer: %v", err)
		}
	})
	return p
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(b []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

// TestDirectSettingsFailBehindPgBouncer shows why the server needs
// DB_POOLER=transaction behind PgBouncer 1.18: the connection check it
// asks for at startup is refused, and pgx's default named prepared
// statements collide on the shared PostgreSQL session.
func TestDirectSettingsFailBehindPgBouncer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := startPgBouncer(t, pgtest.New(t), 1)

	pool, err := database.Open(ctx, p.URL, 2, 5*time.Second)
	if err == nil {
		err = pool.Ping(ctx)
		pool.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "client_connection_check_interval") {
		t.Errorf("direct settings through pgbouncer: want the startup parameter refused, got %v", err)
	}

	// pgx's default mode (cache_statement) without that parameter: two
	// clients, one PostgreSQL session. The second client's statement is
	// prepared under the name the first one already gave it there.
	cfg, err := pgxpool.ParseConfig(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ConnConfig.DefaultQueryExecMode != pgx.QueryExecModeCacheStatement {
		t.Fatalf("pgx's default mode is %v; this test is about cache_statement", cfg.ConnConfig.DefaultQueryExecMode)
	}
	a, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	b, err := pgx.ConnectConfig(ctx, cfg.ConnConfig.Copy())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	// Any statement shows it: pgx names a prepared statement after its SQL.
	const query = "SELECT now()"
	var now time.Time
	if err := a.QueryRow(ctx, query).Scan(&now); err != nil {
		t.Fatalf("first client: %v", err)
	}
	err = b.QueryRow(ctx, query).Scan(&now)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42P05" {
		t.Errorf("second client with cache_statement: want 42P05 duplicate_prepared_statement, got %v", err)
	}
}

// TestTransactionPoolerSettings: database.Open behind a transaction pooler
// connects through pgbouncer, and many clients run the service's queries
// and pipelined transactions on fewer PostgreSQL sessions.
func TestTransactionPoolerSettings(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := startPgBouncer(t, pgtest.New(t), 2)
	pool, err := database.Open(ctx, p.URL, 8, 5*time.Second, database.Behind(database.PoolerTransaction))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if mode := pool.Config().ConnConfig.DefaultQueryExecMode; mode != pgx.QueryExecModeCacheDescribe {
		t.Errorf("query mode behind a transaction pooler: %v, want cache_describe", mode)
	}
	if err := database.CheckServer(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := database.Ready(ctx, pool); err != nil {
		t.Fatalf("ready through pgbouncer: %v", err)
	}
	sales := sale.NewService(pool, saletest.DefaultSettings, 5*time.Second, testutil.Logger(t, slog.LevelWarn))
	defer sales.Close()
	if err := sales.EnsureSales(ctx, time.Now()); err != nil {
		t.Fatalf("create the sales through pgbouncer: %v", err)
	}
	want, err := sales.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				// A pipelined transaction, as internal/sale sends them.
				batch := &pgx.Batch{}
				batch.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
				batch.Queue("SELECT $1::integer + 1", i)
				batch.Queue("SELECT pg_advisory_xact_lock(1, $1::integer)", i)
				batch.Queue("COMMIT")
				if err := pool.SendBatch(ctx, batch).Close(); err != nil {
					errs[i] = err
					return
				}
				if got, err := sales.Current(ctx); err != nil || got.ID != want.ID {
					errs[i] = fmt.Errorf("current sale %d, want %d: %w", got.ID, want.ID, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	// A mode named in the URL wins (PgBouncer 1.21+ tracks prepared
	// statements); only the startup parameter stays off.
	named, err := database.Open(ctx, p.URL+"&default_query_exec_mode=exec", 2, 5*time.Second, database.Behind(database.PoolerTransaction))
	if err != nil {
		t.Fatal(err)
	}
	defer named.Close()
	if mode := named.Config().ConnConfig.DefaultQueryExecMode; mode != pgx.QueryExecModeExec {
		t.Errorf("mode named in the URL: got %v, want exec", mode)
	}
	if _, err := database.Open(ctx, p.URL, 2, time.Second, database.Behind("session")); err == nil {
		t.Error("an unknown pooler was accepted")
	}
}
