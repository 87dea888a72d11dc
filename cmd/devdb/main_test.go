package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestEnsureGitignoreAppendsOnlyMissingLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".gitignore")
	// No trailing newline, and one wanted line already present.
	if err := os.WriteFile(path, []byte("node_modules\n/bin/"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second call must change nothing
		if err := ensureGitignore(path); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "node_modules\n/bin/\n.pgdata/\n/bench/results/\n"
	if string(got) != want {
		t.Fatalf(".gitignore = %q, want %q", got, want)
	}
}

func TestEnsureGitignoreCreatesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".gitignore")
	if err := ensureGitignore(path); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := ".pgdata/\n/bin/\n/bench/results/\n"; string(got) != want {
		t.Fatalf(".gitignore = %q, want %q", got, want)
	}
}

func TestSortByVersionDescIsNumeric(t *testing.T) {
	dirs := []string{"/usr/lib/postgresql/9.6/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/10/bin"}
	sortByVersionDesc(dirs)
	want := []string{"/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/10/bin", "/usr/lib/postgresql/9.6/bin"}
	if !reflect.DeepEqual(dirs, want) {
		t.Fatalf("got %v, want %v", dirs, want)
	}
}

func TestFindPGBinHonoursOverride(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // nothing on PATH
	t.Setenv("DEVDB_PG_BIN_DIRS", "")
	if b, ok := findPGBin(); ok {
		t.Fatalf("empty DEVDB_PG_BIN_DIRS found %v", b)
	}

	incomplete, full := t.TempDir(), t.TempDir()
	writeExec(t, filepath.Join(incomplete, "initdb")) // pg_ctl missing: must be skipped
	writeExec(t, filepath.Join(full, "initdb"))
	writeExec(t, filepath.Join(full, "pg_ctl"))
	t.Setenv("DEVDB_PG_BIN_DIRS", incomplete+string(os.PathListSeparator)+full)
	b, ok := findPGBin()
	if !ok || b.initdb != filepath.Join(full, "initdb") || b.pgCtl != filepath.Join(full, "pg_ctl") {
		t.Fatalf("findPGBin() = %v, %v; want binaries from %s", b, ok, full)
	}
}

func TestServerAnswered(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("dial: %w", os.ErrDeadlineExceeded), false},
		{fmt.Errorf("connect: %w", &pgconn.PgError{Code: "57P03"}), false}, // still starting
		{fmt.Errorf("connect: %w", &pgconn.PgError{Code: "28000"}), true},
	}
	for _, c := range cases {
		if got := serverAnswered(c.err); got != c.want {
			t.Errorf("serverAnswered(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func writeExec(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}
