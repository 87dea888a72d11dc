package sale_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// These tests race the service itself, without HTTP: the answers counted
// here are exactly what the batches returned, so they can be held against
// the rows PostgreSQL stored.

// outcomeOf names a checkout's answer as checkout_attempts.outcome stores
// it; ok is false for an answer that is no outcome (a failure).
func outcomeOf(err error) (o string, ok bool) {
	if err == nil {
		return "held", true
	}
	o = sale.Outcome(err)
	return o, o != ""
}

// storedOutcomes counts the sale's attempts of each outcome, every outcome
// present (zero when none).
func storedOutcomes(t *testing.T, pool *pgxpool.Pool, saleID int64) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, o := range sale.CheckoutOutcomes() {
		out[o] = pgtest.Scalar(t, pool, "SELECT count(*) FROM checkout_attempts WHERE sale_id = $1 AND outcome = $2", saleID, o)
	}
	return out
}

// compareOutcomes fails unless the service answered each outcome exactly as
// many times as it stored it: an answer without its row, or a row without
// its answer, breaks "every attempt is stored, committed before the answer".
func compareOutcomes(t *testing.T, answered, stored map[string]int64) {
	t.Helper()
	for _, o := range sale.CheckoutOutcomes() {
		if answered[o] != stored[o] {
			t.Errorf("outcome %s: answered %d times, stored %d times", o, answered[o], stored[o])
		}
	}
}

// checkInvariants asserts, from the rows alone, what must hold of a sale at
// any moment, however the requests raced: each query counts violations.
func checkInvariants(t *testing.T, pool *pgxpool.Pool, saleID int64) {
	t.Helper()
	checks := []struct{ what, sql string }{
		{"units sold beyond units_total", `SELECT greatest(0,
			(SELECT count(*) FROM units WHERE sale_id = $1 AND sold_at IS NOT NULL) - (SELECT units_total FROM sales WHERE id = $1))`},
		{"units sold twice", "SELECT count(*) - count(DISTINCT unit_id) FROM purchases WHERE sale_id = $1"},
		{"codes sold twice", "SELECT count(*) - count(DISTINCT code) FROM purchases WHERE sale_id = $1"},
		{"sold units without exactly one purchase", `SELECT count(*) FROM units u WHERE u.sale_id = $1 AND u.sold_at IS NOT NULL
			AND (SELECT count(*) FROM purchases p WHERE p.unit_id = u.id) <> 1`},
		{"purchases whose unit is not sold under their code to their user", `SELECT count(*) FROM purchases p
			JOIN units u ON u.id = p.unit_id
			WHERE p.sale_id = $1 AND (u.sold_at IS NULL OR u.sale_id <> p.sale_id OR u.item_id <> p.item_id
				OR u.held_by IS DISTINCT FROM p.user_id OR u.hold_code IS DISTINCT FROM p.code)`},
		{"purchases without the held attempt behind them", `SELECT count(*) FROM purchases p WHERE p.sale_id = $1
			AND NOT EXISTS (SELECT 1 FROM checkout_attempts a WHERE a.code = p.code AND a.outcome = 'held'
				AND a.sale_id = p.sale_id AND a.user_id = p.user_id AND a.unit_id = p.unit_id)`},
		{"users above the cap in purchases", `SELECT count(*) FROM (SELECT user_id FROM purchases WHERE sale_id = $1
			GROUP BY user_id HAVING count(*) > (SELECT per_user_limit FROM sales WHERE id = $1)) over`},
		{"users above the cap in live holds plus purchases", `SELECT count(*) FROM (SELECT held_by FROM units
			WHERE sale_id = $1 AND held_by IS NOT NULL AND (sold_at IS NOT NULL OR held_until > now())
			GROUP BY held_by HAVING count(*) > (SELECT per_user_limit FROM sales WHERE id = $1)) over`},
		{"buyers above the cap, or with another sale's cap", `SELECT count(*) FROM buyers b JOIN sales s ON s.id = b.sale_id
			WHERE b.sale_id = $1 AND (b.units_bought > s.per_user_limit OR b.per_user_limit <> s.per_user_limit)`},
		{"buyers whose counter is not their number of purchases", `SELECT count(*) FROM
			(SELECT user_id, units_bought FROM buyers WHERE sale_id = $1) b
			FULL JOIN (SELECT user_id, count(*) AS n FROM purchases WHERE sale_id = $1 GROUP BY user_id) p USING (user_id)
			WHERE b.units_bought IS DISTINCT FROM p.n`},
	}
	for _, c := range checks {
		if n := pgtest.Scalar(t, pool, c.sql, saleID); n != 0 {
			t.Errorf("%s: %d", c.what, n)
		}
	}
}

func sold(t *testing.T, pool *pgxpool.Pool, saleID int64) int64 {
	t.Helper()
	return pgtest.Scalar(t, pool, "SELECT count(*) FROM units WHERE sale_id = $1 AND sold_at IS NOT NULL", saleID)
}

// The whole sale under a crowd: hundreds of goroutines check out and buy
// what they hold through two services, some buying one code twice at once.
func TestRaceCheckoutAndPurchase(t *testing.T) {
	t.Parallel()
	const (
		users, perUser = 60, 20
		workers        = 400
		// Every repeatEvery-th hold is bought by two goroutines at once.
		repeatEvery = 4
	)
	env := saletest.New(t)
	// A second service on the same database, as a second server: its
	// batches race the first one's with nothing shared but PostgreSQL.
	other := saletest.New(t, saletest.WithDatabase(env.URL))
	if other.Sale != env.Sale {
		t.Fatalf("second service sees sale %+v, the first %+v", other.Sale, env.Sale)
	}
	services := []*sale.Service{env.Service, other.Service}
	svc, saleID := env.Service, env.Sale.ID
	units, items, limit := int64(env.Settings.Units), env.Settings.Items, env.Settings.PerUserLimit
	ctx := t.Context()

	// Request j of user u asks for item (u+j)%30+1, so each item is wanted by
	// 40 distinct users. While a unit is free, a request for its item can
	// only be refused for the cap (a unit another checkout has locked is
	// being held by it), and caps never come down here (holds outlive the
	// test and are all bought). A unit left unsold would thus need all 40 at
	// the cap, 400 units of the 300: every unit must sell. The first 400
	// requests (20 users' whole demand) start together, so those users race
	// their own cap.
	reqs := testutil.SpreadDemand("racer", users, perUser, items)
	type result struct {
		hold                sale.Hold
		checkoutErr         error
		bought, again       sale.Purchase
		boughtErr, againErr error
		repeated            bool
	}
	results := make([]result, len(reqs))
	var calls, holds atomic.Int64
	testutil.Together(workers, len(reqs), func(i int) {
		r := &results[i]
		calls.Add(1)
		here, there := services[i%2], services[(i+1)%2]
		r.hold, r.checkoutErr = here.Checkout(ctx, sale.CheckoutRequest{UserID: reqs[i].User, ItemID: reqs[i].Item})
		if r.checkoutErr != nil {
			return
		}
		if holds.Add(1)%repeatEvery == 0 {
			// One repeat through each server: no batcher sees both.
			r.repeated = true
			var wg sync.WaitGroup
			wg.Go(func() { r.again, r.againErr = there.Purchase(ctx, r.hold.Code, "") })
			r.bought, r.boughtErr = here.Purchase(ctx, r.hold.Code, "")
			wg.Wait()
			return
		}
		r.bought, r.boughtErr = here.Purchase(ctx, r.hold.Code, "")
	})

	answered := map[string]int64{}
	purchaseIDs := map[int64]bool{}
	repeats := 0
	for i, r := range results {
		req := reqs[i]
		o, ok := outcomeOf(r.checkoutErr)
		if !ok {
			t.Fatalf("checkout %d (%+v): %v, want a hold or a refusal", i, req, r.checkoutErr)
		}
		answered[o]++
		if r.checkoutErr != nil {
			continue
		}
		if h := r.hold; h.SaleID != saleID || h.UserID != req.User || int64(h.Item.ID) != req.Item ||
			!strings.HasPrefix(h.Code, fmt.Sprintf("%d.", saleID)) || len(h.Code) != len(fmt.Sprint(saleID))+1+22 {
			t.Fatalf("checkout %d (%+v): hold %+v, want one in sale %d", i, req, h, saleID)
		}
		if r.boughtErr != nil {
			t.Fatalf("purchase of a fresh hold (%+v): %v", req, r.boughtErr)
		}
		p := r.bought
		if p.Code != r.hold.Code || p.UserID != req.User || int64(p.Item.ID) != req.Item || p.SaleID != saleID ||
			p.UserPurchases < 1 || p.UserPurchases > int64(limit) {
			t.Fatalf("purchase of hold %+v answered %+v", r.hold, p)
		}
		if purchaseIDs[p.ID] {
			t.Fatalf("purchase id %d answered for two holds", p.ID)
		}
		purchaseIDs[p.ID] = true
		if r.repeated {
			repeats++
			// UserPurchases may differ: it is the counter when each answer was read.
			if r.againErr != nil || r.again.ID != p.ID || r.again.Code != p.Code || r.again.UserID != p.UserID {
				t.Fatalf("racing repeat of code %s: %+v, %v; the other purchase answered %+v", p.Code, r.again, r.againErr, p)
			}
		}
	}
	t.Logf("%d checkouts answered %v; %d holds bought, %d of them twice at once", len(reqs), answered, len(purchaseIDs), repeats)

	if got := sold(t, env.Pool, saleID); got > units {
		t.Errorf("%d units sold of %d", got, units)
	} else if got != units {
		t.Errorf("%d units sold, want all %d: demand was enough for every unit", got, units)
	}
	if answered["held"] != units || int64(len(purchaseIDs)) != units {
		t.Errorf("%d holds answered and %d bought, want %d", answered["held"], len(purchaseIDs), units)
	}
	if n := pgtest.Scalar(t, env.Pool, "SELECT count(*) FROM purchases WHERE sale_id = $1", saleID); n != int64(len(purchaseIDs)) {
		t.Errorf("%d purchase rows, %d purchases answered", n, len(purchaseIDs))
	}
	if n := pgtest.Scalar(t, env.Pool, "SELECT count(*) FROM checkout_attempts"); n != calls.Load() {
		t.Errorf("%d checkout attempts stored for %d Checkout calls", n, calls.Load())
	}
	compareOutcomes(t, answered, storedOutcomes(t, env.Pool, saleID))
	checkInvariants(t, env.Pool, saleID)
	if answered["user_limit_reached"] == 0 {
		t.Errorf("no checkout was refused for the cap, so the race against it was not exercised")
	}
	if repeats == 0 {
		t.Errorf("no code was bought twice at once, so racing repeats were not exercised")
	}
	sum, err := svc.Summary(ctx, saleID)
	if err != nil {
		t.Fatal(err)
	}
	if sum.UnitsSold != units || sum.UnitsHeld != 0 || sum.UnitsAvailable != 0 || sum.MaxUnitsPerUser > int64(limit) {
		t.Errorf("summary %+v, want %d sold, none held or free, at most %d per user", sum, units, limit)
	}
}

// One user's checkouts all at once: concurrent batches queue on the user's
// advisory lock, and within a batch the batcher keeps one request per user
// (CheckoutsDecide's per-user rank backs it up), so exactly the cap's worth is
// held whichever way the 40 requests are spread over batches.
func TestRaceOneUserStopsAtCap(t *testing.T) {
	t.Parallel()
	const racers, user = 40, "greedy"
	env := saletest.New(t)
	svc, saleID := env.Service, env.Sale.ID
	limit, items := env.Settings.PerUserLimit, env.Settings.Items
	ctx := t.Context()

	// Items 1 to 10 are asked for twice and have 10 units each, and nobody
	// else buys: only the cap can refuse.
	holds := make([]sale.Hold, racers)
	errs := make([]error, racers)
	testutil.Together(racers, racers, func(i int) {
		holds[i], errs[i] = svc.Checkout(ctx, sale.CheckoutRequest{UserID: user, ItemID: int64(i%items + 1)})
	})
	answered := map[string]int64{}
	var held []sale.Hold
	for i, err := range errs {
		o, ok := outcomeOf(err)
		if !ok || (o != "held" && o != "user_limit_reached") {
			t.Fatalf("checkout %d: %v, want a hold or ErrUserLimit", i, err)
		}
		answered[o]++
		if err == nil {
			held = append(held, holds[i])
		}
	}
	if len(held) != limit || answered["user_limit_reached"] != racers-int64(limit) {
		t.Fatalf("%d concurrent checkouts by one user answered %v, want %d held and the rest refused for the cap",
			racers, answered, limit)
	}
	compareOutcomes(t, answered, storedOutcomes(t, env.Pool, saleID))

	// Buying the holds while the same user keeps checking out: a purchase
	// turns a hold into a counted unit under the user's lock, so no checkout
	// can see the user between the two and slip in.
	const more = 30
	bought := make([]sale.Purchase, len(held))
	boughtErrs := make([]error, len(held))
	moreErrs := make([]error, more)
	testutil.Together(len(held)+more, len(held)+more, func(i int) {
		if i < len(held) {
			bought[i], boughtErrs[i] = svc.Purchase(ctx, held[i].Code, "")
			return
		}
		_, moreErrs[i-len(held)] = svc.Checkout(ctx, sale.CheckoutRequest{UserID: user, ItemID: int64(i%items + 1)})
	})
	maxCount := int64(0)
	for i, err := range boughtErrs {
		if err != nil {
			t.Fatalf("purchase of hold %d: %v", i, err)
		}
		maxCount = max(maxCount, bought[i].UserPurchases)
	}
	for i, err := range moreErrs {
		if !errors.Is(err, sale.ErrUserLimit) {
			t.Errorf("checkout %d racing the purchases: %v, want ErrUserLimit", i, err)
		}
	}
	if maxCount != int64(limit) {
		t.Errorf("the last purchase answered user_purchases %d, want %d", maxCount, limit)
	}
	if n := pgtest.Scalar(t, env.Pool, "SELECT units_bought FROM buyers WHERE sale_id = $1 AND user_id = $2", saleID, user); n != int64(limit) {
		t.Errorf("buyers counter %d, want %d", n, limit)
	}
	answered["user_limit_reached"] += more
	compareOutcomes(t, answered, storedOutcomes(t, env.Pool, saleID))
	checkInvariants(t, env.Pool, saleID)
}

// The cap is also a CHECK on the buyers counter: whatever a query got
// wrong, PostgreSQL itself refuses a count past it, as purchases_unit_id_key
// refuses selling a unit twice.
func TestBuyersCapIsEnforcedByTheDatabase(t *testing.T) {
	t.Parallel()
	// A cap other than the default: the CHECK follows the sale's own cap.
	env := saletest.New(t, saletest.WithPerUserLimit(3))
	saleID := env.Sale.ID
	if env.Sale.PerUserLimit != 3 {
		t.Fatalf("sale %+v, want a cap of 3", env.Sale)
	}
	p := saletest.Purchase(t, env, "capped", 1)
	if p.UserPurchases != 1 {
		t.Fatalf("first purchase answered user_purchases %d", p.UserPurchases)
	}
	ctx := t.Context()

	cases := []struct {
		name string
		// setup runs first in the same transaction, and must succeed.
		setup, sql string
	}{
		{name: "counter raised past the cap",
			sql: "UPDATE buyers SET units_bought = per_user_limit + 1 WHERE sale_id = $1 AND user_id = 'capped'"},
		{name: "new buyer past the cap", sql: `INSERT INTO buyers (sale_id, user_id, units_bought, per_user_limit)
			SELECT id, 'newcomer', per_user_limit + 1, per_user_limit FROM sales WHERE id = $1`},
		// What UnitsSell sends for one more purchase by a user at the cap.
		{name: "purchase counted at the cap",
			setup: "UPDATE buyers SET units_bought = per_user_limit WHERE sale_id = $1 AND user_id = 'capped'",
			sql: `INSERT INTO buyers (sale_id, user_id, units_bought, per_user_limit)
			SELECT id, 'capped', 1, per_user_limit FROM sales WHERE id = $1
			ON CONFLICT (sale_id, user_id) DO UPDATE SET units_bought = buyers.units_bought + excluded.units_bought`},
		{name: "zero units bought", sql: "UPDATE buyers SET units_bought = 0 WHERE sale_id = $1 AND user_id = 'capped'"},
	}
	for _, c := range cases {
		tx, err := env.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c.setup != "" {
			// Reaching the cap itself is allowed: the CHECK is not off by one.
			if tag, err := tx.Exec(ctx, c.setup, saleID); err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("%s: setup: %v (%d rows)", c.name, err, tag.RowsAffected())
			}
		}
		_, err = tx.Exec(ctx, c.sql, saleID)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23514" || pgErr.ConstraintName != "buyers_within_limit" {
			t.Errorf("%s: %v, want a CHECK violation (23514) of buyers_within_limit", c.name, err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := pgtest.Scalar(t, env.Pool, "SELECT count(*) FROM buyers WHERE sale_id = $1 AND units_bought = 1", saleID); n != 1 {
		t.Errorf("%d buyers with one unit after the refused writes, want only capped's", n)
	}
	checkInvariants(t, env.Pool, saleID)
}

// Expired holds come back: once every unit's hold has expired, a new crowd
// re-holds every unit while the old holders race to buy with their codes,
// which must all be refused.
func TestRaceExpiredHoldsReturnToThePool(t *testing.T) {
	t.Parallel()
	const (
		lateUsers, perUser = 60, 20
		workers            = 400
	)
	env := saletest.New(t)
	svc, saleID := env.Service, env.Sale.ID
	units, items, limit := int64(env.Settings.Units), env.Settings.Items, env.Settings.PerUserLimit
	ctx := t.Context()

	// Early user e holds all 10 units of item e+1: nothing else competes.
	early := make([]sale.Hold, units)
	earlyErrs := make([]error, units)
	testutil.Together(workers, int(units), func(i int) {
		e := i / limit
		early[i], earlyErrs[i] = svc.Checkout(ctx, sale.CheckoutRequest{UserID: fmt.Sprintf("early-%02d", e), ItemID: int64(e%items + 1)})
	})
	for i, err := range earlyErrs {
		if err != nil {
			t.Fatalf("early checkout %d: %v", i, err)
		}
	}
	if _, err := svc.Checkout(ctx, sale.CheckoutRequest{UserID: "late-comer", ItemID: 1}); !errors.Is(err, sale.ErrSoldOut) {
		t.Fatalf("checkout with every unit held: %v, want ErrSoldOut", err)
	}
	if n := saletest.ExpireHolds(t, env.Pool, saleID); n != units {
		t.Fatalf("ExpireHolds moved %d holds, want %d", n, units)
	}

	// The demand of TestRaceCheckoutAndPurchase, for the same reason: each
	// item is wanted by 40 late users, whose holds do not expire, so every
	// unit must be re-held. (With 40 users of 20 requests each, an item is
	// wanted by only 20, who may reach the cap before asking for it, and
	// units may rightly stay free.)
	reqs := testutil.SpreadDemand("late", lateUsers, perUser, items)
	// Old purchases interleaved with new checkouts, so that they meet on
	// the same units: op k >= 0 is late checkout k, op -k-1 old purchase k.
	var ops []int
	for k := range reqs {
		if k%2 == 0 && k/2 < int(units) {
			ops = append(ops, -k/2-1)
		}
		ops = append(ops, k)
	}
	late := make([]sale.Hold, len(reqs))
	lateErrs := make([]error, len(reqs))
	oldErrs := make([]error, units)
	testutil.Together(workers, len(ops), func(i int) {
		if k := ops[i]; k < 0 {
			_, oldErrs[-k-1] = svc.Purchase(ctx, early[-k-1].Code, "")
		} else {
			late[k], lateErrs[k] = svc.Checkout(ctx, sale.CheckoutRequest{UserID: reqs[k].User, ItemID: reqs[k].Item})
		}
	})
	for i, err := range oldErrs {
		if !errors.Is(err, sale.ErrCodeExpired) {
			t.Fatalf("purchase with expired code %d: %v, want ErrCodeExpired", i, err)
		}
	}
	answered := map[string]int64{"sold_out": 1, "held": units}
	var held []sale.Hold
	for i, err := range lateErrs {
		o, ok := outcomeOf(err)
		if !ok {
			t.Fatalf("late checkout %d (%+v): %v", i, reqs[i], err)
		}
		answered[o]++
		if err == nil {
			held = append(held, late[i])
		}
	}
	if int64(len(held)) != units {
		t.Fatalf("%d units re-held after every hold expired, want %d (answers %v)", len(held), units, answered)
	}
	if n := sold(t, env.Pool, saleID); n != 0 {
		t.Fatalf("%d units sold with expired codes", n)
	}
	compareOutcomes(t, answered, storedOutcomes(t, env.Pool, saleID))

	bought := make([]error, len(held))
	testutil.Together(workers, len(held), func(i int) { _, bought[i] = svc.Purchase(ctx, held[i].Code, "") })
	for i, err := range bought {
		if err != nil {
			t.Fatalf("purchase of re-held unit %d: %v", i, err)
		}
	}
	if n := sold(t, env.Pool, saleID); n != units {
		t.Errorf("%d units sold, want %d", n, units)
	}
	if n := pgtest.Scalar(t, env.Pool, "SELECT count(*) FROM purchases WHERE sale_id = $1 AND user_id LIKE 'early-%'", saleID); n != 0 {
		t.Errorf("%d purchases by holders whose holds expired", n)
	}
	checkInvariants(t, env.Pool, saleID)
}

// Once a sale is sold out every checkout is answered sold_out and stored,
// however many race; the rows SellOut leaves keep every invariant, and the
// holds it found answer as the service would.
func TestRaceSoldOutStorm(t *testing.T) {
	t.Parallel()
	const storm = 200
	env := saletest.New(t)
	svc, saleID := env.Service, env.Sale.ID
	units, items, limit := int64(env.Settings.Units), env.Settings.Items, int64(env.Settings.PerUserLimit)
	ctx := t.Context()

	saletest.Purchase(t, env, "alice", 1)
	expired := saletest.Hold(t, env, "carol", 2)
	if n := saletest.ExpireHolds(t, env.Pool, saleID); n != 1 {
		t.Fatalf("ExpireHolds moved %d holds, want carol's", n)
	}
	live := saletest.Hold(t, env, "bob", 3)

	got := saletest.SellOut(t, env.Pool, saleID)
	free := units - 2 // all but alice's purchase and bob's hold
	if want := (saletest.SoldOut{Units: units - 1, Holds: 1, Buyers: (free + limit - 1) / limit}); got != want {
		t.Fatalf("SellOut sold %+v, want %+v", got, want)
	}
	checkInvariants(t, env.Pool, saleID)
	// Bob's hold was sold as his purchase, so his code answers it again.
	if p, err := svc.Purchase(ctx, live.Code, ""); err != nil || p.UserID != "bob" || p.Item.ID != 3 || p.UserPurchases != 1 {
		t.Errorf("purchase with the hold SellOut sold: %+v, %v; want bob's purchase of item 3", p, err)
	}
	if _, err := svc.Purchase(ctx, expired.Code, ""); !errors.Is(err, sale.ErrCodeExpired) {
		t.Errorf("purchase with the expired code of a unit SellOut resold: %v, want ErrCodeExpired", err)
	}

	before := storedOutcomes(t, env.Pool, saleID)
	errs := make([]error, storm)
	testutil.Together(storm, storm, func(i int) {
		_, errs[i] = svc.Checkout(ctx, sale.CheckoutRequest{UserID: fmt.Sprintf("storm-%03d", i%50), ItemID: int64(i%items + 1)})
	})
	for i, err := range errs {
		if !errors.Is(err, sale.ErrSoldOut) {
			t.Fatalf("checkout %d of the storm: %v, want ErrSoldOut", i, err)
		}
	}
	after := storedOutcomes(t, env.Pool, saleID)
	if n := after["sold_out"] - before["sold_out"]; n != storm {
		t.Errorf("%d sold_out attempts stored for %d answers", n, storm)
	}
	sum, err := svc.Summary(ctx, saleID)
	if err != nil {
		t.Fatal(err)
	}
	if sum.UnitsSold != units || sum.UnitsAvailable != 0 || sum.UnitsHeld != 0 || sum.Buyers != got.Buyers+2 ||
		sum.MaxUnitsPerUser != limit {
		t.Errorf("summary %+v, want %d sold by %d buyers, at most %d each", sum, units, got.Buyers+2, limit)
	}
	checkInvariants(t, env.Pool, saleID)
}

// With no sale open every checkout is still stored, as no_active_sale
// without a sale id, however many race.
func TestRaceNoActiveSale(t *testing.T) {
	t.Parallel()
	const racers = 100
	env := saletest.New(t, saletest.WithoutSales())
	if env.Sale != (sale.Sale{}) {
		t.Fatalf("WithoutSales gave sale %+v", env.Sale)
	}
	errs := make([]error, racers)
	testutil.Together(racers, racers, func(i int) {
		_, errs[i] = env.Service.Checkout(t.Context(), sale.CheckoutRequest{UserID: fmt.Sprintf("early-bird-%02d", i%10), ItemID: int64(i%5 + 1)})
	})
	for i, err := range errs {
		if !errors.Is(err, sale.ErrNoActiveSale) {
			t.Fatalf("checkout %d: %v, want ErrNoActiveSale", i, err)
		}
	}
	if n := pgtest.Scalar(t, env.Pool, `SELECT count(*) FROM checkout_attempts
		WHERE outcome = 'no_active_sale' AND sale_id IS NULL AND code IS NULL AND unit_id IS NULL`); n != racers {
		t.Errorf("%d no_active_sale attempts stored for %d answers", n, racers)
	}
	if n := pgtest.Scalar(t, env.Pool, "SELECT count(*) FROM checkout_attempts"); n != racers {
		t.Errorf("%d attempts stored for %d checkouts", n, racers)
	}
}
