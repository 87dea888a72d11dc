// Package pgtest hands each test its own PostgreSQL database, cloned from a
// migrated template, so tests that race real connections run in parallel
// and leave nothing behind.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/migrations"
)

// defaultAdminURL is the server `make test` finds or starts; the database
// in it only serves to issue CREATE/DROP DATABASE.
const defaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL is the server tests run against: $TEST_DATABASE_URL or the default.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return defaultAdminURL
}

// New creates an empty, migrated database for t and returns its URL. The
// database is dropped when the test ends. It fails the test, never skips it,
// when no PostgreSQL answers.
func New(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatalf("pgtest: no PostgreSQL at %s (set TEST_DATABASE_URL, or run `make test`, which finds or starts one): %v", AdminURL(), err)
	}
	defer admin.Close(ctx)

	tmpl, err := ensureTemplate(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := "flashsale_test_" + randomHex(6)
	var url string
	// Cloning fails while another session is connected to the template
	// (for example a second test binary creating it): retry briefly. A
	// checkout with other migrations testing on the same server drops
	// templates it takes for stale: build ours again.
	for attempt := 0; ; attempt++ {
		url, err = database.CreateDatabase(ctx, AdminURL(), name, tmpl)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || (pgErr.Code != "55006" && pgErr.Code != "3D000") || attempt == 50 {
			break
		}
		if pgErr.Code == "3D000" {
			if tmpl, err = ensureTemplate(ctx, admin); err != nil {
				break
			}
			continue
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := database.DropDatabase(ctx, AdminURL(), name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return url
}

// NewPool is New plus a pool on the new database, closed when the test ends.
func NewPool(t testing.TB) (string, *pgxpool.Pool) {
	t.Helper()
	url := New(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("pgtest: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return url, pool
}

// ensureTemplate creates the template database for the current migrations
// once; its name carries a hash of the migration files, so a changed
// migration gets a new template instead of a stale one.
func ensureTemplate(ctx context.Context, admin *pgx.Conn) (string, error) {
	name := "flashsale_template_" + migrationsHash()
	// A session lock on this dedicated connection: test binaries run in
	// parallel and only one may build the template.
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(hashtext($1))", name); err != nil {
		return "", fmt.Errorf("lock template: %w", err)
	}
	defer admin.Exec(context.Background(), "SELECT pg_advisory_unlock(hashtext($1))", name) //nolint:errcheck

	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look up template: %w", err)
	}
	if exists {
		return name, nil
	}
	building := name + "_building"
	if err := database.DropDatabase(ctx, AdminURL(), building); err != nil {
		return "", fmt.Errorf("drop half-built template: %w", err)
	}
	url, err := database.CreateDatabase(ctx, AdminURL(), building, "")
	if err != nil {
		return "", fmt.Errorf("template: %w", err)
	}
	pool, err := database.Open(ctx, url, 2, 10*time.Second)
	if err != nil {
		return "", err
	}
	err = database.Migrate(ctx, pool)
	pool.Close()
	if err != nil {
		return "", err
	}
	// Renamed only once complete, so a crash never leaves a usable-looking
	// half-migrated template.
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+ident(building)+" RENAME TO "+ident(name)); err != nil {
		return "", fmt.Errorf("rename template: %w", err)
	}
	// Templates of earlier migrations are caches nobody will use again.
	rows, err := admin.Query(ctx, `SELECT datname FROM pg_database
		WHERE datname LIKE 'flashsale\_template\_%' AND datname NOT IN ($1, $2)`, name, building)
	if err != nil {
		return "", fmt.Errorf("list stale templates: %w", err)
	}
	stale, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("list stale templates: %w", err)
	}
	for _, old := range stale {
		if err := database.DropDatabase(ctx, AdminURL(), old); err != nil {
			return "", fmt.Errorf("stale template: %w", err)
		}
	}
	return name, nil
}

func migrationsHash() string {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		h.Write([]byte(path))
		h.Write(b)
		return err
	})
	if err != nil {
		panic(fmt.Sprintf("read embedded migrations: %v", err))
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
