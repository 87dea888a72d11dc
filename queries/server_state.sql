-- name: TransactionIDAssign :exec
-- Gives the batch's transaction an id even when it writes nothing (a
-- replayed idempotency key, a repeated purchase), so that its COMMIT writes
-- a commit record and, under synchronous replication, waits until the
-- standby has every WAL record before it: what such a batch read, maybe
-- written by a commit whose wait for the standby was cancelled, is then on
-- the standby before its answer is given (see internal/sale/store/tx.go).
SELECT pg_current_xact_id();

-- name: ServerWritable :one
-- Whether this connection's server takes writes: not a standby in
-- recovery, and not read-only by default_transaction_read_only (what a
-- demoted or fenced primary may be set to). Asked by readiness on the
-- write pool.
SELECT pg_is_in_recovery() AS in_recovery,
       current_setting('transaction_read_only')::text = 'on' AS read_only;
