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

-- name: UnitsHoldHistory :one
-- For the metrics: units whose hold expired without a purchase and that no
-- checkout has claimed again (back in the pool), and when the last unit
-- was sold (Unix seconds; 0 when none was). One scan of the sale's units, at most once a second per server.
SELECT count(*) FILTER (WHERE sold_at IS NULL AND hold_code IS NOT NULL AND held_until <= now())::bigint AS expired_holds,
       coalesce(extract(epoch FROM max(sold_at)), 0)::float8 AS last_sold_epoch
FROM units WHERE sale_id = @sale_id;

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
    -- Held units are unsold units too: the same range holds them, so a
    -- page shows what may come back without a second scan.
    SELECT u.item_id, count(*) FILTER (WHERE u.held_until <= now()) AS n, count(*) FILTER (WHERE u.held_until > now()) AS held
    FROM units u
    WHERE u.sale_id = @sale_id AND u.item_id > @after_item_id::integer
      AND u.item_id <= (SELECT max(p.item_id) FROM page p)
      AND u.sold_at IS NULL
    GROUP BY u.item_id
)
SELECT p.sale_id, p.item_id, p.sku, p.name, p.description, p.price_cents, p.currency, p.image_url,
       coalesce(f.n, 0)::bigint AS free_units, coalesce(f.held, 0)::bigint AS held_units
FROM page p
LEFT JOIN free f ON f.item_id = p.item_id
ORDER BY p.item_id;

-- name: ItemsListAvailableWithFreeUnits :many
-- ItemsListWithFreeUnits restricted to items with a free unit, for the
-- shoppers' "only available" filter. The page is found in the same one
-- range scan of the sale's unsold units, in item order, stopping at the
-- page's last item: sold units are not in the index, so sold-out items
-- cost nothing, and an item with all its units held costs its held units.
-- Keep its columns those of ItemsListWithFreeUnits.
WITH free AS (
    SELECT u.item_id, count(*) FILTER (WHERE u.held_until <= now()) AS n, count(*) FILTER (WHERE u.held_until > now()) AS held
    FROM units u
    WHERE u.sale_id = @sale_id AND u.item_id > @after_item_id::integer AND u.sold_at IS NULL
    GROUP BY u.item_id
    HAVING count(*) FILTER (WHERE u.held_until <= now()) > 0
    ORDER BY u.item_id
    LIMIT @max_items::integer
)
SELECT i.sale_id, i.item_id, i.sku, i.name, i.description, i.price_cents, i.currency, i.image_url,
       f.n::bigint AS free_units, f.held::bigint AS held_units
FROM free f
-- One key lookup per item of the page (LIMIT keeps the planner from
-- hashing the items of every sale instead).
JOIN LATERAL (
    SELECT * FROM items i WHERE i.sale_id = @sale_id AND i.item_id = f.item_id LIMIT 1
) i ON true
ORDER BY i.item_id;

-- name: ItemCountsList :many
-- The free and held units of every item of a sale that has unsold units
-- (the others have none of either): what the live page's watcher reads
-- once a second per server, in one range scan of the sale's unsold units.
SELECT u.item_id, count(*) FILTER (WHERE u.held_until <= now())::bigint AS free_units,
       count(*) FILTER (WHERE u.held_until > now())::bigint AS held_units
FROM units u
WHERE u.sale_id = @sale_id AND u.sold_at IS NULL
GROUP BY u.item_id
ORDER BY u.item_id;

-- name: SaleNextStart :one
-- When the first sale starting at or after a time begins (the next sale of
-- the one ending then); no row while none is defined or made yet.
SELECT s.starts_at FROM sales s WHERE s.starts_at >= @after::timestamptz ORDER BY s.starts_at LIMIT 1;

-- name: SaleTablesAnalyze :exec
-- A sale's units arrive in one INSERT, and a table has no statistics for
-- rows ANALYZE has not seen: the planner would then look a free unit up
-- through the whole-sale index and filter by item, an order of magnitude
-- slower per checkout (docs/benchmark.md).
-- Run after a sale is created and at start-up, so plans are right from
-- the first request; autovacuum keeps them right as the sale goes on.
ANALYZE units, items, sales;
