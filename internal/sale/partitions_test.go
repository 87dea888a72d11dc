package sale_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// partitionOf names the partition of checkout_attempts whose bound is sale
// id, from the catalogs (not from the naming convention), or "".
func partitionOf(t *testing.T, pool *pgxpool.Pool, id int64) string {
	t.Helper()
	var name string
	err := pool.QueryRow(context.Background(), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'checkout_attempts'::regclass
		  AND pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES IN (%L)', $1::bigint)`, id).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return ""
	}
	if err != nil {
		t.Fatalf("partition of sale %d: %v", id, err)
	}
	return name
}

// Each sale gets its partition when it is created, and each attempt lands
// in its sale's partition: attempts of two sales in two partitions.
func TestAttemptsPartitionPerSale(t *testing.T) {
	t.Parallel()
	e := saletest.New(t, saletest.WithDuration(2*time.Second), saletest.WithUnits(20), saletest.WithItems(5),
		saletest.WithHoldTTL(time.Minute))
	ctx := context.Background()
	ids := func() []int64 {
		rows, err := e.Pool.Query(ctx, "SELECT id FROM sales ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	for _, id := range ids() {
		if p := partitionOf(t, e.Pool, id); p != fmt.Sprintf("checkout_attempts_sale_%d", id) {
			t.Fatalf("sale %d has partition %q, want checkout_attempts_sale_%d", id, p, id)
		}
	}

	saletest.RunScheduler(t, e.Service) // 2 s windows: the sales after these
	first := saletest.Hold(t, e, "ann", 1)
	testutil.Poll(t, 5*time.Second, func() error {
		if cur, err := e.Service.Current(ctx); err != nil || cur.ID == first.SaleID {
			return fmt.Errorf("current sale %+v (%v), want one after %d", cur, err, first.SaleID)
		}
		return nil
	})
	second := saletest.Hold(t, e, "ann", 2)
	if second.SaleID == first.SaleID {
		t.Fatalf("both holds in sale %d", first.SaleID)
	}
	for _, h := range []sale.Hold{first, second} {
		if want := fmt.Sprintf("%d.", h.SaleID); len(h.Code) != len(want)+22 || h.Code[:len(want)] != want {
			t.Errorf("code %q of a hold in sale %d, want %q and 22 characters", h.Code, h.SaleID, want)
		}
	}

	rows, err := e.Pool.Query(ctx, `SELECT tableoid::regclass::text, sale_id, count(*) FROM checkout_attempts
		GROUP BY 1, 2 ORDER BY 2`)
	if err != nil {
		t.Fatal(err)
	}
	type where struct {
		partition string
		sale      int64
		n         int64
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (where, error) {
		var w where
		return w, r.Scan(&w.partition, &w.sale, &w.n)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []where{{partitionOf(t, e.Pool, first.SaleID), first.SaleID, 1}, {partitionOf(t, e.Pool, second.SaleID), second.SaleID, 1}}
	if !slices.Equal(got, want) {
		t.Fatalf("attempts by partition: %+v, want %+v", got, want)
	}

	// The hold of the first sale is bought during the second, its attempt
	// read from the first sale's partition.
	p := saletest.Buy(t, e, first)
	if p.SaleID != first.SaleID || p.Item.ID != 1 {
		t.Fatalf("purchase of the first sale's hold: %+v", p)
	}
	if _, err := e.Service.Purchase(ctx, fmt.Sprintf("%d.%s", second.SaleID, first.Code[len(fmt.Sprint(first.SaleID))+1:]), ""); !errors.Is(err, sale.ErrCodeNotFound) {
		t.Fatalf("purchase of the first hold's code under the second sale's id: %v, want ErrCodeNotFound", err)
	}
}

// Retention drops the attempts of the sales that ended long enough ago,
// never those of the current or next sale nor of a recent one, each sale
// once however many servers run it at the same time.
func TestAttemptsRetention(t *testing.T) {
	t.Parallel()
	settings := saletest.DefaultSettings
	settings.Duration = time.Hour
	settings.AttemptsRetention = 24 * time.Hour
	e := saletest.New(t, saletest.WithSettings(settings))
	other := saletest.New(t, saletest.WithSettings(settings), saletest.WithDatabase(e.URL))
	ctx := context.Background()

	// Sales ten, nine and eight days ago (past retention), and one two
	// hours ago (within it), each with attempts; and one without a sale.
	start := sale.WindowStart(e.Sale.StartsAt, time.Hour)
	var old, recent []int64
	for _, ago := range []time.Duration{240 * time.Hour, 216 * time.Hour, 192 * time.Hour, 2 * time.Hour} {
		if _, err := e.Service.EnsureSale(ctx, start.Add(-ago)); err != nil {
			t.Fatal(err)
		}
		var id int64
		if err := e.Pool.QueryRow(ctx, "SELECT id FROM sales WHERE starts_at = $1", start.Add(-ago)).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if ago > 24*time.Hour {
			old = append(old, id)
		} else {
			recent = append(recent, id)
		}
	}
	if _, err := e.Pool.Exec(ctx, `INSERT INTO checkout_attempts (sale_id, user_id, item_id, outcome)
		SELECT s.id, 'user' || g, 1, 'sold_out'::checkout_outcome FROM sales s, generate_series(1, 3) AS g
		UNION ALL SELECT NULL, 'early', 1, 'no_active_sale'`); err != nil {
		t.Fatal(err)
	}
	saletest.Hold(t, e, "cara", 1) // in the current sale

	// Two servers at once; one that gives up on the lock is retried, as
	// the scheduler's next run would.
	var mu sync.Mutex
	var dropped []int64
	var failed []*sale.Service
	var wg sync.WaitGroup
	for _, svc := range []*sale.Service{e.Service, other.Service} {
		wg.Go(func() {
			ids, err := svc.DropOldAttempts(ctx)
			mu.Lock()
			defer mu.Unlock()
			dropped = append(dropped, ids...)
			if err != nil {
				t.Logf("DropOldAttempts: %v (retried)", err)
				failed = append(failed, svc)
			}
		})
	}
	wg.Wait()
	for _, svc := range failed {
		ids, err := svc.DropOldAttempts(ctx)
		if err != nil {
			t.Fatalf("DropOldAttempts again: %v", err)
		}
		dropped = append(dropped, ids...)
	}
	slices.Sort(dropped)
	if !slices.Equal(dropped, old) {
		t.Fatalf("dropped the attempts of sales %v, want %v, each once", dropped, old)
	}
	if ids, err := e.Service.DropOldAttempts(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("a second run dropped %v (%v), want nothing", ids, err)
	}

	for _, id := range old {
		if p := partitionOf(t, e.Pool, id); p != "" {
			t.Errorf("sale %d still has partition %s", id, p)
		}
		var attempts *int64
		if err := e.Pool.QueryRow(ctx, "SELECT checkout_attempts FROM sale_summary WHERE id = $1", id).Scan(&attempts); err != nil || attempts != nil {
			t.Errorf("sale_summary of sale %d: attempts %v (%v), want NULL: dropped", id, attempts, err)
		}
	}
	for _, id := range append(recent, e.Sale.ID) {
		if n := pgtest.Scalar(t, e.Pool, "SELECT checkout_attempts FROM sale_summary WHERE id = $1", id); n < 1 {
			t.Errorf("sale %d: %d attempts, want its attempts kept", id, n)
		}
	}
	if n := pgtest.Scalar(t, e.Pool, "SELECT count(*) FROM checkout_attempts WHERE sale_id IS NULL"); n != 1 {
		t.Errorf("%d attempts without a sale, want 1 kept", n)
	}
	if n := pgtest.Scalar(t, e.Pool, "SELECT count(*) FROM sales WHERE attempts_dropped_at IS NOT NULL"); n != int64(len(old)) {
		t.Errorf("%d sales marked dropped, want %d", n, len(old))
	}
	// The current and next sale keep their partitions, and take checkouts.
	saletest.Purchase(t, e, "dan", 2)
	var nextID int64
	if err := e.Pool.QueryRow(ctx, "SELECT id FROM sales WHERE starts_at = $1", e.Sale.EndsAt).Scan(&nextID); err != nil {
		t.Fatal(err)
	}
	if p := partitionOf(t, e.Pool, nextID); p == "" {
		t.Errorf("the next sale %d lost its partition", nextID)
	}
}

// The migration to partitions moves every existing attempt into its sale's
// partition, and back.
func TestMigrationKeepsAttemptsAndCodes(t *testing.T) {
	t.Parallel()
	url := pgtest.New(t)
	ctx := context.Background()
	pool, err := database.Open(ctx, url, 2, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := database.DownTo(ctx, pool, 4); err != nil {
		t.Fatal(err)
	}
	// A sale open now as the service from before 00005 left it, stopped for
	// one HOLD_TTL before the upgrade (as the upgrade notes require): two
	// expired holds, refusals, and attempts with no sale.
	if _, err := pool.Exec(ctx, `
		INSERT INTO sales (starts_at, ends_at, units_total, items, per_user_limit, hold_ttl)
		VALUES (now() - interval '1 minute', now() + interval '1 day', 4, 2, 10, interval '10 minutes');
		INSERT INTO items (sale_id, item_id, name, price_cents) VALUES (1, 1, 'Old Kettle #1', 1999), (1, 2, 'Old Drone #2', 2999);
		INSERT INTO units (sale_id, item_id) SELECT 1, 1 + g % 2 FROM generate_series(0, 3) AS g;
		UPDATE units SET held_by = 'ann', hold_code = 'legacyLiveCode', held_until = now() - interval '2 minutes' WHERE id = 1;
		UPDATE units SET held_by = 'bob', hold_code = 'legacyGoneCode', held_until = now() - interval '1 minute' WHERE id = 2;
		INSERT INTO checkout_attempts (sale_id, user_id, item_id, outcome, code, unit_id, expires_at)
		VALUES (1, 'ann', 1, 'held', 'legacyLiveCode', 1, now() - interval '2 minutes'),
		       (1, 'bob', 2, 'held', 'legacyGoneCode', 2, now() - interval '1 minute'),
		       (1, 'cy', 9, 'item_not_found', NULL, NULL, NULL),
		       (NULL, 'dee', 1, 'no_active_sale', NULL, NULL, NULL),
		       (NULL, 'eve', 1, 'rate_limited', NULL, NULL, NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := database.Up(ctx, pool); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sql  string
		want int64
	}{
		{"SELECT count(*) FROM checkout_attempts_sale_1 WHERE sale_id = 1", 3},
		{"SELECT count(*) FROM checkout_attempts_no_sale WHERE sale_id IS NULL", 2},
		{"SELECT count(*) FROM checkout_attempts WHERE id BETWEEN 1 AND 5", 5},
		{"SELECT checkout_attempts FROM sale_summary WHERE id = 1", 3},
		{"SELECT units_held FROM sale_summary WHERE id = 1", 0},
		{"SELECT units_available FROM sale_summary WHERE id = 1", 4},
	} {
		if got := pgtest.Scalar(t, pool, c.sql); got != c.want {
			t.Errorf("after the migration, %s: %d, want %d", c.sql, got, c.want)
		}
	}

	svc := sale.NewService(pool, saletest.DefaultSettings, 5*time.Second, testutil.Logger(t, slog.LevelWarn))
	t.Cleanup(svc.Close)
	// A code from before 00005 names no sale: it is not found, and sells
	// nothing (its hold expired before the upgrade).
	for _, code := range []string{"legacyLiveCode", "legacyGoneCode", "neverIssued"} {
		if _, err := svc.Purchase(ctx, code, ""); !errors.Is(err, sale.ErrCodeNotFound) {
			t.Errorf("code %q: %v, want ErrCodeNotFound", code, err)
		}
	}
	if n := pgtest.Scalar(t, pool, "SELECT count(*) FROM purchases"); n != 0 {
		t.Errorf("%d purchases made with codes from before 00005, want 0", n)
	}
	// New attempts get ids after the copied ones.
	h, err := svc.Checkout(ctx, sale.CheckoutRequest{UserID: "fay", ItemID: 1})
	if err != nil {
		t.Fatal(err)
	}
	if n := pgtest.Scalar(t, pool, "SELECT id FROM checkout_attempts WHERE code = $1", h.Code); n != 6 {
		t.Errorf("the first attempt after the migration has id %d, want 6", n)
	}

	// And back: the rows return to one table.
	if _, err := database.DownTo(ctx, pool, 4); err != nil {
		t.Fatal(err)
	}
	if n := pgtest.Scalar(t, pool, "SELECT count(*) FROM checkout_attempts"); n != 6 {
		t.Errorf("after rolling back: %d attempts, want 6", n)
	}
	if _, err := database.Up(ctx, pool); err != nil {
		t.Fatal(err)
	}
}

// Making the next sale's partition does not wait for the checkouts of the
// current one (ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE on
// checkout_attempts, which a checkout's ROW EXCLUSIVE passes), so none of
// them waits for it either. Dropping a partition does wait (ACCESS
// EXCLUSIVE): it gives up after its lock_timeout and drops nothing, and
// succeeds once the checkouts are done.
func TestPartitionMaintenanceBesideCheckouts(t *testing.T) {
	t.Parallel()
	settings := saletest.DefaultSettings
	settings.Duration = time.Hour
	settings.AttemptsRetention = time.Hour
	e := saletest.New(t, saletest.WithSettings(settings))
	ctx := context.Background()
	if _, err := e.Service.EnsureSale(ctx, e.Sale.StartsAt.Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}

	// A checkout batch in flight: its attempt stored, its unit claimed,
	// not committed.
	tx, err := pgtest.Connect(t, e.URL).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `WITH u AS (UPDATE units SET held_until = held_until
			WHERE id = (SELECT min(id) FROM units WHERE sale_id = $1) RETURNING id)
		INSERT INTO checkout_attempts (sale_id, user_id, item_id, outcome) VALUES ($1, 'inflight', 1, 'sold_out')`,
		e.Sale.ID); err != nil {
		t.Fatal(err)
	}
	quick, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	later := e.Sale.EndsAt.Add(time.Hour) // after the next sale
	if created, err := e.Service.EnsureSale(quick, later); err != nil || !created {
		t.Fatalf("EnsureSale beside an open checkout: created %v, %v", created, err)
	}
	var id int64
	if err := e.Pool.QueryRow(ctx, "SELECT id FROM sales WHERE starts_at = $1", later).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if p := partitionOf(t, e.Pool, id); p == "" {
		t.Fatalf("sale %d made without its partition", id)
	}

	start := time.Now()
	if ids, err := e.Service.DropOldAttempts(ctx); err == nil || len(ids) != 0 {
		t.Fatalf("DropOldAttempts beside an open checkout: dropped %v, %v; want it to give up", ids, err)
	}
	t.Logf("DropOldAttempts gave up after %v", time.Since(start))
	if n := pgtest.Scalar(t, e.Pool, "SELECT count(*) FROM sales WHERE attempts_dropped_at IS NOT NULL"); n != 0 {
		t.Fatalf("%d sales marked dropped by a run that gave up", n)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if ids, err := e.Service.DropOldAttempts(ctx); err != nil || len(ids) != 1 {
		t.Fatalf("DropOldAttempts once the checkout is done: dropped %v, %v; want the sale of two days ago", ids, err)
	}
}
