package sale_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// connect opens a session outside the service, closed when the test ends.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// holdUserLock takes user's advisory lock (queries/user_locks.sql) from a
// session outside the service, as a concurrent batch of that user would;
// the returned function releases it.
func holdUserLock(t *testing.T, e *saletest.Env, user string) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := connect(t, e.URL).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(1, hashtext($1))", user); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := tx.Rollback(ctx); err != nil {
			t.Error(err)
		}
	}
}

// waitingForLock waits until one service backend waits for an advisory
// lock and returns its pid.
func waitingForLock(t *testing.T, observer *pgx.Conn, not int32) int32 {
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
