-- name: CheckoutBatch :many
-- Records a batch of checkout attempts and holds a unit for each one that
-- can have it: one round trip, one transaction (see checkout_batch).
-- sqlc cannot read a plpgsql function's RETURNS TABLE, so the columns are
-- listed with casts; fields that do not apply to the outcome come back as
-- zero values (coalesce) and are only read when the outcome says so.
SELECT c.ord::integer                               AS ord,
       c.outcome::text                              AS outcome,
       coalesce(c.sale_id, 0)::bigint               AS sale_id,
       coalesce(c.item_name, '')::text              AS item_name,
       coalesce(c.price_cents, 0)::integer          AS price_cents,
       coalesce(c.code, '')::text                   AS code,
       coalesce(c.expires_at, 'epoch')::timestamptz AS expires_at
FROM checkout_batch(@user_ids::text[], @item_ids::bigint[], @codes::text[]) AS c;

-- name: PurchaseBatch :many
-- Sells the unit held under each code, or returns the purchase already made
-- with it (see purchase_batch). Columns as in CheckoutBatch.
SELECT p.ord::integer                                 AS ord,
       p.outcome::text                                AS outcome,
       coalesce(p.purchase_id, 0)::bigint             AS purchase_id,
       coalesce(p.sale_id, 0)::bigint                 AS sale_id,
       coalesce(p.user_id, '')::text                  AS user_id,
       coalesce(p.item_id, 0)::integer                AS item_id,
       coalesce(p.item_name, '')::text                AS item_name,
       coalesce(p.price_cents, 0)::integer            AS price_cents,
       coalesce(p.purchased_at, 'epoch')::timestamptz AS purchased_at,
       coalesce(p.user_purchases, 0)::bigint          AS user_purchases
FROM purchase_batch(@codes::text[]) AS p;

-- name: PurchasesListByUser :many
SELECT p.id, p.sale_id, p.user_id, p.item_id, p.code, p.price_cents, p.purchased_at, i.name AS item_name
FROM purchases p
JOIN items i ON i.sale_id = p.sale_id AND i.item_id = p.item_id
WHERE p.sale_id = @sale_id AND p.user_id = @user_id
ORDER BY p.id;
