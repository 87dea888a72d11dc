package sale_test

import (
	"context"
	"testing"

	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
)

// holdUserLock takes user's advisory lock (queries/user_locks.sql) from a
// session outside the service, as a concurrent batch of that user would;
// the returned function releases it.
func holdUserLock(t *testing.T, e *saletest.Env, user string) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := pgtest.Connect(t, e.URL).Begin(ctx)
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
