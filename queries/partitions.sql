-- checkout_attempts has one partition per sale (migrations/00005). These
-- queries decide which partitions exist; the two functions they call only
-- make or drop the partition of the sale they are given.

-- name: CheckoutAttemptsPartitionCreate :one
-- Makes the partition of the sale's attempts unless it exists. It is sent
-- in the transaction that creates the sale, so no checkout can find the
-- sale without its partition.
SELECT checkout_attempts_partition_create(@sale_id::bigint)::boolean AS created;

-- name: LockTimeoutSetLocal :exec
-- Bounds every lock wait of the rest of the transaction: the statements
-- after it give up with an error instead of queueing checkouts behind them.
SELECT set_config('lock_timeout', @timeout::text, true);

-- name: CheckoutAttemptsDropOld :many
-- Drops the attempts of up to max_sales sales that ended, and whose last
-- hold expired, more than retention ago, and marks each sale's row with
-- when. Never the current or a future sale: their ends_at is ahead. Rows
-- another server is dropping are skipped (SKIP LOCKED), and the partition
-- is dropped only for the rows this statement updates (RETURNING runs per
-- updated row, after its lock).
WITH old AS (
    SELECT s.id FROM sales s
    WHERE s.attempts_dropped_at IS NULL
      AND s.ends_at + s.hold_ttl + @retention::interval <= now()
    ORDER BY s.id
    LIMIT @max_sales::integer
    FOR UPDATE SKIP LOCKED
)
UPDATE sales s SET attempts_dropped_at = now()
FROM old
WHERE s.id = old.id
RETURNING s.id, checkout_attempts_partition_drop(s.id)::boolean AS had_partition;
