package sale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/sale/store"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// testService is a service on a fresh database with the current and next
// sale made: 10 units of 10 items each, perUserLimit per user.
func testService(t *testing.T, perUserLimit int) (*Service, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	pool, err := database.Open(ctx, pgtest.New(t), 2, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := NewService(pool, Settings{Duration: 24 * time.Hour, Units: 10, Items: 10, PerUserLimit: perUserLimit, HoldTTL: time.Hour},
		5*time.Second, testutil.Logger(t, slog.LevelWarn))
	t.Cleanup(s.Close)
	if err := s.EnsureSales(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	return s, pool
}

// When PostgreSQL refuses one purchase of a batch for the cap
// (buyers_within_limit), the others of the batch are still sold and only
// that one is refused, as user_limit_reached. Checkout's cap makes such a
// hold unreachable, so the test makes one in SQL, past a cap of 1.
func TestCapRefusalFailsOnlyItsOwnPurchase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := testService(t, 1)
	first, err := s.Checkout(ctx, CheckoutRequest{UserID: "mallory", ItemID: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Purchase(ctx, first.Code, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `WITH u AS (
			UPDATE units SET held_by = 'mallory', hold_code = 'past-the-cap', held_until = now() + interval '1 hour'
			WHERE id = (SELECT id FROM units WHERE sale_id = $1 AND item_id = 2) RETURNING id, item_id, held_until)
		INSERT INTO checkout_attempts (sale_id, user_id, item_id, outcome, code, unit_id, expires_at)
		SELECT $1, 'mallory', item_id, 'held', 'past-the-cap', id, held_until FROM u`, first.SaleID); err != nil {
		t.Fatal(err)
	}
	victor, err := s.Checkout(ctx, CheckoutRequest{UserID: "victor", ItemID: 3})
	if err != nil {
		t.Fatal(err)
	}

	res, err := s.purchaseBatch(time.Now().Add(5*time.Second), parseCodes(t, "past-the-cap", victor.Code))
	if err != nil {
		t.Fatalf("the batch failed as a whole: %v", err)
	}
	if !errors.Is(res[0].err, ErrUserLimit) {
		t.Errorf("purchase past the cap: %+v, want ErrUserLimit", res[0])
	}
	if res[1].err != nil || res[1].Outcome != store.Purchased {
		t.Errorf("victor's purchase in the same batch: %+v, want purchased", res[1])
	}
	var bought int
	if err := pool.QueryRow(ctx, "SELECT units_bought FROM buyers WHERE user_id = 'mallory'").Scan(&bought); err != nil || bought != 1 {
		t.Errorf("mallory's counter: %d %v, want 1", bought, err)
	}
}

// A purchase batch may hold codes of two sales (holds outlive their sale's
// window): each sale's codes are read from its own partition, and every
// code gets its own answer in its place.
func TestPurchaseBatchOfTwoSales(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := testService(t, 5)
	now, err := s.Checkout(ctx, CheckoutRequest{UserID: "nina", ItemID: 1})
	if err != nil {
		t.Fatal(err)
	}
	// A hold in the next sale, as its checkout will leave it.
	var later string
	if err := pool.QueryRow(ctx, `WITH next AS (SELECT id FROM sales WHERE id <> $1),
		u AS (UPDATE units SET held_by = 'otto', hold_code = (SELECT id FROM next) || '.laterCode',
		             held_until = now() + interval '1 hour'
		      WHERE id = (SELECT min(id) FROM units WHERE sale_id = (SELECT id FROM next))
		      RETURNING id, sale_id, item_id, hold_code, held_until)
		INSERT INTO checkout_attempts (sale_id, user_id, item_id, outcome, code, unit_id, expires_at)
		SELECT sale_id, 'otto', item_id, 'held', hold_code, id, held_until FROM u RETURNING code`, now.SaleID).Scan(&later); err != nil {
		t.Fatal(err)
	}
	unknown := fmt.Sprintf("%d.neverIssued", now.SaleID)
	codes := []string{later, now.Code, unknown}
	res, err := s.purchaseBatch(time.Now().Add(5*time.Second), parseCodes(t, codes...))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		user    string
		outcome store.Outcome
	}{{"otto", store.Purchased}, {"nina", store.Purchased}, {"", store.CodeNotFound}} {
		r := res[i]
		if r.err != nil || r.Outcome != want.outcome || r.Purchase.UserID != want.user {
			t.Errorf("code %q: %+v, want %s by %q", codes[i], r, want.outcome, want.user)
		}
	}
}

func TestCodeSale(t *testing.T) {
	for code, want := range map[string]int64{
		"12.TcBN4Yx1h4IjllaGlOrybw": 12, "1.x": 1, "9223372036854775807.x": 9223372036854775807,
		"TcBN4Yx1h4IjllaGlOrybw": 0, ".x": 0, "012.x": 0, "0.x": 0, "-1.x": 0, "+1.x": 0, "1a.x": 0,
		"9223372036854775808.x": 0, "": 0, "12": 0,
	} {
		if got := codeSale(code); got != want {
			t.Errorf("codeSale(%q) = %d, want %d", code, got, want)
		}
	}
}

func parseCodes(t *testing.T, codes ...string) []store.Code {
	t.Helper()
	out := make([]store.Code, len(codes))
	for i, code := range codes {
		c, err := parseCode(code)
		if err != nil {
			t.Fatalf("parseCode(%q): %v", code, err)
		}
		out[i] = c
	}
	return out
}
