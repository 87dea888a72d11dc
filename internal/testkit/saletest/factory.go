// The factory puts a sale into the state a test starts from, with
// sensible defaults, so the test states only what matters to it.
//
// Hold, Buy and Purchase go through the service, so the rows they leave
// are exactly what a client would leave. SellOut stands in for a crowd
// having bought, through the same queries without the service's batcher.
// ExpireHolds writes SQL directly: it stands in for time passing, which a
// test cannot wait for, and keeps every invariant of the schema.
//
// Every helper fails the test on error, so call them from the test's own
// goroutine, never from goroutines it starts.

package saletest

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/sale/store"
)

// DB is what the SQL helpers need: a *pgxpool.Pool, a *pgx.Conn or a
// pgx.Tx (to set up a state inside a transaction the test controls).
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Hold checks item out for user in the current sale and returns the hold.
func Hold(t testing.TB, env *Env, user string, item int64) sale.Hold {
	t.Helper()
	h, err := env.Service.Checkout(t.Context(), sale.CheckoutRequest{UserID: user, ItemID: item})
	if err != nil {
		t.Fatalf("saletest: checkout of item %d by %q: %v", item, user, err)
	}
	return h
}

// Buy purchases a hold.
func Buy(t testing.TB, env *Env, h sale.Hold) sale.Purchase {
	t.Helper()
	p, err := env.Service.Purchase(t.Context(), h.Code, "")
	if err != nil {
		t.Fatalf("saletest: purchase of %q's hold on item %d: %v", h.UserID, h.Item.ID, err)
	}
	return p
}

// Purchase checks item out for user and buys it.
func Purchase(t testing.TB, env *Env, user string, item int64) sale.Purchase {
	t.Helper()
	return Buy(t, env, Hold(t, env, user, item))
}

// ExpireHolds moves the end of every live, unsold hold of the sale into the
// past, as if HOLD_TTL had passed, and returns how many it moved. Their units
// are free again and their codes answer code_expired. It sets test time,
// not a rule.
//
// checkout_attempts.expires_at is left as answered: it is the record of what
// the client was told, and no rule reads it.
func ExpireHolds(t testing.TB, db DB, saleID int64) int64 {
	t.Helper()
	// A millisecond back is enough for both clocks the rules use: checkout's
	// now() (held_until <= now()) and purchase's clock_timestamp().
	tag, err := db.Exec(t.Context(), `UPDATE units SET held_until = now() - interval '1 millisecond'
		WHERE sale_id = $1 AND held_by IS NOT NULL AND sold_at IS NULL AND held_until > now()`, saleID)
	if err != nil {
		t.Fatalf("saletest: expire holds of sale %d: %v", saleID, err)
	}
	return tag.RowsAffected()
}

// SoldOut is what SellOut sold.
type SoldOut struct {
	// Units sold by this call: held ones to their holders, free ones to
	// generated buyers.
	Units int64
	// Holds among Units: live holds sold to their holders under their codes,
	// as if each holder had purchased.
	Holds int64
	// Buyers generated for the free units, each filled up to the cap.
	Buyers int64
}

// SellOut sells every remaining unit of sale saleID, which must be the
// current sale, through the queries a crowd's checkouts and purchases run
// (the store's batches, without HTTP or the service's batcher): each live
// hold is bought by its holder with its code, and every free unit is
// checked out and bought by generated buyers, each filled up to the cap.
// It is for tests that need a sold-out sale (the sold-out storm, query
// plans over a full sale) without thousands of requests. Call it while
// nothing else writes the sale.
func SellOut(t testing.TB, pool *pgxpool.Pool, saleID int64) SoldOut {
	t.Helper()
	ctx := t.Context()
	st := store.New(pool, nil, nil, time.Minute)
	var out SoldOut

	var held []string
	rows, err := pool.Query(ctx, `SELECT hold_code FROM units
		WHERE sale_id = $1 AND sold_at IS NULL AND held_until > now() ORDER BY id`, saleID)
	if err == nil {
		held, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		t.Fatalf("saletest: live holds of sale %d: %v", saleID, err)
	}
	out.Holds = sell(t, st, saleID, held)

	var items []int64
	var limit, first int64
	if err := pool.QueryRow(ctx, `SELECT s.per_user_limit, coalesce(min(u.id), 0) FROM sales s
		LEFT JOIN units u ON u.sale_id = s.id AND u.sold_at IS NULL
		WHERE s.id = $1 GROUP BY s.per_user_limit`, saleID).Scan(&limit, &first); err != nil {
		t.Fatalf("saletest: sale %d: %v", saleID, err)
	}
	rows, err = pool.Query(ctx, `SELECT item_id FROM units WHERE sale_id = $1 AND sold_at IS NULL ORDER BY id`, saleID)
	if err == nil {
		items, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	if err != nil {
		t.Fatalf("saletest: free units of sale %d: %v", saleID, err)
	}
	if len(items) > 0 {
		// Buyer k%buyers takes request k: no buyer past the cap, and the
		// names are new on every call (a sold unit never comes back).
		buyers := (int64(len(items)) + limit - 1) / limit
		reqs := make([]store.CheckoutRequest, len(items))
		for k, item := range items {
			reqs[k] = store.CheckoutRequest{
				UserID: fmt.Sprintf("sellout-%d-%d-%d", saleID, first, int64(k)%buyers), ItemID: item, Code: rand.Text(),
			}
		}
		var codes []string
		for batch := range slices.Chunk(reqs, batchSize) {
			res, err := st.CheckoutsDecide(time.Now().Add(time.Minute), batch, time.Hour)
			if err != nil {
				t.Fatalf("saletest: check out the free units of sale %d: %v", saleID, err)
			}
			for i, r := range res {
				if r.Outcome != store.Held || r.SaleID != saleID {
					t.Fatalf("saletest: checkout of a free unit of item %d: %s in sale %d, want held in sale %d (is it the current sale?)",
						batch[i].ItemID, r.Outcome, r.SaleID, saleID)
				}
				codes = append(codes, r.Code)
			}
		}
		out.Buyers = buyers
		sell(t, st, saleID, codes)
	}
	out.Units = out.Holds + int64(len(items))

	// A unit the factory did not see (inserted or unsold meanwhile) would
	// leave the sale not sold out, which the test relies on.
	var left int64
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM units WHERE sale_id = $1 AND sold_at IS NULL", saleID).Scan(&left); err != nil {
		t.Fatalf("saletest: count unsold units of sale %d: %v", saleID, err)
	}
	if left != 0 {
		t.Fatalf("saletest: sale %d still has %d unsold units after SellOut", saleID, left)
	}
	return out
}

// batchSize is the service's largest batch.
const batchSize = 64

// sell buys the units held under codes of sale saleID and returns how many.
func sell(t testing.TB, st *store.Store, saleID int64, codes []string) int64 {
	t.Helper()
	for batch := range slices.Chunk(codes, batchSize) {
		cs := make([]store.Code, len(batch))
		for i, c := range batch {
			cs[i] = store.Code{Sale: saleID, Code: c}
		}
		res, err := st.PurchasesSell(time.Now().Add(time.Minute), cs)
		if err != nil {
			t.Fatalf("saletest: buy units of sale %d: %v", saleID, err)
		}
		for i, r := range res {
			if r.Outcome != store.Purchased {
				t.Fatalf("saletest: purchase with code %q: %s, want purchased", batch[i], r.Outcome)
			}
		}
	}
	return int64(len(codes))
}
