package pgtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// Scalar runs a query that returns one integer.
func Scalar(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// Connect opens a session outside the service, closed when the test ends.
func Connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// WaitingForLock waits until one backend of the test's database waits for an advisory
// lock and returns its pid.
func WaitingForLock(t testing.TB, observer *pgx.Conn, not int32) int32 {
	t.Helper()
	var pid int32
	testutil.Poll(t, 5*time.Second, func() error {
		err := observer.QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event = 'advisory' AND pid <> $1`, not).Scan(&pid)
		if errors.Is(err, pgx.ErrNoRows) {
			return errors.New("no batch waits for the user lock yet")
		}
		return err
	})
	return pid
}
