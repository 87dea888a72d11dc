-- name: IdempotencyKeysDeleteExpired :execrows
-- Removes answers kept under idempotency keys past their expiry, a bounded
-- slice at a time so one run never holds many row locks or a long
-- transaction. The scheduler calls it until it deletes fewer than the limit.
-- An expired row still present is never replayed (CheckoutsDecide reads
-- only live ones) and is replaced by the next request with its key.
DELETE FROM idempotency_keys k
WHERE (k.user_id, k.key) IN (
    SELECT e.user_id, e.key FROM idempotency_keys e
    WHERE e.expires_at <= now()
    ORDER BY e.expires_at
    LIMIT @max_rows::integer
    FOR UPDATE SKIP LOCKED
);
