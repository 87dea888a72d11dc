package failover

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/loadgen/invariant"
)

// Report is how the answers a herd got compare with the database that
// survived the failover. Every count must be zero.
type Report struct {
	Holds, Purchases, Refusals int // acknowledged
	// Missing counts acknowledged writes the database does not have.
	MissingHolds, MissingPurchases, MissingRefusals int
	// PurchaseIDMismatch: an acknowledged purchase whose row has another id
	// (the identity sequence went back and handed it out again).
	PurchaseIDMismatch int
	// MissingEvents: acknowledged purchases without their event, published
	// or still in the outbox (it commits with the purchase).
	MissingEvents int
	// Oversold counts units sold beyond an item's stock, as shoppers were
	// told (acknowledged purchases per item) and as the database has it.
	Oversold int
	// CapBreaches counts users told they bought more than the cap, or
	// owning more in the database.
	CapBreaches int
}

// Missing is every acknowledged write the database lost.
func (r Report) Missing() int {
	return r.MissingHolds + r.MissingPurchases + r.MissingRefusals + r.PurchaseIDMismatch + r.MissingEvents
}

func (r Report) String() string {
	return fmt.Sprintf("acknowledged %d holds, %d purchases, %d refusals; missing %d holds, %d purchases, %d refusals, "+
		"%d purchase ids reused, %d purchase events; oversold %d; cap breaches %d",
		r.Holds, r.Purchases, r.Refusals, r.MissingHolds, r.MissingPurchases, r.MissingRefusals,
		r.PurchaseIDMismatch, r.MissingEvents, r.Oversold, r.CapBreaches)
}

// Verify looks every answer h logged up in the database at dbURL, the
// sale saleID's.
func Verify(ctx context.Context, dbURL string, saleID int64, h *Herd) (Report, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return Report{}, fmt.Errorf("connect to the surviving database: %w", err)
	}
	defer conn.Close(ctx)
	r := Report{Holds: len(h.Holds), Purchases: len(h.Purchases)}

	codes := make([]string, 0, len(h.Holds))
	for c := range h.Holds {
		codes = append(codes, c)
	}
	var found int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM checkout_attempts
		WHERE sale_id = $1 AND outcome = 'held' AND code = ANY($2)`, saleID, codes).Scan(&found); err != nil {
		return r, fmt.Errorf("look up holds: %w", err)
	}
	r.MissingHolds = len(codes) - found

	codes = codes[:0]
	for c := range h.Purchases {
		codes = append(codes, c)
	}
	rows, err := conn.Query(ctx, `SELECT code, id FROM purchases WHERE code = ANY($1)`, codes)
	if err != nil {
		return r, fmt.Errorf("look up purchases: %w", err)
	}
	stored := map[string]int64{}
	for rows.Next() {
		var code string
		var id int64
		if err := rows.Scan(&code, &id); err != nil {
			return r, fmt.Errorf("read purchases: %w", err)
		}
		stored[code] = id
	}
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("read purchases: %w", err)
	}
	ids := make([]int64, 0, len(h.Purchases))
	for _, b := range h.Purchases {
		ids = append(ids, b.ID)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM unnest($1::bigint[]) AS p(id)
		WHERE NOT EXISTS (SELECT FROM events e WHERE e.purchase_id = p.id)
		  AND NOT EXISTS (SELECT FROM event_outbox o WHERE o.purchase_id = p.id)`, ids).Scan(&r.MissingEvents); err != nil {
		return r, fmt.Errorf("look up purchase events: %w", err)
	}
	perItem, perUser := map[int]int{}, map[string]int{}
	for code, b := range h.Purchases {
		perItem[b.Item]++
		perUser[b.User]++
		id, ok := stored[code]
		switch {
		case !ok:
			r.MissingPurchases++
		case id != b.ID:
			r.PurchaseIDMismatch++
		}
	}

	rows, err = conn.Query(ctx, `SELECT user_id, item_id, outcome, count(*) FROM checkout_attempts
		WHERE sale_id = $1 AND outcome <> 'held' GROUP BY 1, 2, 3`, saleID)
	if err != nil {
		return r, fmt.Errorf("count refusals: %w", err)
	}
	refused := map[Refusal]int{}
	for rows.Next() {
		var k Refusal
		var n int
		if err := rows.Scan(&k.User, &k.Item, &k.Outcome, &n); err != nil {
			return r, fmt.Errorf("read refusals: %w", err)
		}
		refused[k] = n
	}
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("read refusals: %w", err)
	}
	for k, n := range h.Refusals {
		r.Refusals += n
		r.MissingRefusals += max(0, n-refused[k])
	}

	// As shoppers were told: no item sold past its stock, nobody past the cap.
	var limit int
	if err := conn.QueryRow(ctx, `SELECT per_user_limit FROM sales WHERE id = $1`, saleID).Scan(&limit); err != nil {
		return r, fmt.Errorf("read the sale: %w", err)
	}
	rows, err = conn.Query(ctx, `SELECT item_id, count(*) FROM units WHERE sale_id = $1 GROUP BY 1`, saleID)
	if err != nil {
		return r, fmt.Errorf("count units: %w", err)
	}
	stock := map[int]int{}
	for rows.Next() {
		var item, n int
		if err := rows.Scan(&item, &n); err != nil {
			return r, fmt.Errorf("read units: %w", err)
		}
		stock[item] = n
	}
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("read units: %w", err)
	}
	for item, n := range perItem {
		r.Oversold += max(0, n-stock[item])
	}
	for _, n := range perUser {
		if n > limit {
			r.CapBreaches++
		}
	}
	// And as the database has it.
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return r, fmt.Errorf("pool on the surviving database: %w", err)
	}
	defer pool.Close()
	s, err := invariant.ReadSale(ctx, pool, saleID)
	if err != nil {
		return r, err
	}
	r.Oversold += int(s.Purchases-s.DistinctUnits) + int(s.Mismatched) + int(s.SoldNoPurchase)
	r.CapBreaches += int(s.UsersAboveCap)
	return r, nil
}
