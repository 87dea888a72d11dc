package loadgen

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Check is one invariant and whether it held.
type Check struct {
	Name   string `json:"name"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

func (c Check) verdict() string {
	if c.Pass {
		return "PASS"
	}
	return "FAIL"
}

// saleState is what SQL says about a sale after a run.
type saleState struct {
	unitsTotal     int64
	perUserLimit   int64
	unitsSold      int64
	purchases      int64
	distinctUnits  int64
	distinctCodes  int64
	maxPerUser     int64
	usersAboveCap  int64
	mismatched     int64 // purchases whose unit does not record the same sale
	soldNoPurchase int64 // units marked sold without a purchase row
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

func readSaleState(ctx context.Context, pool *pgxpool.Pool, saleID int64) (saleState, error) {
	var s saleState
	err := pool.QueryRow(ctx, saleStateSQL, saleID).Scan(&s.unitsTotal, &s.perUserLimit, &s.unitsSold, &s.purchases,
		&s.distinctUnits, &s.distinctCodes, &s.maxPerUser, &s.usersAboveCap, &s.mismatched, &s.soldNoPurchase)
	if err != nil {
		return s, fmt.Errorf("read state of sale %d: %w", saleID, err)
	}
	return s, nil
}

// countAttempts counts every row of checkout_attempts.
func countAttempts(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var n int64
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM checkout_attempts").Scan(&n); err != nil {
		return 0, fmt.Errorf("count checkout_attempts: %w", err)
	}
	return n, nil
}

// invariantInput is what the client side saw, to compare with SQL.
type invariantInput struct {
	soldBefore     int64 // units sold before the herd
	herd           *phaseRun
	attemptsStored int64 // checkout_attempts rows added over the run
	attemptsAnswer int64 // well-formed checkouts answered over the run
	storms         []stormCount
}

// stormCount is one storm's checkout_attempts rows and stored answers.
type stormCount struct {
	name             string
	stored, answered int64
}

func checkInvariants(s saleState, in invariantInput) []Check {
	sold := in.herd.purchases
	checks := []Check{
		{
			Name: fmt.Sprintf("exactly %d units sold", s.unitsTotal),
			Pass: s.unitsSold == s.unitsTotal && s.purchases == s.unitsTotal &&
				in.soldBefore+in.herd.distinctIDs == s.unitsTotal && sold == in.herd.distinctIDs,
			Detail: fmt.Sprintf("units sold %d, purchase rows %d, sold before the run %d, purchases answered %d (distinct ids %d)",
				s.unitsSold, s.purchases, in.soldBefore, sold, in.herd.distinctIDs),
		},
		{
			Name: fmt.Sprintf("no user above the cap of %d", s.perUserLimit),
			Pass: s.maxPerUser <= s.perUserLimit && s.usersAboveCap == 0,
			Detail: fmt.Sprintf("most units bought by one user %d, users owning more than the cap (bought + held) %d",
				s.maxPerUser, s.usersAboveCap),
		},
		{
			Name: "no unit or code sold twice",
			Pass: s.distinctUnits == s.purchases && s.distinctCodes == s.purchases && s.mismatched == 0 && s.soldNoPurchase == 0,
			Detail: fmt.Sprintf("purchase rows %d, distinct units %d, distinct codes %d, rows disagreeing with their unit %d, sold units without a purchase %d",
				s.purchases, s.distinctUnits, s.distinctCodes, s.mismatched, s.soldNoPurchase),
		},
		{
			Name: "attempts stored == attempts answered",
			Pass: in.attemptsStored == in.attemptsAnswer,
			Detail: fmt.Sprintf("checkout_attempts rows added %d, well-formed checkouts answered %d (herd and storms)",
				in.attemptsStored, in.attemptsAnswer),
		},
	}
	for _, st := range in.storms {
		checks = append(checks, Check{
			Name:   st.name + ": attempts stored == attempts answered",
			Pass:   st.stored == st.answered,
			Detail: fmt.Sprintf("checkout_attempts rows added during the %s %d, answered %d", st.name, st.stored, st.answered),
		})
	}
	return checks
}
