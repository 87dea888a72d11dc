package migrations

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivermigrate"
)

// RiverVersion is the version of River's own schema (its job queue, which
// delivers webhooks) that these migrations bring. River's migrator writes
// it under goose's lock, so `server migrate` and a starting server do
// everything and take turns as for the SQL files. Not in one transaction:
// River's version 4 adds an enum value that its version 6 uses, which
// PostgreSQL refuses within one transaction. River applies each of its
// versions in a transaction of its own and records it, so a migration cut
// short resumes where it stopped. Upgrading River to a version with a newer schema is a new goose
// migration that migrates to that version.
const RiverVersion = 8

// riverMigration is version 9: River's schema up to RiverVersion.
const riverMigration = 9

// Go returns the migrations written in Go, for goose beside the SQL files.
func Go() []*goose.Migration {
	return []*goose.Migration{goose.NewGoMigration(riverMigration,
		&goose.GoFunc{RunDB: func(ctx context.Context, db *sql.DB) error { return migrateRiver(ctx, db, RiverVersion) }},
		// Down removes River's tables entirely (version -1: every step).
		&goose.GoFunc{RunDB: func(ctx context.Context, db *sql.DB) error { return migrateRiver(ctx, db, -1) }},
	)}
}

func migrateRiver(ctx context.Context, db *sql.DB, target int) error {
	m, err := river(db)
	if err != nil {
		return err
	}
	direction := rivermigrate.DirectionUp
	if target < 0 {
		direction = rivermigrate.DirectionDown
	}
	if _, err := m.Migrate(ctx, direction, &rivermigrate.MigrateOpts{TargetVersion: target}); err != nil {
		return fmt.Errorf("migrate River's schema %s to %d: %w", direction, target, err)
	}
	return nil
}

func river(db *sql.DB) (*rivermigrate.Migrator[*sql.Tx], error) {
	// River logs each step at info; goose reports the migration already.
	quiet := slog.New(slog.DiscardHandler)
	m, err := rivermigrate.New(riverdatabasesql.New(db), &rivermigrate.Config{Logger: quiet})
	if err != nil {
		return nil, fmt.Errorf("River's migrator: %w", err)
	}
	return m, nil
}

// RiverSchema is River's schema at RiverVersion as SQL, for sqlc (which
// reads db/river_schema.sql, kept equal to it by a test): the queries that
// count webhook deliveries read River's job table.
func RiverSchema() (string, error) {
	m, err := river(nil)
	if err != nil {
		return "", err
	}
	out := "-- River's schema up to its version " + fmt.Sprint(RiverVersion) + ", for sqlc only: the database gets it from\n" +
		"-- migrations/river.go. Generated: go test ./migrations -update-river-schema\n"
	for _, v := range m.AllVersions() {
		if v.Version > RiverVersion {
			break
		}
		out += fmt.Sprintf("\n-- River migration %03d %s\n%s", v.Version, v.Name, v.SQLUp)
	}
	return out, nil
}
