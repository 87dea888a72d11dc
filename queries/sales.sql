-- name: SaleCreationLock :exec
-- Taken first by the transaction that creates a sale, so servers create
-- sales one at a time: two transactions inserting the same or overlapping
-- windows would each wait for the other's row in the sales_no_overlap
-- exclusion constraint, which PostgreSQL ends with a deadlock error. The
-- key (2, 0) is apart from the users' (1, ...) (queries/user_locks.sql).
-- Sales are created ahead of their window, so no request waits for it.
SELECT pg_advisory_xact_lock(2, 0);

-- name: SaleInsert :one
-- Creates a generated sale window unless one with the same start exists
-- (the loser of a race between servers waits for the winner's commit and
-- gets no row) or a sale a shop defined overlaps it: a defined sale takes
-- the windows it touches. Sent after SaleCreationLock, so no definition
-- can commit between the check and the insert.
INSERT INTO sales (starts_at, ends_at, units_total, items, per_user_limit, hold_ttl)
SELECT @starts_at::timestamptz, @ends_at::timestamptz, @units_total::integer, @items::integer,
       @per_user_limit::integer, @hold_ttl::interval
WHERE NOT EXISTS (
    SELECT FROM sales d
    WHERE d.defined_by IS NOT NULL
      AND tstzrange(d.starts_at, d.ends_at) && tstzrange(@starts_at::timestamptz, @ends_at::timestamptz)
)
ON CONFLICT (starts_at) DO NOTHING
RETURNING *;

-- name: ItemsInsertForSale :exec
-- A generated sale's items. Names and prices are derived from a hash of
-- (sale, item), so they are stable for a sale and differ between sales;
-- item n's sku is itemN (the old system's name for it), and the units are
-- spread evenly, the first units_total % items items having one more.
INSERT INTO items (sale_id, item_id, sku, units, name, price_cents)
SELECT s.id, g.n, 'item' || g.n, s.units_total / s.items + (g.n <= s.units_total % s.items)::integer,
       (ARRAY['Crimson','Silent','Golden','Electric','Velvet','Arctic','Lucky','Midnight','Cosmic','Rustic',
              'Neon','Royal','Wild','Misty','Brave','Sunny'])[1 + (abs(hashtext(s.id || ':' || g.n)) % 16)]
       || ' ' ||
       (ARRAY['Falcon','Teapot','Lantern','Sneaker','Backpack','Compass','Headphones','Kettle','Notebook',
              'Umbrella','Skateboard','Telescope','Guitar','Wristwatch','Candle','Drone'])[1 + (abs(hashtext(g.n || ':' || s.id)) % 16)]
       || ' #' || g.n,
       100 * (1 + abs(hashtext('price:' || s.id || ':' || g.n)) % 99) + 99
FROM sales s, generate_series(1, s.items) AS g(n)
WHERE s.id = @sale_id;

-- name: UnitsInsertForSale :exec
-- Each item's units (items.units, which add up to the sale's units_total),
-- in round-robin order over the items, so that no item's units are all
-- on the last pages of the table.
INSERT INTO units (sale_id, item_id)
SELECT i.sale_id, i.item_id
FROM items i
CROSS JOIN LATERAL generate_series(1, i.units) AS g(n)
WHERE i.sale_id = @sale_id
ORDER BY g.n, i.item_id;

-- name: SaleGetByID :one
SELECT * FROM sales WHERE id = @id;

-- name: SaleGetByStart :one
SELECT * FROM sales WHERE starts_at = @starts_at;

-- name: SaleGetCurrent :one
-- The sale whose window contains the database's now (the current_sale view).
SELECT * FROM current_sale;

-- name: SaleStockGet :one
SELECT * FROM sale_stock WHERE id = @id;

-- name: ItemGet :one
SELECT * FROM items WHERE sale_id = @sale_id AND item_id = @item_id;

-- name: ItemGetBySku :one
SELECT * FROM items WHERE sale_id = @sale_id AND sku = @sku;

-- name: ItemsListWithFreeUnits :many
-- Keyset pagination by item id. The free units of the whole page are
-- counted in one range scan of the sale's free units: whichever index the
-- planner takes (with or without statistics), it reads each free unit of
-- the sale at most once, never once per item of the page.
WITH page AS (
    SELECT i.sale_id, i.item_id, i.sku, i.name, i.description, i.price_cents, i.currency, i.image_url
    FROM items i
    WHERE i.sale_id = @sale_id AND i.item_id > @after_item_id::integer
    ORDER BY i.item_id
    LIMIT @max_items::integer
),
free AS (
    SELECT u.item_id, count(*) AS n
    FROM units u
    WHERE u.sale_id = @sale_id AND u.item_id > @after_item_id::integer
      AND u.item_id <= (SELECT max(p.item_id) FROM page p)
      AND u.sold_at IS NULL AND u.held_until <= now()
    GROUP BY u.item_id
)
SELECT p.sale_id, p.item_id, p.sku, p.name, p.description, p.price_cents, p.currency, p.image_url,
       coalesce(f.n, 0)::bigint AS free_units
FROM page p
LEFT JOIN free f ON f.item_id = p.item_id
ORDER BY p.item_id;

-- name: SaleTablesAnalyze :exec
-- A sale's units arrive in one INSERT, and a table has no statistics for
-- rows ANALYZE has not seen: the planner would then look a free unit up
-- through the whole-sale index and filter by item, an order of magnitude
-- slower per checkout (docs/benchmark.md).
-- Run after a sale is created and at start-up, so plans are right from
-- the first request; autovacuum keeps them right as the sale goes on.
ANALYZE units, items, sales;
