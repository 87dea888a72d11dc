-- Per-user advisory locks, transaction-scoped: the only thing that orders
-- two transactions touching one user's holds and purchases. The key is
-- (1, hashtext(user id)), one per user whatever the sale: which sale is
-- current is read by each statement for itself, and a sale that becomes
-- visible between two statements of a transaction (another server created
-- it right then) must not leave a claim without its lock. Two users whose
-- ids hash alike share a lock, which costs waiting, never correctness.
-- The class 1 is only ours: goose's migration lock uses the one-bigint form
-- of advisory lock keys, a separate key space.
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
-- The locks of a checkout batch's users. A sold-out storm does not come
-- here: it goes the short way (CheckoutAttemptsInsertIfSoldOut), which
-- claims nothing and needs no lock.
SELECT count(pg_advisory_xact_lock(1, k.user_key))::integer AS locked
FROM (
    SELECT DISTINCT hashtext(r.user_id) AS user_key
    FROM unnest(@user_ids::text[]) AS r(user_id)
    ORDER BY 1
) AS k;

-- name: UserLocksTakeForCodes :one
-- The locks of the users holding the units a purchase batch may sell: the
-- units still unsold under its codes, which UnitsLockHeld has just locked
-- (so none changes holder meanwhile). A code whose unit is sold or held
-- under another code sells nothing and needs no lock. Sent after
-- UnitsLockHeld: see the lock order above.
SELECT count(pg_advisory_xact_lock(1, k.user_key))::integer AS locked
FROM (
    SELECT DISTINCT hashtext(u.held_by) AS user_key
    FROM units u
    WHERE u.hold_code = ANY(@codes::text[]) AND u.sold_at IS NULL
    ORDER BY 1
) AS k;
