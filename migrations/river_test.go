package migrations_test

import (
	"flag"
	"os"
	"testing"

	"github.com/flashsale/flashsale/migrations"
)

var updateRiverSchema = flag.Bool("update-river-schema", false, "rewrite db/river_schema.sql from River's migrations")

// sqlc reads River's tables from db/river_schema.sql; the database gets
// them from River's migrator. This keeps the two the same.
func TestRiverSchemaFileIsRiversOwn(t *testing.T) {
	want, err := migrations.RiverSchema()
	if err != nil {
		t.Fatal(err)
	}
	const path = "../db/river_schema.sql"
	if *updateRiverSchema {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is not River's schema at version %d: run go test ./migrations -update-river-schema", path, migrations.RiverVersion)
	}
}
