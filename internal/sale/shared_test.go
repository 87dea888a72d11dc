package sale_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/saletest"
	"github.com/flashsale/flashsale/internal/testfactory"
)

// With shared reads, pollers of a sale's counts and of an item page are
// answered from one read per maxAge: here, while the only read connection
// is taken, so any caller that went to the database would fail after the
// timeout. The checkout made meanwhile shows only where nothing is shared.
func TestSharedReadsAnswerPollersFromOneRead(t *testing.T) {
	t.Parallel()
	env := saletest.New(t)
	ctx := context.Background()
	readPool, err := database.Open(ctx, env.URL, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(readPool.Close)
	shared := sale.NewService(env.Pool, env.Settings, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)),
		sale.WithReadPool(readPool), sale.WithSharedReads(time.Hour))
	t.Cleanup(shared.Close)

	first, err := shared.Summary(ctx, env.Sale.ID)
	if err != nil {
		t.Fatal(err)
	}
	page, err := shared.Items(ctx, env.Sale.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := readPool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	testfactory.Hold(t, env, "shared-reader", 1)

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 50 {
		wg.Go(func() {
			s, err := shared.Summary(ctx, env.Sale.ID)
			if err == nil && s != first {
				err = errors.New("summary differs from the shared read")
			}
			if err != nil {
				errs <- err
			}
			p, err := shared.Items(ctx, env.Sale.ID, 0, 10)
			if err == nil && !reflect.DeepEqual(p, page) {
				err = errors.New("item page differs from the shared read")
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("shared read: %v", err)
	}
	// Another page was never read: it needs the taken connection.
	if _, err := shared.Items(ctx, env.Sale.ID, 10, 10); !errors.Is(err, sale.ErrUnavailable) {
		t.Errorf("unshared page with the read connection taken: got %v, want ErrUnavailable", err)
	}
	conn.Release()

	now, err := env.Service.Summary(ctx, env.Sale.ID)
	if err != nil {
		t.Fatal(err)
	}
	if now.UnitsHeld != first.UnitsHeld+1 {
		t.Errorf("without sharing: units held %d, want %d", now.UnitsHeld, first.UnitsHeld+1)
	}
}
