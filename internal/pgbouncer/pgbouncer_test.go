package pgbouncer

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/testkit/pgtest"
)

// logWriter sends pgbouncer's log to the test's log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// TestPgBouncer starts the real pgbouncer in front of a test database: its
// clients share poolSize PostgreSQL sessions a transaction at a time, the
// sessions carry the connection check the server cannot ask for itself,
// and Stop leaves nothing behind. It fails when pgbouncer is not installed
// (`make pgbouncer`).
func TestPgBouncer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dbURL := pgtest.New(t)
	p, err := Start(ctx, dbURL, 1, logWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = p.Stop()
		}
	})
	dir := p.dir

	env := p.ServerEnv()
	if !slices.Contains(env, "DB_POOLER=transaction") || !slices.Contains(env, "DATABASE_MIGRATION_URL="+dbURL) {
		t.Errorf("ServerEnv: %q", env)
	}

	// Two clients, one PostgreSQL session: each transaction runs on it in
	// turn. Simple protocol: nothing here depends on the server's query mode.
	var conns []*pgx.Conn
	for range 2 {
		c, err := pgx.Connect(ctx, p.URL+"&default_query_exec_mode=simple_protocol")
		if err != nil {
			t.Fatalf("connect through pgbouncer at %s: %v", p.URL, err)
		}
		defer c.Close(ctx)
		conns = append(conns, c)
	}
	var (
		mu   sync.Mutex
		pids = map[uint32]bool{}
		wg   sync.WaitGroup
		errs = make([]error, len(conns))
	)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				var pid uint32
				var check, db string
				err := c.QueryRow(ctx, `SELECT pg_backend_pid(), current_setting('client_connection_check_interval'), current_database()`).
					Scan(&pid, &check, &db)
				if err != nil {
					errs[i] = err
					return
				}
				if check != "1s" || !strings.HasPrefix(db, "flashsale_test_") {
					errs[i] = errors.New("session: client_connection_check_interval " + check + ", database " + db)
					return
				}
				mu.Lock()
				pids[pid] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	// In session mode the second client would wait for the first to
	// disconnect, and this test would time out.
	if len(pids) != 1 {
		t.Errorf("2 clients with pool size 1 ran on %d PostgreSQL sessions, want 1", len(pids))
	}

	stopped = true
	if err := p.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("pgbouncer's directory %s still there after Stop: %v", dir, err)
	}
	c, err := pgx.Connect(ctx, p.URL)
	if err == nil {
		c.Close(ctx)
		t.Error("pgbouncer still accepts connections after Stop")
	}
}

// TestPgBouncerRejectsBadInput fails fast rather than writing a config
// pgbouncer would read differently.
func TestPgBouncerRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	for _, url := range []string{
		"postgres://postgres@127.0.0.1:5432/odd%20name?sslmode=disable",
		"postgres://postgres:it's@127.0.0.1:5432/flashsale?sslmode=disable",
	} {
		if p, err := Start(ctx, url, 4, nil); err == nil {
			_ = p.Stop()
			t.Errorf("%s: started", url)
		}
	}
	if _, err := Start(ctx, pgtest.AdminURL(), 0, nil); err == nil {
		t.Error("pool size 0: started")
	}
}
