// Package invariant checks, in SQL, what must hold after the benchmark's
// load: exactly the sale's units sold, nobody above the cap, no unit or
// code sold twice, every answered checkout stored, and (webhooks.go) every
// purchase delivered as a signed webhook.
package invariant

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/loadgen/phase"
)

// Check is one invariant and whether it held.
type Check struct {
	Name   string `json:"name"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

// Verdict is PASS or FAIL.
func (c Check) Verdict() string {
	if c.Pass {
		return "PASS"
	}
	return "FAIL"
}

// Sale is what SQL says about a sale after a run.
type Sale struct {
	UnitsTotal     int64
	PerUserLimit   int64
	UnitsSold      int64
	Purchases      int64
	DistinctUnits  int64
	DistinctCodes  int64
	MaxPerUser     int64
	UsersAboveCap  int64
	Mismatched     int64 // purchases whose unit does not record the same sale
	SoldNoPurchase int64 // units marked sold without a purchase row
}

const saleStateSQL = `
SELECT s.units_total, s.per_user_limit,
  (SELECT count(*) FROM units u WHERE u.sale_id = s.id AND u.sold_at IS NOT NULL),
  (SELECT count(*) FROM purchases p WHERE p.sale_id = s.id),
  (SELECT count(DISTINCT p.unit_id) FROM purchases p WHERE p.sale_id = s.id),
  (SELECT count(DISTINCT p.code) FROM purchases p WHERE p.sale_id = s.id),
  (SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM purchases p WHERE p.sale_id = s.id GROUP BY p.user_id) x),
  -- owned = bought, or held and not expired: nobody may own more than the cap
  (SELECT count(*) FROM (SELECT u.held_by FROM units u
     WHERE u.sale_id = s.id AND u.held_by IS NOT NULL AND (u.sold_at IS NOT NULL OR u.held_until > now())
     GROUP BY u.held_by HAVING count(*) > s.per_user_limit) x),
  (SELECT count(*) FROM purchases p JOIN units u ON u.id = p.unit_id
     WHERE p.sale_id = s.id AND (u.sale_id <> p.sale_id OR u.sold_at IS NULL
       OR u.hold_code IS DISTINCT FROM p.code OR u.held_by IS DISTINCT FROM p.user_id)),
  (SELECT count(*) FROM units u WHERE u.sale_id = s.id AND u.sold_at IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM purchases p WHERE p.unit_id = u.id))
FROM sales s WHERE s.id = $1`

// ReadSale reads sale saleID's state.
func ReadSale(ctx context.Context, pool *pgxpool.Pool, saleID int64) (Sale, error) {
	var s Sale
	err := pool.QueryRow(ctx, saleStateSQL, saleID).Scan(&s.UnitsTotal, &s.PerUserLimit, &s.UnitsSold, &s.Purchases,
		&s.DistinctUnits, &s.DistinctCodes, &s.MaxPerUser, &s.UsersAboveCap, &s.Mismatched, &s.SoldNoPurchase)
	if err != nil {
		return s, fmt.Errorf("read state of sale %d: %w", saleID, err)
	}
	return s, nil
}

// CountAttempts counts every row of checkout_attempts.
func CountAttempts(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var n int64
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM checkout_attempts").Scan(&n); err != nil {
		return 0, fmt.Errorf("count checkout_attempts: %w", err)
	}
	return n, nil
}

// Seen is what the client side saw, to compare with SQL.
type Seen struct {
	SoldBefore     int64 // units sold before the herd
	Herd           *phase.Run
	AttemptsStored int64 // checkout_attempts rows added over the run
	AttemptsAnswer int64 // well-formed checkouts answered over the run
	Storms         []Storm
}

// Storm is one storm's checkout_attempts rows and stored answers.
type Storm struct {
	Name             string
	Stored, Answered int64
}

// Checks compares the sale's state with what the clients saw.
func Checks(s Sale, in Seen) []Check {
	sold := in.Herd.Purchases
	checks := []Check{
		{
			Name: fmt.Sprintf("exactly %d units sold", s.UnitsTotal),
			Pass: s.UnitsSold == s.UnitsTotal && s.Purchases == s.UnitsTotal &&
				in.SoldBefore+in.Herd.DistinctIDs == s.UnitsTotal && sold == in.Herd.DistinctIDs,
			Detail: fmt.Sprintf("units sold %d, purchase rows %d, sold before the run %d, purchases answered %d (distinct ids %d)",
				s.UnitsSold, s.Purchases, in.SoldBefore, sold, in.Herd.DistinctIDs),
		},
		{
			Name: fmt.Sprintf("no user above the cap of %d", s.PerUserLimit),
			Pass: s.MaxPerUser <= s.PerUserLimit && s.UsersAboveCap == 0,
			Detail: fmt.Sprintf("most units bought by one user %d, users owning more than the cap (bought + held) %d",
				s.MaxPerUser, s.UsersAboveCap),
		},
		{
			Name: "no unit or code sold twice",
			Pass: s.DistinctUnits == s.Purchases && s.DistinctCodes == s.Purchases && s.Mismatched == 0 && s.SoldNoPurchase == 0,
			Detail: fmt.Sprintf("purchase rows %d, distinct units %d, distinct codes %d, rows disagreeing with their unit %d, sold units without a purchase %d",
				s.Purchases, s.DistinctUnits, s.DistinctCodes, s.Mismatched, s.SoldNoPurchase),
		},
		{
			Name: "attempts stored == attempts answered",
			Pass: in.AttemptsStored == in.AttemptsAnswer,
			Detail: fmt.Sprintf("checkout_attempts rows added %d, well-formed checkouts answered %d (herd and storms)",
				in.AttemptsStored, in.AttemptsAnswer),
		},
	}
	for _, st := range in.Storms {
		checks = append(checks, Check{
			Name:   st.Name + ": attempts stored == attempts answered",
			Pass:   st.Stored == st.Answered,
			Detail: fmt.Sprintf("checkout_attempts rows added during the %s %d, answered %d", st.Name, st.Stored, st.Answered),
		})
	}
	return checks
}
