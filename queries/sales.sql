-- name: SaleCreationLock :exec
-- Taken first by the transaction that creates a sale, so servers create
-- sales one at a time: two transactions inserting the same or overlapping
-- windows would each wait for the other's row in the sales_no_overlap
-- exclusion constraint, which PostgreSQL ends with a deadlock error. The
-- key (2, 0) is apart from the users' (1, ...) (queries/user_locks.sql).
-- Sales are created ahead of their window, so no request waits for it.
SELECT pg_advisory_xact_lock(2, 0);

-- name: SaleInsert :one
-- Creates a sale window unless one with the same start exists; the loser of
-- a race between servers waits for the winner's commit and gets no row.
INSERT INTO sales (starts_at, ends_at, units_total, items, per_user_limit, hold_ttl)
VALUES (@starts_at::timestamptz, @ends_at::timestamptz, @units_total::integer, @items::integer,
        @per_user_limit::integer, @hold_ttl::interval)
ON CONFLICT (starts_at) DO NOTHING
RETURNING *;

-- name: ItemsInsertForSale :exec
-- Names and prices are derived from a hash of (sale, item), so they are
-- stable for a sale and differ between sales.
INSERT INTO items (sale_id, item_id, name, price_cents)
SELECT s.id, g.n,
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
-- Exactly units_total units, spread round-robin over the items.
INSERT INTO units (sale_id, item_id)
SELECT s.id, 1 + g.n % s.items
FROM sales s, generate_series(0, s.units_total - 1) AS g(n)
WHERE s.id = @sale_id;

-- name: SaleGetByID :one
SELECT * FROM sales WHERE id = @id;

-- name: SaleGetByStart :one
SELECT * FROM sales WHERE starts_at = @starts_at;

-- name: SaleGetCurrent :one
-- The sale whose window contains the database's now (the current_sale view).
SELECT * FROM current_sale;

-- name: SaleStockGet :one
SELECT * FROM sale_stock WHERE id = @id;

-- name: UnitsHoldHistory :one
-- For the metrics: units whose hold expired without a purchase and that no
-- checkout has claimed again (back in the pool), and when the last unit
-- was sold (Unix seconds; 0 when none was). One scan of the sale's units, at most once a second per server.
SELECT count(*) FILTER (WHERE sold_at IS NULL AND hold_code IS NOT NULL AND held_until <= now())::bigint AS expired_holds,
       coalesce(extract(epoch FROM max(sold_at)), 0)::float8 AS last_sold_epoch
FROM units WHERE sale_id = @sale_id;

-- name: ItemGet :one
SELECT * FROM items WHERE sale_id = @sale_id AND item_id = @item_id;

-- name: ItemsListWithFreeUnits :many
-- Keyset pagination by item id. The free units of the whole page are
-- counted in one range scan of the sale's free units: whichever index the
-- planner takes (with or without statistics), it reads each free unit of
-- the sale at most once, never once per item of the page.
WITH page AS (
    SELECT i.sale_id, i.item_id, i.name, i.price_cents
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
SELECT p.sale_id, p.item_id, p.name, p.price_cents, coalesce(f.n, 0)::bigint AS free_units
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
