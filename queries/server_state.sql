-- name: CommitWaitsForStandby :exec
-- Makes the batch's transaction write WAL and take a transaction id even
-- when it stores nothing (a replayed idempotency key, a repeated
-- purchase): PostgreSQL then writes its commit record and, under
-- synchronous replication, answers COMMIT only once the standby has every
-- WAL record up to it. What such a batch read, maybe written by a commit
-- whose wait for the standby was cancelled, is then on the standby before
-- its answer is given (see internal/sale/store/syncrep.go). A transaction
-- id alone is not enough: a commit that wrote no WAL does not wait. The
-- message is a few bytes of WAL that logical decoding, if any, ignores by
-- its prefix.
SELECT pg_logical_emit_message(true, 'flashsale', '');

-- name: ServerWritable :one
-- Whether this connection's server takes writes: not a standby in
-- recovery, and not read-only by default_transaction_read_only (what a
-- demoted or fenced primary may be set to). Asked by readiness on the
-- write pool.
SELECT pg_is_in_recovery() AS in_recovery,
       current_setting('transaction_read_only')::text = 'on' AS read_only;
