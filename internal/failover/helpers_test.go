package failover_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/database"
)

var errWait = errors.New("not yet")

func atLeast(what string, n, want int) error {
	if n < want {
		return fmt.Errorf("%d %s, want at least %d", n, what, want)
	}
	return nil
}

func migrate(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	pool, err := database.Open(ctx, url, 2, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := database.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
}
