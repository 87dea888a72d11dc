package invariant

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/loadgen/webhook"
)

// Deliveries is what the webhook receiver got, held against the database.
type Deliveries struct {
	// PurchasesInDB counts the sale's purchase rows.
	PurchasesInDB int64 `json:"purchases_in_db"`
	// PurchaseEvents counts the distinct purchases purchase.completed
	// events named, whatever their sale.
	PurchaseEvents int64 `json:"purchase_events"`
	// Missing: purchases of the sale no event named.
	Missing int64 `json:"missing"`
	// Unknown: purchases events named that the database does not hold.
	Unknown int64 `json:"unknown"`
	// OtherSale: events whose sale_id is not their purchase's.
	OtherSale int64 `json:"other_sale"`
	// Repeated: purchase.completed events (distinct event ids) naming a
	// purchase an earlier event named.
	Repeated      int64 `json:"repeated"`
	BadSignatures int64 `json:"bad_signatures"`
	Malformed     int64 `json:"malformed"`
}

// PurchaseSales maps every purchase of the database to its sale.
func PurchaseSales(ctx context.Context, pool *pgxpool.Pool) (map[int64]int64, error) {
	rows, err := pool.Query(ctx, "SELECT id, sale_id FROM purchases")
	if err != nil {
		return nil, fmt.Errorf("read purchases: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]int64)
	var id, sale int64
	for rows.Next() {
		if err := rows.Scan(&id, &sale); err != nil {
			return nil, fmt.Errorf("read purchases: %w", err)
		}
		out[id] = sale
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read purchases: %w", err)
	}
	return out, nil
}

// CompareDeliveries holds what the receiver got (st) against the
// database's purchases (purchase id -> sale id) for sale saleID.
func CompareDeliveries(saleID int64, db map[int64]int64, st webhook.Stats) Deliveries {
	d := Deliveries{
		PurchaseEvents: int64(len(st.Purchases)), Repeated: st.RepeatedPurchases,
		BadSignatures: st.BadSignatures, Malformed: st.Malformed,
	}
	for id, sale := range db {
		if sale != saleID {
			continue
		}
		d.PurchasesInDB++
		if _, ok := st.Purchases[id]; !ok {
			d.Missing++
		}
	}
	for id, evSale := range st.Purchases {
		sale, ok := db[id]
		switch {
		case !ok:
			d.Unknown++
		case sale != evSale:
			d.OtherSale++
		}
	}
	return d
}

// WebhookCheck: every committed purchase of the sale was delivered, once
// as an event (retries aside), signed with the secret, and no event names
// a purchase the database does not hold.
func WebhookCheck(d Deliveries) Check {
	return Check{
		Name: "every purchase delivered as a signed webhook",
		Pass: d.Missing == 0 && d.Unknown == 0 && d.OtherSale == 0 && d.Repeated == 0 && d.BadSignatures == 0 && d.Malformed == 0,
		Detail: fmt.Sprintf("purchases in the database %d, purchases named by purchase.completed events %d, missing %d, "+
			"not in the database %d, of another sale %d, named by a second event %d; bad signatures %d, malformed deliveries %d",
			d.PurchasesInDB, d.PurchaseEvents, d.Missing, d.Unknown, d.OtherSale, d.Repeated, d.BadSignatures, d.Malformed),
	}
}
