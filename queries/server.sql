-- name: ServerEncodingGet :one
SELECT current_setting('server_encoding')::text AS server_encoding;

-- name: DatabaseNow :one
-- The one clock every server agrees on.
SELECT now()::timestamptz AS now;
