package database

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3"
)

// The operator's migration commands (server migrate ...). Each goes through
// the same provider as the server's start: the embedded migrations and the
// session lock, so a command and a starting server take turns.

// Up applies every pending migration and says what it did.
func Up(ctx context.Context, pool *pgxpool.Pool) ([]*goose.MigrationResult, error) {
	return withProvider(pool, "apply migrations", func(p *goose.Provider) ([]*goose.MigrationResult, error) {
		return p.Up(ctx)
	})
}

// Status lists every migration, applied or pending.
func Status(ctx context.Context, pool *pgxpool.Pool) ([]*goose.MigrationStatus, error) {
	return withProvider(pool, "read migration status", func(p *goose.Provider) ([]*goose.MigrationStatus, error) {
		return p.Status(ctx)
	})
}

// DownTo rolls back every applied migration above version, newest first.
func DownTo(ctx context.Context, pool *pgxpool.Pool, version int64) ([]*goose.MigrationResult, error) {
	return withProvider(pool, fmt.Sprintf("roll back to version %d", version), func(p *goose.Provider) ([]*goose.MigrationResult, error) {
		return p.DownTo(ctx, version)
	})
}

func withProvider[T any](pool *pgxpool.Pool, what string, fn func(*goose.Provider) (T, error)) (T, error) {
	p, closeDB, err := provider(pool)
	if err != nil {
		var zero T
		return zero, err
	}
	defer closeDB()
	res, err := fn(p)
	if err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
	}
	return res, nil
}
