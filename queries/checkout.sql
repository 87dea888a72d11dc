-- A checkout batch is two statements sent in one pipeline inside one READ
-- COMMITTED transaction (internal/sale/store/tx.go):
--   UserLocksTakeForCheckout (queries/user_locks.sql) -> CheckoutsDecide,
-- or, while the sale looks sold out, CheckoutAttemptsInsertIfSoldOut alone.
-- Each statement finds the current sale itself (parameters are fixed when
-- the pipeline is queued); now() is the transaction's start, so they agree
-- on which holds have expired. The user locks do not depend on the sale, so
-- a sale that appears between the two statements changes nothing: every
-- count and claim of a user happens under that user's lock.

-- name: CheckoutsDecide :many
-- Decides every request of the batch, holds a unit for each one that may
-- have it, stores one checkout attempt per request with its outcome, and
-- returns one row per request (ord: its 1-based position). One statement,
-- so every decision is read from one snapshot, taken after the users'
-- advisory locks (UserLocksTakeForCheckout): the cap is read from what the
-- previous holder of each user's lock committed.
--
-- A request the server's rate limit refused (rate_limited[ord]) is only
-- stored, as rate_limited: its user's lock was not taken, and it reads and
-- claims nothing.
--
-- A request with an idempotency key that has a live answer
-- (idempotency_keys) is answered from it (replayed) and stores nothing; its
-- user's lock makes the lookup and the first answer's insert one step, so
-- repeats racing each other on any servers give one answer. With the same
-- key for another item it is key_reused. A new answer under a key is kept
-- with the attempt, except no_active_sale (a 503 invites a retry).
--
-- A request is refused, in this order, when no sale is open, when the item
-- is not in the sale, when the sale has no free unit, or when the user is at
-- the cap: the user's counter row (buyers) plus live holds. One statement
-- does not see its own writes, so a user's k-th request in a batch counts as
-- if the earlier ones were held (the batcher sends at most one request per
-- user in a batch, so k is 1; the rank keeps the cap safe regardless).
-- The others claim a free unit of their item FOR UPDATE SKIP LOCKED: a unit
-- another transaction is claiming or buying is passed over, never waited
-- for, and requests for one item get its free units in arrival order,
-- whatever their user ids. One that finds none is item_unavailable when
-- another item still shows a free unit (possibly one this batch is taking),
-- else sold_out.
--
-- An item is named by its id or, where skus[ord] is not empty, by its sku
-- in the current sale (an unknown sku is item 0, so item_not_found).
--
-- A hold's code is its sale's id, a dot, and codes[ord] (random, made by
-- the service): the sale is decided here, and the lookups of a code read
-- only the partition of checkout_attempts that the code names.
--
-- Lookups by key are scalar subqueries or lateral subqueries behind
-- OFFSET 0: one index probe per request. As plain joins, the planner may
-- hash a whole table (every unit or item) for a batch of 64.
WITH sale AS MATERIALIZED (
    SELECT latest.id, latest.items, latest.per_user_limit, latest.hold_ttl, latest.paused_at IS NOT NULL AS paused,
           coalesce((SELECT u.held_until <= now() FROM units u
                     WHERE u.sale_id = latest.id AND u.sold_at IS NULL
                     ORDER BY u.held_until LIMIT 1), false) AS has_free
    FROM current_sale AS latest
),
req AS (
    SELECT r.ord, r.user_id,
           CASE WHEN coalesce((@skus::text[])[r.ord], '') = '' THEN (@item_ids::bigint[])[r.ord]
                ELSE coalesce((SELECT i.item_id FROM sale s JOIN items i ON i.sale_id = s.id
                               WHERE i.sku = (@skus::text[])[r.ord]), 0)
           END AS item_id,
           (@codes::text[])[r.ord] AS code,
           nullif((@idempotency_keys::text[])[r.ord], '') AS idem_key,
           (@rate_limited::boolean[])[r.ord] AS limited
    FROM unnest(@user_ids::text[]) WITH ORDINALITY AS r(user_id, ord)
),
replayed AS (
    SELECT req.ord, k.item_id, k.sale_id, k.outcome, k.code, k.hold_expires_at,
           k.item_id <> req.item_id AS key_reused
    FROM req
    CROSS JOIN LATERAL (
        SELECT k.* FROM idempotency_keys k
        WHERE k.user_id = req.user_id AND k.key = req.idem_key AND k.expires_at > now()
        OFFSET 0
    ) AS k
    WHERE req.idem_key IS NOT NULL AND NOT req.limited
),
fresh AS (
    SELECT req.*,
           row_number() OVER (PARTITION BY req.user_id, req.limited ORDER BY req.ord) AS user_rank
    FROM req
    WHERE NOT EXISTS (SELECT FROM replayed p WHERE p.ord = req.ord)
),
checked AS (
    SELECT f.ord, f.user_id, f.item_id, s.id || '.' || f.code AS code, f.idem_key, s.id AS sale_id, s.hold_ttl,
           CASE
               WHEN f.limited THEN 'rate_limited'
               WHEN s.id IS NULL THEN 'no_active_sale'
               WHEN f.item_id NOT BETWEEN 1 AND s.items THEN 'item_not_found'
               WHEN s.paused THEN 'sale_paused'
               WHEN NOT s.has_free THEN 'sold_out'
               WHEN coalesce((SELECT b.units_bought FROM buyers b WHERE b.sale_id = s.id AND b.user_id = f.user_id), 0)
                  + (SELECT count(*) FROM units h
                     WHERE h.sale_id = s.id AND h.held_by = f.user_id AND h.sold_at IS NULL AND h.held_until > now())
                  + f.user_rank > s.per_user_limit THEN 'user_limit_reached'
           END::checkout_outcome AS refusal
    FROM fresh f
    LEFT JOIN sale s ON true
),
eligible AS (
    SELECT c.ord, c.user_id, c.item_id, c.code, c.sale_id, c.hold_ttl,
           row_number() OVER (PARTITION BY c.item_id ORDER BY c.ord) AS item_rank
    FROM checked c
    WHERE c.refusal IS NULL
),
wanted AS (
    SELECT e.sale_id, e.item_id, count(*) AS n FROM eligible e GROUP BY e.sale_id, e.item_id
),
picked AS (
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
),
held AS (
    UPDATE units u
    SET held_by = e.user_id, hold_code = e.code, held_until = now() + e.hold_ttl
    FROM eligible e
    JOIN picked p ON p.item_id = e.item_id AND p.item_rank = e.item_rank
    WHERE u.id = p.id
    RETURNING e.ord, u.id AS unit_id, u.held_until AS expires_at, u.hold_code AS code
),
decided AS (
    SELECT c.ord, c.user_id, c.item_id, c.idem_key, c.sale_id, h.unit_id, h.expires_at, h.code,
           CASE
               WHEN c.refusal IS NOT NULL THEN c.refusal
               WHEN h.unit_id IS NOT NULL THEN 'held'
               WHEN (SELECT u.held_until <= now() FROM units u
                     WHERE u.sale_id = c.sale_id AND u.item_id <> c.item_id AND u.sold_at IS NULL
                     ORDER BY u.held_until LIMIT 1) THEN 'item_unavailable'
               ELSE 'sold_out'
           END::checkout_outcome AS outcome
    FROM checked c
    LEFT JOIN held h ON h.ord = c.ord
),
inserted AS (
    INSERT INTO checkout_attempts (sale_id, user_id, item_id, outcome, code, unit_id, expires_at)
    SELECT d.sale_id, d.user_id, d.item_id, d.outcome, d.code, d.unit_id, d.expires_at
    FROM decided d
    ORDER BY d.ord
),
kept AS (
    -- An expired answer not yet deleted gives way to the new one.
    INSERT INTO idempotency_keys AS k (user_id, key, item_id, sale_id, outcome, code, hold_expires_at, expires_at)
    SELECT d.user_id, d.idem_key, d.item_id, d.sale_id, d.outcome, d.code, d.expires_at,
           now() + @idempotency_key_ttl::interval
    FROM decided d
    WHERE d.idem_key IS NOT NULL AND d.outcome NOT IN ('no_active_sale', 'rate_limited', 'sale_paused')
    ON CONFLICT (user_id, key) DO UPDATE
    SET item_id = excluded.item_id, sale_id = excluded.sale_id, outcome = excluded.outcome, code = excluded.code,
        hold_expires_at = excluded.hold_expires_at, created_at = excluded.created_at,
        expires_at = excluded.expires_at
    WHERE k.expires_at <= now()
),
answers AS (
    SELECT d.ord, d.outcome, d.sale_id, d.item_id, d.code, d.expires_at, false AS replayed, false AS key_reused
    FROM decided d
    UNION ALL
    SELECT p.ord, p.outcome, p.sale_id, p.item_id, p.code, p.hold_expires_at, true, p.key_reused
    FROM replayed p
),
-- The item of each hold, for its answer: one index probe per hold.
hold_items AS (
    SELECT a.ord, i.*
    FROM answers a
    CROSS JOIN LATERAL (
        SELECT i.item_id, i.sku, i.name, i.description, i.price_cents, i.currency, i.image_url
        FROM items i
        WHERE i.sale_id = a.sale_id AND i.item_id = a.item_id
        OFFSET 0
    ) AS i
    WHERE a.code IS NOT NULL
)
SELECT a.ord::integer AS ord, a.outcome, a.sale_id, a.code, a.expires_at, a.replayed, a.key_reused,
       h.item_id, h.sku, h.name AS item_name, h.description, h.price_cents, h.currency, h.image_url
FROM answers a
LEFT JOIN hold_items h ON h.ord = a.ord
ORDER BY a.ord;

-- name: CheckoutAttemptsInsertIfSoldOut :many
-- The sold-out storm's short way: when the current sale has no free unit
-- (or no sale is open), every request of the batch is refused and stored
-- as such, with no user lock and no claim to prepare. When a unit is free
-- it stores and returns only the rate-limited requests (rate_limited[ord]),
-- and the rest of the batch is decided the full way
-- (UserLocksTakeForCheckout, CheckoutsDecide). The service tries this
-- first only while its previous batch found the sale sold out: a hint
-- for which query to send, checked here, never trusted. Requests with an
-- idempotency key never come here: their key is read under their user's
-- lock.
WITH sale AS MATERIALIZED (
    SELECT latest.id, latest.items, latest.paused_at IS NOT NULL AS paused,
           coalesce((SELECT u.held_until <= now() FROM units u
                     WHERE u.sale_id = latest.id AND u.sold_at IS NULL
                     ORDER BY u.held_until LIMIT 1), false) AS has_free
    FROM current_sale AS latest
),
decided AS (
    SELECT r.ord, r.user_id, r.item_id, s.id AS sale_id,
           CASE
               WHEN (@rate_limited::boolean[])[r.ord] THEN 'rate_limited'
               WHEN s.id IS NULL THEN 'no_active_sale'
               WHEN r.item_id NOT BETWEEN 1 AND s.items THEN 'item_not_found'
               WHEN s.paused THEN 'sale_paused'
               ELSE 'sold_out'
           END::checkout_outcome AS outcome
    FROM (
        SELECT u.ord, u.user_id,
               CASE WHEN coalesce((@skus::text[])[u.ord], '') = '' THEN (@item_ids::bigint[])[u.ord]
                    ELSE coalesce((SELECT i.item_id FROM sale s JOIN items i ON i.sale_id = s.id
                                   WHERE i.sku = (@skus::text[])[u.ord]), 0)
               END AS item_id
        FROM unnest(@user_ids::text[]) WITH ORDINALITY AS u(user_id, ord)
    ) AS r
    LEFT JOIN sale s ON true
    WHERE (@rate_limited::boolean[])[r.ord] OR NOT coalesce(s.has_free, false)
),
inserted AS (
    INSERT INTO checkout_attempts (sale_id, user_id, item_id, outcome)
    SELECT d.sale_id, d.user_id, d.item_id, d.outcome FROM decided d
)
SELECT d.ord::integer AS ord, d.outcome, d.sale_id FROM decided d;
