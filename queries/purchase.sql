-- A purchase batch is four statements sent in one pipeline inside one READ
-- COMMITTED transaction (internal/sale/store/tx.go):
--   UnitsLockHeld -> UserLocksTakeForCodes -> UnitsSell -> PurchasesGetByCodes.
-- A code is the key of its request: the batcher never puts one code twice in
-- a batch, so racing repeats of a code run one after the other.

-- name: UnitsLockHeld :execrows
-- Locks the units still held under the batch's codes, in id order, before
-- any user lock (see queries/user_locks.sql): racing repeats of a code queue
-- here, and two purchase batches never wait for each other in a cycle. A
-- unit whose hold has expired by the clock is left alone: it is free for
-- checkouts, whose SKIP LOCKED must not pass over it. A unit re-claimed
-- while this waited has another hold_code and drops out when PostgreSQL
-- re-checks the row after the wait.
SELECT u.id FROM units u
WHERE u.hold_code = ANY(@codes::text[]) AND u.sold_at IS NULL AND u.held_until > clock_timestamp()
ORDER BY u.id
FOR UPDATE;

-- name: UnitsSell :execrows
-- Sells each unit still held under one of the codes, records the purchase
-- and its event, and adds it to the buyer's counter, in one statement. It runs under the
-- users' locks (UserLocksTakeForCodes), which checkout takes too: a hold a
-- checkout saw as expired cannot be sold after that checkout counted the
-- user's units. clock_timestamp(), not now(): the lock waits may have
-- outlived the hold. It never waits for a row: the units it updates were
-- locked by UnitsLockHeld (the set under these conditions only shrinks),
-- and the buyers row of a user is only written under that user's lock.
-- Several codes of one user in the batch add up in one counter update.
-- buyers_within_limit refuses a purchase past the cap, failing the batch,
-- which the service then sells one code per transaction so that only that
-- purchase is refused; checkout's cap (counter plus live holds) makes that
-- unreachable.
WITH sold AS (
    UPDATE units u SET sold_at = now()
    WHERE u.hold_code = ANY(@codes::text[]) AND u.sold_at IS NULL AND u.held_until > clock_timestamp()
    RETURNING u.id, u.sale_id, u.item_id, u.held_by, u.hold_code
),
-- Lookups as scalar subqueries, one index probe per row: as joins, the
-- planner may hash a whole table for the few rows of a batch.
bought AS (
    INSERT INTO purchases (sale_id, user_id, item_id, unit_id, code, price_cents)
    SELECT s.sale_id, s.held_by, s.item_id, s.id, s.hold_code,
           (SELECT i.price_cents FROM items i WHERE i.sale_id = s.sale_id AND i.item_id = s.item_id)
    FROM sold s
    RETURNING id, sale_id, user_id
),
-- The purchase's event commits with it (migrations/00008_events.sql).
evented AS (
    INSERT INTO event_outbox (type, sale_id, purchase_id)
    SELECT 'purchase.completed', b.sale_id, b.id FROM bought b
)
INSERT INTO buyers (sale_id, user_id, units_bought, per_user_limit)
SELECT b.sale_id, b.user_id, count(*), (SELECT s.per_user_limit FROM sales s WHERE s.id = b.sale_id)
FROM bought b
GROUP BY b.sale_id, b.user_id
ON CONFLICT (sale_id, user_id) DO UPDATE SET units_bought = buyers.units_bought + excluded.units_bought;

-- name: PurchasesGetByCodes :many
-- One row per code (ord: its 1-based position) of the codes of one sale
-- (sale_id: the sale they name, see internal/sale/code.go; the service
-- sends one statement per sale of the batch, so only that sale's partition
-- of checkout_attempts is read): the purchase made with it, by this
-- transaction or an earlier one (a repeat answers with the first
-- purchase), or why there is none. A code was issued, and is now
-- code_expired, when its checkout attempt is there.
-- user_purchases is the buyer's counter: what the user owns in the sale,
-- this purchase included. Each lookup is a lateral or scalar subquery, one
-- index probe per code: as plain joins (or EXISTS, which the planner may
-- hash), it may read every purchase, unit or attempt of the sale for a
-- batch of 64.
WITH req AS (
    SELECT c.code, c.ord FROM unnest(@codes::text[]) WITH ORDINALITY AS c(code, ord)
),
found AS (
    SELECT req.ord, p.id AS purchase_id, p.sale_id, p.user_id, p.item_id, p.price_cents, p.purchased_at,
           i.name AS item_name, i.sku, i.description, i.currency, i.image_url, b.units_bought AS user_purchases
    FROM req
    CROSS JOIN LATERAL (
        SELECT p.id, p.sale_id, p.user_id, p.item_id, p.price_cents, p.purchased_at
        FROM purchases p WHERE p.code = req.code OFFSET 0
    ) AS p
    LEFT JOIN LATERAL (
        SELECT i.name, i.sku, i.description, i.currency, i.image_url
        FROM items i WHERE i.sale_id = p.sale_id AND i.item_id = p.item_id OFFSET 0
    ) AS i ON true
    LEFT JOIN LATERAL (
        SELECT b.units_bought FROM buyers b WHERE b.sale_id = p.sale_id AND b.user_id = p.user_id OFFSET 0
    ) AS b ON true
)
SELECT req.ord::integer AS ord,
       CASE
           WHEN f.ord IS NOT NULL THEN 'purchased'
           WHEN (SELECT true FROM checkout_attempts a WHERE a.sale_id = @sale_id::bigint AND a.code = req.code)
               THEN 'code_expired'
           ELSE 'code_not_found'
       END::purchase_outcome AS outcome,
       f.purchase_id, f.sale_id, f.user_id, f.item_id, f.item_name, f.price_cents, f.purchased_at, f.user_purchases,
       f.sku, f.description, f.currency, f.image_url
FROM req
LEFT JOIN found f ON f.ord = req.ord
ORDER BY req.ord;

-- name: PurchasesListByUser :many
SELECT p.id, p.sale_id, p.user_id, p.item_id, p.code, p.price_cents, p.purchased_at, i.name AS item_name,
       i.sku, i.description, i.currency, i.image_url
FROM purchases p
JOIN items i ON i.sale_id = p.sale_id AND i.item_id = p.item_id
WHERE p.sale_id = @sale_id AND p.user_id = @user_id
ORDER BY p.id;

-- name: CheckoutHolderByCode :one
-- The user a code was issued to, read from the partition of the sale the
-- code names (sale_id). A code's attempt row never changes, so this may be
-- read before the purchase's transaction.
SELECT a.user_id FROM checkout_attempts a WHERE a.sale_id = @sale_id::bigint AND a.code = @code::text;
