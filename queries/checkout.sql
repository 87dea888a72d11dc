-- A checkout batch is three statements sent in one pipeline inside one
-- READ COMMITTED transaction (internal/sale/tx.go):
--   UserLocksTakeForCheckout -> UnitsClaim -> CheckoutAttemptsInsert.
-- Each statement finds the current sale itself: parameters are fixed when
-- the pipeline is queued, and now() is the transaction's start, so all
-- three agree on the sale and on which holds have expired. A unit only
-- becomes free when its hold expires by now(), which is fixed for the
-- transaction, so a statement never finds a free unit that an earlier one
-- of the same transaction did not.

-- name: UnitsClaim :execrows
-- Holds a free unit of the requested item for each request of the batch
-- that may have one: the sale is open and has a free unit, the item exists,
-- and the user is under the sale's cap. Runs after the users' advisory
-- locks (UserLocksTakeForCheckout), so the cap is read from what the
-- previous holder of each lock committed. The cap is the user's counter
-- row (buyers) plus live holds; a user's k-th request in one batch counts
-- as if the earlier ones were held (the batcher sends at most one request
-- per user in a batch, so k is 1; the rank keeps the cap safe regardless,
-- since one statement does not see its own updates).
-- Units are claimed FOR UPDATE SKIP LOCKED: a unit another transaction is
-- claiming or buying is passed over, never waited for. Requests for one
-- item get its free units in arrival order (ord), whatever their user ids.
WITH sale AS MATERIALIZED (
    SELECT latest.* FROM (
        SELECT * FROM sales WHERE starts_at <= now() ORDER BY starts_at DESC LIMIT 1
    ) AS latest
    WHERE latest.ends_at > now()
      AND (SELECT u.held_until <= now() FROM units u
           WHERE u.sale_id = latest.id AND u.sold_at IS NULL
           ORDER BY u.held_until LIMIT 1)
),
req AS (
    SELECT r.ord, r.user_id, (@item_ids::bigint[])[r.ord] AS item_id, (@codes::text[])[r.ord] AS code,
           row_number() OVER (PARTITION BY r.user_id ORDER BY r.ord) AS user_rank
    FROM unnest(@user_ids::text[]) WITH ORDINALITY AS r(user_id, ord)
),
eligible AS (
    SELECT req.ord, req.user_id, req.item_id, req.code, s.id AS sale_id, s.hold_ttl,
           row_number() OVER (PARTITION BY req.item_id ORDER BY req.ord) AS item_rank
    FROM req
    CROSS JOIN sale s
    WHERE req.item_id BETWEEN 1 AND s.items
      AND coalesce((SELECT b.units_bought FROM buyers b WHERE b.sale_id = s.id AND b.user_id = req.user_id), 0)
        + (SELECT count(*) FROM units h
           WHERE h.sale_id = s.id AND h.held_by = req.user_id AND h.sold_at IS NULL AND h.held_until > now())
        + req.user_rank <= s.per_user_limit
),
wanted AS (
    SELECT e.sale_id, e.item_id, count(*) AS n FROM eligible e GROUP BY e.sale_id, e.item_id
),
claimed AS (
    SELECT w.item_id, f.id,
           row_number() OVER (PARTITION BY w.item_id ORDER BY f.held_until, f.id) AS item_rank
    FROM wanted w
    CROSS JOIN LATERAL (
        SELECT u.id, u.held_until FROM units u
        WHERE u.sale_id = w.sale_id AND u.item_id = w.item_id AND u.sold_at IS NULL AND u.held_until <= now()
        ORDER BY u.held_until
        LIMIT w.n
        FOR UPDATE SKIP LOCKED
    ) AS f
)
UPDATE units u
SET held_by = e.user_id, hold_code = e.code, held_until = now() + e.hold_ttl
FROM eligible e
JOIN claimed c ON c.item_id = e.item_id AND c.item_rank = e.item_rank
WHERE u.id = c.id;

-- name: CheckoutAttemptsInsert :many
-- Stores every request of the batch with its outcome and returns one row per
-- request (ord: its 1-based position). A request was held exactly when
-- UnitsClaim put its code on a unit; this statement sees that claim (READ
-- COMMITTED: a new snapshot per statement, which includes the transaction's
-- own writes). For the others the outcome says why, read under the same
-- user locks: a user's holds and counter cannot change between the two
-- statements, and no unit can become free.
-- Every lookup of a request is a lateral subquery behind OFFSET 0 or a
-- scalar subquery: one index probe per request. As plain joins, the
-- planner may hash a whole table (every unit or item) for a batch of 64.
-- has_free is read after UnitsClaim, so it counts this batch's claims as
-- taken: it only decides between the refusals.
WITH sale AS MATERIALIZED (
    SELECT latest.id, latest.items, latest.per_user_limit,
           coalesce((SELECT u.held_until <= now() FROM units u
                     WHERE u.sale_id = latest.id AND u.sold_at IS NULL
                     ORDER BY u.held_until LIMIT 1), false) AS has_free
    FROM (SELECT * FROM sales WHERE starts_at <= now() ORDER BY starts_at DESC LIMIT 1) AS latest
    WHERE latest.ends_at > now()
),
req AS (
    SELECT r.ord, r.user_id, (@item_ids::bigint[])[r.ord] AS item_id, (@codes::text[])[r.ord] AS code
    FROM unnest(@user_ids::text[]) WITH ORDINALITY AS r(user_id, ord)
),
decided AS (
    SELECT req.ord, req.user_id, req.item_id, req.code, s.id AS sale_id, h.id AS unit_id, h.held_until,
           CASE
               WHEN s.id IS NULL THEN 'no_active_sale'
               WHEN req.item_id NOT BETWEEN 1 AND s.items THEN 'item_not_found'
               WHEN h.id IS NOT NULL THEN 'held'
               WHEN NOT s.has_free THEN 'sold_out'
               WHEN coalesce((SELECT b.units_bought FROM buyers b WHERE b.sale_id = s.id AND b.user_id = req.user_id), 0)
                  + (SELECT count(*) FROM units o
                     WHERE o.sale_id = s.id AND o.held_by = req.user_id AND o.sold_at IS NULL AND o.held_until > now())
                  >= s.per_user_limit THEN 'user_limit_reached'
               -- Units of this item that SKIP LOCKED passed over are being
               -- claimed or bought right now: item_unavailable only when
               -- another item still has a free unit.
               WHEN (SELECT u.held_until <= now() FROM units u
                     WHERE u.sale_id = s.id AND u.item_id <> req.item_id AND u.sold_at IS NULL
                     ORDER BY u.held_until LIMIT 1) THEN 'item_unavailable'
               ELSE 'sold_out'
           END::checkout_outcome AS outcome
    FROM req
    LEFT JOIN sale s ON true
    LEFT JOIN LATERAL (
        SELECT u.id, u.held_until FROM units u
        WHERE u.hold_code = req.code AND u.sale_id = s.id
        OFFSET 0
    ) AS h ON true
),
inserted AS (
    INSERT INTO checkout_attempts (sale_id, user_id, item_id, outcome, code, unit_id, expires_at)
    SELECT d.sale_id, d.user_id, d.item_id, d.outcome,
           CASE WHEN d.outcome = 'held' THEN d.code END, d.unit_id, d.held_until
    FROM decided d
    ORDER BY d.ord
),
held AS (
    SELECT d.ord, d.code::text AS code, d.held_until AS expires_at, it.name AS item_name, it.price_cents
    FROM decided d
    CROSS JOIN LATERAL (
        SELECT it.name, it.price_cents FROM items it
        WHERE it.sale_id = d.sale_id AND it.item_id = d.item_id
        OFFSET 0
    ) AS it
    WHERE d.outcome = 'held'
)
SELECT d.ord::integer AS ord, d.outcome, d.sale_id, h.code, h.expires_at, h.item_name, h.price_cents
FROM decided d
LEFT JOIN held h ON h.ord = d.ord
ORDER BY d.ord;
