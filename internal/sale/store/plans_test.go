package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/db"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
)

// The hot queries must use the index meant for them from the first request
// of a sale (statistics are made when the sale is created, nothing else
// prepares the database) and still when the tables hold a sold-out sale
// and hundreds of thousands of attempts that nothing has analyzed since.
// A sequential scan or the wrong index there turns a 0.1 ms lookup into a
// walk over every unit or attempt.
func TestHotQueriesUseTheirIndexes(t *testing.T) {
	t.Parallel()
	settings := sale.Settings{Duration: time.Hour, Units: 10000, Items: 10000, PerUserLimit: 10, HoldTTL: 10 * time.Minute}

	t.Run("fresh sale", func(t *testing.T) {
		t.Parallel()
		pool, cur := planDB(t, settings)
		checkPlans(t, pool, cur, 1)
		checkPlans(t, pool, cur, 64)
	})

	// 100 units per item: the claim must still go through the item's
	// index, not scan the sale's free units and filter by item.
	t.Run("fresh sale of 100 items", func(t *testing.T) {
		t.Parallel()
		few := settings
		few.Items = 100
		pool, cur := planDB(t, few)
		checkPlans(t, pool, cur, 1)
		checkPlans(t, pool, cur, 64)
	})

	t.Run("sold-out sale with many attempts", func(t *testing.T) {
		t.Parallel()
		pool, cur := planDB(t, settings)
		ctx := context.Background()
		// Every unit sold, and 300,000 stored attempts (written straight in
		// SQL): what a sale looks like after its herd and a storm,
		// deliberately not analyzed.
		saletest.SellOut(t, pool, cur.ID)
		if _, err := pool.Exec(ctx, `INSERT INTO checkout_attempts (sale_id, user_id, item_id, outcome)
			SELECT $1, 'user' || (g % 5000), 1 + g % 100, 'sold_out' FROM generate_series(1, 300000) AS g`, cur.ID); err != nil {
			t.Fatal(err)
		}
		checkPlans(t, pool, cur, 1)
		checkPlans(t, pool, cur, 64)
	})

	// What months of hourly sales leave, in miniature: 200 past sales,
	// each with its partition of attempts and its units (half of them sold
	// out), added after the current sale was analyzed. Every query of one
	// sale reads that sale's partition and that sale's units only.
	t.Run("200 past sales", func(t *testing.T) {
		t.Parallel()
		pool, cur := planDB(t, settings)
		start := time.Now()
		addPastSales(t, pool, cur, 200, 500)
		t.Logf("200 past sales added in %v", time.Since(start))
		checkPlans(t, pool, cur, 1)
		checkPlans(t, pool, cur, 64)
		checkReadPlans(t, pool, cur)
		checkCustomPlansChosen(t, pool, cur)
	})
}

// The reads behind GET /sales/{id}, /sales/current/items (its largest
// page, all or available items only), the live page's item counts and
// /users/{id}/purchases, on a fresh sale and beside hundreds of
// past ones: bounded by one sale's units, never a walk over every unit.
func TestReadsAreBoundedBySale(t *testing.T) {
	t.Parallel()
	settings := sale.Settings{Duration: time.Hour, Units: 10000, Items: 10000, PerUserLimit: 10, HoldTTL: 10 * time.Minute}
	t.Run("fresh sale", func(t *testing.T) {
		t.Parallel()
		pool, cur := planDB(t, settings)
		checkReadPlans(t, pool, cur)
	})
	t.Run("fresh sale of 100 items", func(t *testing.T) {
		t.Parallel()
		few := settings
		few.Items = 100
		pool, cur := planDB(t, few)
		checkReadPlans(t, pool, cur)
	})
}

// addPastSales adds n sales of units each, ending where cur starts, with
// their items, units and partition, in SQL and without ANALYZE: half sold
// out, each with 500 attempts (20 held).
func addPastSales(t *testing.T, pool *pgxpool.Pool, cur sale.Sale, n, units int) {
	t.Helper()
	ctx := context.Background()
	window := cur.EndsAt.Sub(cur.StartsAt)
	const past = "s.starts_at < $1"
	for _, step := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO sales (starts_at, ends_at, units_total, items, per_user_limit, hold_ttl)
		  SELECT $1::timestamptz - g * $2::interval, $1::timestamptz - (g - 1) * $2::interval, $3, 100, 10, interval '10 minutes'
		  FROM generate_series(1, $4::integer) AS g`, []any{cur.StartsAt, window.String(), units, n}},
		{`SELECT count(checkout_attempts_partition_create(s.id)) FROM sales s WHERE ` + past, []any{cur.StartsAt}},
		{`INSERT INTO items (sale_id, item_id, sku, units, name, price_cents)
		  SELECT s.id, g, 'past' || g, s.units_total / s.items + (g <= s.units_total % s.items)::integer, 'Past #' || g, 199
		  FROM sales s, generate_series(1, s.items) AS g WHERE ` + past, []any{cur.StartsAt}},
		{`INSERT INTO units (sale_id, item_id, held_by, hold_code, held_until, sold_at)
		  SELECT s.id, 1 + g % s.items, CASE WHEN s.id % 2 = 0 THEN 'buyer' END,
		         CASE WHEN s.id % 2 = 0 THEN s.id || '.past' || g END,
		         CASE WHEN s.id % 2 = 0 THEN s.starts_at ELSE '-infinity' END,
		         CASE WHEN s.id % 2 = 0 THEN s.starts_at END
		  FROM sales s, generate_series(0, s.units_total - 1) AS g WHERE ` + past, []any{cur.StartsAt}},
		{`INSERT INTO checkout_attempts (sale_id, user_id, item_id, outcome, code, unit_id, expires_at)
		  SELECT s.id, 'user' || g, 1, CASE WHEN g <= 20 THEN 'held' ELSE 'sold_out' END::checkout_outcome,
		         CASE WHEN g <= 20 THEN s.id || '.attempt' || g END, CASE WHEN g <= 20 THEN g END,
		         CASE WHEN g <= 20 THEN s.starts_at END
		  FROM sales s, generate_series(1, 500) AS g WHERE ` + past, []any{cur.StartsAt}},
	} {
		if _, err := pool.Exec(ctx, step.sql, step.args...); err != nil {
			t.Fatalf("add %d past sales: %v\n%s", n, err, step.sql)
		}
	}
	if got := pgtest.Scalar(t, pool, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'checkout_attempts'::regclass"); got < int64(n) {
		t.Fatalf("%d partitions of checkout_attempts after adding %d past sales", got, n)
	}
}

// checkReadPlans explains the API's reads of sale cur (as the service
// sends them) and asserts each probes its indexes by cur's id.
func checkReadPlans(t *testing.T, pool *pgxpool.Pool, cur sale.Sale) {
	t.Helper()
	q := db.New()
	ctx := context.Background()
	cases := []struct {
		name string
		call func(db.DBTX)
		want []string
	}{
		{"SaleStockGet", func(d db.DBTX) { _, _ = q.SaleStockGet(ctx, d, cur.ID) }, []string{"buyers_pkey"}},
		{"ItemsListWithFreeUnits", func(d db.DBTX) {
			_, _ = q.ItemsListWithFreeUnits(ctx, d, db.ItemsListWithFreeUnitsParams{SaleID: cur.ID, AfterItemID: 0, MaxItems: 1000})
		}, []string{"units_free_by_item"}},
		{"ItemsListAvailableWithFreeUnits", func(d db.DBTX) {
			_, _ = q.ItemsListAvailableWithFreeUnits(ctx, d, db.ItemsListAvailableWithFreeUnitsParams{SaleID: cur.ID, AfterItemID: 0, MaxItems: 1000})
		}, nil}, // either index of the free units: one range scan by the sale (checked below)
		// The live page's watcher, once a second per server.
		{"ItemCountsList", func(d db.DBTX) { _, _ = q.ItemCountsList(ctx, d, cur.ID) }, nil},
		{"SaleNextStart", func(d db.DBTX) { _, _ = q.SaleNextStart(ctx, d, cur.EndsAt) }, nil},
		{"SaleGetCurrent", func(d db.DBTX) { _, _ = q.SaleGetCurrent(ctx, d) }, nil},
		{"PurchasesListByUser", func(d db.DBTX) {
			_, _ = q.PurchasesListByUser(ctx, d, db.PurchasesListByUserParams{SaleID: cur.ID, UserID: "user1"})
		}, []string{"purchases_sale_user"}},
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, c := range cases {
		rec := &recorder{}
		c.call(rec)
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			plan := checkPlan(t, conn.Conn(), cur, 1, c.name, mode, c.want, rec)
			// Every read of units is an index probe by the sale.
			plan.walk(func(n *planNode) {
				if strings.HasPrefix(n.IndexName, "units_") && !strings.Contains(n.IndexCond, "sale_id =") {
					t.Errorf("%s, %s: reads %s by %q, not by sale", c.name, mode, n.IndexName, n.IndexCond)
				}
			})
		}
	}
}

// checkCustomPlansChosen: with many partitions, PostgreSQL plans the code
// lookups for each sale id they are given (a custom plan that names one
// partition), rather than keep a generic plan that lists every partition
// and, on PostgreSQL 15, locks them all at each execution.
func checkCustomPlansChosen(t *testing.T, pool *pgxpool.Pool, cur sale.Sale) {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	rec := &recorder{}
	_, _ = db.New().PurchasesGetByCodes(ctx, rec, db.PurchasesGetByCodesParams{SaleID: cur.ID, Codes: []string{"x"}})
	for _, q := range []string{"SET plan_cache_mode = auto", "PREPARE lookup AS " + rec.sql} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		if _, err := conn.Exec(ctx, "DEALLOCATE lookup"); err != nil {
			t.Fatal(err)
		}
	}()
	for i := range 12 {
		if _, err := conn.Exec(ctx, fmt.Sprintf("EXECUTE lookup(%d, ARRAY['%d.code%d'])", cur.ID-int64(i), cur.ID-int64(i), i)); err != nil {
			t.Fatal(err)
		}
	}
	var generic, custom int64
	if err := conn.QueryRow(ctx, "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = 'lookup'").Scan(&generic, &custom); err != nil {
		t.Fatal(err)
	}
	if generic != 0 || custom != 12 {
		t.Errorf("PurchasesGetByCodes over 12 executions: %d generic plans, %d custom plans; want a custom plan each time", generic, custom)
	}
}

func planDB(t *testing.T, settings sale.Settings) (*pgxpool.Pool, sale.Sale) {
	t.Helper()
	e := saletest.New(t, saletest.WithSettings(settings))
	return e.Pool, e.Sale
}

// checkPlans explains every query of the checkout and purchase batches as
// the service sends it for a batch of n requests (the generated SQL, with
// arguments) and asserts the indexes each one must use, and that none
// reads a big table sequentially.
func checkPlans(t *testing.T, pool *pgxpool.Pool, cur sale.Sale, n int) {
	t.Helper()
	q := db.New()
	ctx := context.Background()
	users, items, newCodes, codes := make([]string, n), make([]int64, n), make([]string, n), make([]string, n)
	for i := range n {
		users[i], items[i], newCodes[i], codes[i] = fmt.Sprintf("user%d", i), int64(1+i), fmt.Sprintf("new-code-%d", i), fmt.Sprintf("%d.code%d", cur.ID, i+1)
	}
	keys, limited := make([]string, n), make([]bool, n)
	for i := range n {
		if i%2 == 0 {
			keys[i] = fmt.Sprintf("key-%d", i) // the others carry none
		}
	}
	limited[n-1] = true
	claim := db.CheckoutsDecideParams{
		UserIDs: users, ItemIDs: items, Codes: newCodes, IdempotencyKeys: keys, RateLimited: limited,
		IdempotencyKeyTTL: 24 * time.Hour,
	}
	cases := []struct {
		name string
		call func(db.DBTX)
		want []string // index names
	}{
		{"CheckoutsDecide", func(d db.DBTX) { _, _ = q.CheckoutsDecide(ctx, d, claim) },
			[]string{"units_free_by_sale", "idempotency_keys_pkey", "buyers_pkey", "units_held_by", "units_free_by_item", "units_pkey"}},
		{"CheckoutAttemptsInsertIfSoldOut", func(d db.DBTX) {
			_, _ = q.CheckoutAttemptsInsertIfSoldOut(ctx, d, db.CheckoutAttemptsInsertIfSoldOutParams{UserIDs: users, ItemIDs: items, RateLimited: limited})
		}, []string{"units_free_by_sale"}},
		{"UnitsLockHeld", func(d db.DBTX) { _, _ = q.UnitsLockHeld(ctx, d, codes) }, []string{"units_hold_code_key"}},
		{"UserLocksTakeForCodes", func(d db.DBTX) { _, _ = q.UserLocksTakeForCodes(ctx, d, codes) },
			[]string{"units_hold_code_key"}},
		{"UnitsSell", func(d db.DBTX) { _, _ = q.UnitsSell(ctx, d, codes) }, []string{"units_hold_code_key"}},
		{"PurchasesGetByCodes", func(d db.DBTX) {
			_, _ = q.PurchasesGetByCodes(ctx, d, db.PurchasesGetByCodesParams{SaleID: cur.ID, Codes: codes})
		}, []string{attemptsCodeKey(cur.ID), "purchases_code_key", "buyers_pkey"}},
		{"CheckoutHolderByCode", func(d db.DBTX) {
			_, _ = q.CheckoutHolderByCode(ctx, d, db.CheckoutHolderByCodeParams{SaleID: cur.ID, Code: codes[0]})
		}, []string{attemptsCodeKey(cur.ID)}},
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, c := range cases {
		rec := &recorder{}
		c.call(rec)
		if rec.sql == "" {
			t.Fatalf("%s: no SQL recorded", c.name)
		}
		// PostgreSQL plans a prepared statement (pgx prepares every query)
		// for its arguments the first five times, then usually keeps one
		// generic plan: both must be right.
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			checkPlan(t, conn.Conn(), cur, n, c.name, mode, c.want, rec)
		}
	}
}

func checkPlan(t *testing.T, conn *pgx.Conn, cur sale.Sale, n int, name, mode string, want []string, rec *recorder) *planNode {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{"SET plan_cache_mode = " + mode, "PREPARE hot AS " + rec.sql} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %s: %v", name, q, err)
		}
	}
	defer func() {
		if _, err := conn.Exec(ctx, "DEALLOCATE hot"); err != nil {
			t.Fatal(err)
		}
	}()
	// EXECUTE takes no bound parameters: the arguments go in as literals.
	literals := make([]string, len(rec.args))
	for i, a := range rec.args {
		literals[i] = literal(t, a)
	}
	var raw []byte
	explain := "EXPLAIN (FORMAT JSON) EXECUTE hot"
	if len(literals) > 0 {
		explain += "(" + strings.Join(literals, ", ") + ")"
	}
	if err := conn.QueryRow(ctx, explain).Scan(&raw); err != nil {
		t.Fatalf("%s: explain: %v", name, err)
	}
	var plans []struct{ Plan planNode }
	if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("%s: decode plan: %v", name, err)
	}
	// items is not here: a few hundred rows of it (100 items per sale) are
	// rightly read whole, and with 10,000 items per sale the planner
	// already probes its key.
	big := []string{"units", "purchases", "buyers"}
	var used, problems []string
	plans[0].Plan.walk(func(n *planNode) {
		if n.IndexName != "" {
			used = append(used, n.IndexName)
		}
		attempts := strings.HasPrefix(n.RelationName, "checkout_attempts")
		if n.NodeType == "Seq Scan" && (attempts || slices.Contains(big, n.RelationName)) {
			problems = append(problems, "sequential scan of "+n.RelationName)
		}
		// A lookup of one sale's codes reads that sale's partition only.
		if attempts && strings.Contains(n.NodeType, "Scan") && n.RelationName != attemptsPartition(cur.ID) {
			problems = append(problems, "reads "+n.RelationName)
		}
	})
	for _, idx := range want {
		if !slices.Contains(used, idx) {
			problems = append(problems, "does not use "+idx)
		}
	}
	if len(problems) > 0 {
		pretty, _ := json.MarshalIndent(plans[0].Plan, "", "  ")
		t.Errorf("sale %d, batch of %d, %s, %s: %s (indexes used: %v)\nplan: %s",
			cur.ID, n, name, mode, strings.Join(problems, "; "), used, pretty)
	}
	return &plans[0].Plan
}

// attemptsPartition is the partition of checkout_attempts that holds the
// attempts of sale id (checkout_attempts_partition_create, migrations/00005).
func attemptsPartition(id int64) string { return fmt.Sprintf("checkout_attempts_sale_%d", id) }

// attemptsCodeKey is checkout_attempts_code_key on the partition of sale id.
func attemptsCodeKey(id int64) string { return attemptsPartition(id) + "_code_sale_id_idx" }

// literal renders an argument of the hot queries as SQL.
func literal(t *testing.T, arg any) string {
	t.Helper()
	var elems []string
	var typ string
	switch a := arg.(type) {
	case []string:
		for _, v := range a {
			elems = append(elems, "'"+strings.ReplaceAll(v, "'", "''")+"'")
		}
		typ = "text[]"
	case []int64:
		for _, v := range a {
			elems = append(elems, fmt.Sprint(v))
		}
		typ = "bigint[]"
	case []bool:
		for _, v := range a {
			elems = append(elems, fmt.Sprint(v))
		}
		typ = "boolean[]"
	case float64, int64, int32:
		return fmt.Sprint(a)
	case time.Duration:
		return "'" + a.String() + "'::interval"
	case time.Time:
		return "'" + a.Format(time.RFC3339Nano) + "'::timestamptz"
	case string:
		return "'" + strings.ReplaceAll(a, "'", "''") + "'"
	default:
		t.Fatalf("no literal for %T", arg)
	}
	return "ARRAY[" + strings.Join(elems, ",") + "]::" + typ
}

type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name,omitempty"`
	IndexName    string     `json:"Index Name,omitempty"`
	Filter       string     `json:"Filter,omitempty"`
	IndexCond    string     `json:"Index Cond,omitempty"`
	Plans        []planNode `json:"Plans,omitempty"`
}

func (n *planNode) walk(f func(*planNode)) {
	f(n)
	for i := range n.Plans {
		n.Plans[i].walk(f)
	}
}

// recorder keeps the SQL and arguments a generated method sends, without
// running it.
type recorder struct {
	sql  string
	args []any
}

func (r *recorder) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	r.sql, r.args = sql, args
	return pgconn.CommandTag{}, nil
}

func (r *recorder) Query(_ context.Context, sql string, args ...any) (pgx.Rows, error) {
	r.sql, r.args = sql, args
	return nil, fmt.Errorf("recorded only")
}

func (r *recorder) QueryRow(_ context.Context, sql string, args ...any) pgx.Row {
	r.sql, r.args = sql, args
	return errRow{}
}

type errRow struct{}

func (errRow) Scan(...any) error { return fmt.Errorf("recorded only") }
