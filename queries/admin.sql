-- Sales a shop defines, and the controls of a running sale. Each change is
-- one transaction that starts with SaleCreationLock (queries/sales.sql), so
-- definitions, the generated sales and each other's edits happen one at a
-- time, and ends with AdminActionRecord.
--
-- A sale can be defined, replaced or deleted only while its start is more
-- than @lead ahead of the database's clock: the transaction's own deadline
-- is shorter than that, so no edit can commit once checkouts may run
-- against the sale.

-- name: SaleGetForEdit :one
-- Locks the sale's row for the rest of the transaction and says whether
-- its start is far enough ahead to change its definition.
SELECT sqlc.embed(s), (s.starts_at > now() + @lead::interval)::boolean AS editable, now()::timestamptz AS db_now
FROM sales s
WHERE s.id = @id
FOR UPDATE;

-- name: SaleDocumentGet :one
SELECT d.document FROM sale_documents d WHERE d.id = @id;

-- name: SaleHeaderGet :one
SELECT h.document FROM sale_headers h WHERE h.id = @id;

-- name: SalesDeleteGeneratedOverlapping :many
-- Makes room for a definition: deletes the generated sales that overlap
-- its window and start more than @lead ahead (made ahead of their window,
-- no checkout can have reached them), with their attempts' partitions.
-- One that starts sooner stays, and the definition then overlaps it.
DELETE FROM sales s
WHERE s.defined_by IS NULL
  AND s.starts_at > now() + @lead::interval
  AND tstzrange(s.starts_at, s.ends_at) && tstzrange(@starts_at::timestamptz, @ends_at::timestamptz)
  AND s.id <> @keep_id::bigint
RETURNING s.id, checkout_attempts_partition_drop(s.id)::boolean AS had_partition;

-- name: SaleInsertDefined :one
-- A defined sale, with no row when its start is not more than @lead ahead.
-- Its window may not overlap another sale's (sales_no_overlap).
INSERT INTO sales (starts_at, ends_at, units_total, items, per_user_limit, hold_ttl, defined_by, definition_sha256)
SELECT @starts_at::timestamptz, @ends_at::timestamptz, @units_total::integer, @items::integer,
       @per_user_limit::integer, @hold_ttl::interval, @defined_by::text, @definition_sha256::text
WHERE @starts_at::timestamptz > now() + @lead::interval
RETURNING *;

-- name: SaleUpdateDefinition :one
-- A new definition for a sale that has not started (SaleGetForEdit said
-- so, and its row is locked). Its items are replaced after it.
UPDATE sales
SET starts_at = @starts_at::timestamptz, ends_at = @ends_at::timestamptz, units_total = @units_total::integer,
    items = @items::integer, per_user_limit = @per_user_limit::integer, hold_ttl = @hold_ttl::interval,
    defined_by = @defined_by::text, definition_sha256 = @definition_sha256::text
WHERE id = @id AND @starts_at::timestamptz > now() + @lead::interval
RETURNING *;

-- name: ItemsDeleteForSale :exec
-- With their units (ON DELETE CASCADE): only for a sale that has not
-- started, so no unit is held or sold.
DELETE FROM items WHERE sale_id = @sale_id;

-- name: ItemsInsertDefined :exec
-- The items of a definition, numbered 1.. in the order given.
INSERT INTO items (sale_id, item_id, sku, name, description, price_cents, currency, units, image_url)
SELECT @sale_id::bigint, d.ord, d.sku, (@names::text[])[d.ord], (@descriptions::text[])[d.ord],
       (@prices_cents::integer[])[d.ord], (@currencies::text[])[d.ord], (@units::integer[])[d.ord],
       nullif((@image_urls::text[])[d.ord], '')
FROM unnest(@skus::text[]) WITH ORDINALITY AS d(sku, ord);

-- name: SaleDelete :one
-- Deletes a sale that has not started (its row is locked by
-- SaleGetForEdit), its items and units, and its attempts' partition.
DELETE FROM sales s
WHERE s.id = @id AND s.starts_at > now() + @lead::interval
RETURNING s.id, checkout_attempts_partition_drop(s.id)::boolean AS had_partition;

-- name: SalePause :one
-- New checkouts of a paused sale are refused as sale_paused (queries/
-- checkout.sql); holds already made can still be bought until they expire.
UPDATE sales SET paused_at = now()
WHERE id = @id AND paused_at IS NULL AND ends_at > now()
RETURNING *;

-- name: SaleResume :one
UPDATE sales SET paused_at = NULL
WHERE id = @id AND paused_at IS NOT NULL AND ends_at > now()
RETURNING *;

-- name: SaleEnd :one
-- Ends a running sale now: its window closes at the transaction's start,
-- so checkouts from then on find no open sale. Holds already made can
-- still be bought until they expire, as at a sale's natural end.
UPDATE sales SET ends_at = greatest(now(), starts_at + interval '1 microsecond')
WHERE id = @id AND starts_at <= now() AND ends_at > now()
RETURNING *;

-- name: AdminActionRecord :one
-- The action's audit row: the sale as it was (read before the change, in
-- the same transaction) and as it is now (NULL once deleted), with its
-- items when the action may have changed them (with_items), else its own
-- row only (sale_headers).
INSERT INTO admin_actions (actor, action, sale_id, before, after)
VALUES (@actor::text, @action::text, @sale_id::bigint, sqlc.narg('before')::jsonb,
        CASE WHEN @with_items::boolean
             THEN (SELECT d.document FROM sale_documents d WHERE d.id = @sale_id::bigint)
             ELSE (SELECT h.document FROM sale_headers h WHERE h.id = @sale_id::bigint) END)
RETURNING *;

-- name: SalesList :many
-- Sales that end after @since, in order, with their live counts: the
-- current and future ones by default. The next page is since = the last
-- sale's ends_at (windows do not overlap).
SELECT sqlc.embed(s), st.units_sold, st.units_held, st.units_available, st.buyers, st.max_units_per_user
FROM sales s
CROSS JOIN LATERAL (SELECT * FROM sale_stock WHERE sale_stock.id = s.id) st
WHERE s.ends_at > @since::timestamptz
ORDER BY s.ends_at
LIMIT @max_sales::integer;

-- name: AdminActionsForSale :many
SELECT * FROM admin_actions WHERE sale_id = @sale_id ORDER BY id;

-- name: ItemsListForSale :many
SELECT * FROM items WHERE sale_id = @sale_id ORDER BY item_id;
