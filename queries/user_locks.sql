-- Per-user advisory locks, transaction-scoped: the only thing that orders
-- two transactions touching one user's holds and purchases in a sale. Keys
-- are (sale id, hashtext(user id)); two users whose ids hash alike only
-- share a lock, which costs waiting, never correctness.
--
-- Lock order, which keeps checkout and purchase free of deadlocks:
-- * every transaction takes its user locks in one statement, in ascending
--   key order, so two batches with users in common never wait in a cycle;
-- * checkout never waits for a row lock (its claims SKIP LOCKED);
-- * purchase waits for its units' row locks (UnitsLockHeld) before it takes
--   any user lock, and never waits for a row while holding one.
-- A wait for a row thus never happens while an advisory lock is held by
-- the waiter, and advisory locks are taken in one global order.
--
-- Under READ COMMITTED each statement takes its snapshot when it starts, so
-- the statements queued after these (in the same pipeline) see everything
-- the previous holder of each lock committed.

-- name: UserLocksTakeForCheckout :one
-- The locks of a checkout batch's users in the current sale, only while the
-- sale has a free unit: when it has none (a sold-out storm) every request
-- is answered sold_out without any user lock, and no later statement of the
-- transaction can find a free unit either (see queries/checkout.sql).
SELECT count(pg_advisory_xact_lock(k.sale_id::integer, k.user_key))::integer AS locked
FROM (
    SELECT DISTINCT s.id AS sale_id, hashtext(r.user_id) AS user_key
    FROM (SELECT * FROM sales WHERE starts_at <= now() ORDER BY starts_at DESC LIMIT 1) AS s
    CROSS JOIN unnest(@user_ids::text[]) AS r(user_id)
    WHERE s.ends_at > now()
      AND (SELECT u.held_until <= now() FROM units u
           WHERE u.sale_id = s.id AND u.sold_at IS NULL
           ORDER BY u.held_until LIMIT 1)
    ORDER BY 1, 2
) AS k;

-- name: UserLocksTakeForCodes :one
-- The locks of the users behind a purchase batch's codes, in every sale
-- those codes belong to. Sent after UnitsLockHeld: see the lock order above.
SELECT count(pg_advisory_xact_lock(k.sale_id::integer, k.user_key))::integer AS locked
FROM (
    SELECT DISTINCT a.sale_id, hashtext(a.user_id) AS user_key
    FROM unnest(@codes::text[]) AS c(code)
    -- One index probe per code (a join could hash every attempt).
    CROSS JOIN LATERAL (
        SELECT a.sale_id, a.user_id FROM checkout_attempts a
        WHERE a.code = c.code AND a.sale_id IS NOT NULL
        OFFSET 0
    ) AS a
    ORDER BY 1, 2
) AS k;
