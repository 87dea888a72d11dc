// Package testfactory puts a sale into the state a test starts from, with
// sensible defaults, so the test states only what matters to it.
//
// Hold, Buy and Purchase go through the service, so the rows they leave
// are exactly what a client would leave. ExpireHolds and SellOut write SQL
// directly: they stand in for time passing and for a crowd having bought,
// which a test cannot wait for; they keep every invariant of the schema.
//
// Every helper fails the test on error, so call them from the test's own
// goroutine, never from goroutines it starts.
package saletest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flashsale/flashsale/internal/sale"
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
		t.Fatalf("testfactory: checkout of item %d by %q: %v", item, user, err)
	}
	return h
}

// Buy purchases a hold.
func Buy(t testing.TB, env *Env, h sale.Hold) sale.Purchase {
	t.Helper()
	p, err := env.Service.Purchase(t.Context(), h.Code, "")
	if err != nil {
		t.Fatalf("testfactory: purchase of %q's hold on item %d: %v", h.UserID, h.Item.ID, err)
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
		t.Fatalf("testfactory: expire holds of sale %d: %v", saleID, err)
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

// sellOutSQL sells every unsold unit of sale $1 in one statement, leaving
// the rows a crowd of real purchases would:
//   - a unit under a live hold is sold to its holder with the hold's code
//     (its checkout attempt already exists; checkout counted the hold
//     against the cap, so buying it keeps the holder within it);
//   - a free unit (never held, or its hold expired) gets a generated buyer
//     and a fresh code like the service's (the sale's id, a dot, 128 random
//     bits in base64url), with
//     the checkout attempt that would have held it, so every purchase code
//     resolves to its attempt as a real one does. Buyers are
//     sellout-<sale>-<first unit id>, per_user_limit units each: unique
//     across calls, since a sold unit never comes back.
//
// Volatile gen_random_uuid() keeps fresh from being inlined, so every CTE
// reading it sees the same codes.
const sellOutSQL = `
WITH sale AS (
    SELECT id, per_user_limit, hold_ttl FROM sales WHERE id = $1
),
unsold AS (
    SELECT u.id, u.item_id, u.held_by IS NOT NULL AND u.held_until > now() AS live, u.held_by, u.hold_code
    FROM units u
    WHERE u.sale_id = $1 AND u.sold_at IS NULL
),
numbered AS (
    SELECT o.id, o.item_id, (row_number() OVER (ORDER BY o.id) - 1) / s.per_user_limit AS grp
    FROM unsold o CROSS JOIN sale s
    WHERE NOT o.live
),
fresh AS (
    SELECT n.id, n.item_id,
           'sellout-' || $1::bigint || '-' || min(n.id) OVER (PARTITION BY n.grp) AS user_id,
           $1::bigint || '.' ||
           rtrim(translate(encode(decode(replace(gen_random_uuid()::text, '-', ''), 'hex'), 'base64'),
                 '+/', '-_'), '=') AS code
    FROM numbered n
),
sold AS (
    SELECT o.id, o.item_id, o.held_by AS user_id, o.hold_code AS code, false AS is_fresh FROM unsold o WHERE o.live
    UNION ALL
    SELECT f.id, f.item_id, f.user_id, f.code, true FROM fresh f
),
units_sold AS (
    UPDATE units u
    SET held_by = s.user_id, hold_code = s.code, sold_at = now(),
        held_until = CASE WHEN s.is_fresh THEN now() + sale.hold_ttl ELSE u.held_until END
    FROM sold s CROSS JOIN sale
    WHERE u.id = s.id
    RETURNING u.id
),
attempts AS (
    INSERT INTO checkout_attempts (sale_id, user_id, item_id, outcome, code, unit_id, expires_at)
    SELECT $1, s.user_id, s.item_id, 'held', s.code, s.id, now() + sale.hold_ttl
    FROM sold s CROSS JOIN sale
    WHERE s.is_fresh
    ORDER BY s.id
    RETURNING id
),
bought AS (
    INSERT INTO purchases (sale_id, user_id, item_id, unit_id, code, price_cents)
    SELECT $1, s.user_id, s.item_id, s.id, s.code, i.price_cents
    FROM sold s
    JOIN items i ON i.sale_id = $1 AND i.item_id = s.item_id
    ORDER BY s.id
    RETURNING user_id
),
counted AS (
    INSERT INTO buyers (sale_id, user_id, units_bought, per_user_limit)
    SELECT $1, b.user_id, count(*), sale.per_user_limit
    FROM bought b CROSS JOIN sale
    GROUP BY b.user_id, sale.per_user_limit
    ON CONFLICT (sale_id, user_id) DO UPDATE SET units_bought = buyers.units_bought + excluded.units_bought
    RETURNING user_id
)
SELECT (SELECT count(*) FROM units_sold),
       (SELECT count(*) FROM sold WHERE NOT is_fresh),
       (SELECT count(DISTINCT user_id) FROM fresh),
       (SELECT count(*) FROM bought),
       (SELECT count(*) FROM attempts),
       (SELECT count(*) FROM counted)`

// SellOut sells every remaining unit of the sale directly in SQL, for tests
// that need a sold-out sale (the sold-out storm, query plans over a full
// sale) without thousands of checkouts. Call it while nothing else writes
// the sale. The rows it adds count like real ones: purchases, buyers, and
// the checkout attempts of the generated buyers.
func SellOut(t testing.TB, db DB, saleID int64) SoldOut {
	t.Helper()
	var out SoldOut
	var bought, attempts, counted int64
	err := db.QueryRow(t.Context(), sellOutSQL, saleID).Scan(&out.Units, &out.Holds, &out.Buyers, &bought, &attempts, &counted)
	if err != nil {
		t.Fatalf("testfactory: sell out sale %d: %v", saleID, err)
	}
	if bought != out.Units || attempts != out.Units-out.Holds {
		t.Fatalf("testfactory: sell out sale %d: %d units sold, %d purchases, %d attempts for %d fresh units",
			saleID, out.Units, bought, attempts, out.Units-out.Holds)
	}
	// A unit the statement did not see (inserted or unsold meanwhile)
	// would leave the sale not sold out, which the test relies on.
	var left int64
	if err := db.QueryRow(t.Context(), "SELECT count(*) FROM units WHERE sale_id = $1 AND sold_at IS NULL", saleID).Scan(&left); err != nil {
		t.Fatalf("testfactory: count unsold units of sale %d: %v", saleID, err)
	}
	if left != 0 {
		t.Fatalf("testfactory: sale %d still has %d unsold units after SellOut", saleID, left)
	}
	return out
}
