-- +goose Up

-- Sales a shop defines (the admin API, `server sale apply`) beside the
-- generated ones, items with the shop's own fields, pausing, and an audit
-- trail of every admin action. The rules (what may change when) are in
-- queries/admin.sql; this states what every row must satisfy.

-- A paused sale refuses new checkouts with this outcome (stored like any
-- other). Added here, used only by later statements: PostgreSQL does not
-- let a transaction use an enum value it added.
ALTER TYPE checkout_outcome ADD VALUE IF NOT EXISTS 'sale_paused';

-- defined_by: who defined the sale, NULL for a generated one. Its digest is
-- that of the definition as applied, so applying the same file again is
-- recognised as no change. paused_at: set while checkouts are paused.
ALTER TABLE sales
    ADD COLUMN defined_by        text,
    ADD COLUMN definition_sha256 text,
    ADD COLUMN paused_at         timestamptz,
    ADD CONSTRAINT sales_definition_complete CHECK ((defined_by IS NULL) = (definition_sha256 IS NULL)),
    ADD CONSTRAINT sales_defined_by_length CHECK (char_length(defined_by) BETWEEN 1 AND 200);

-- An item's shop fields. price_cents is the price in the currency's minor
-- unit (cents for USD, yen for JPY), so sums stay exact integers; the API
-- shows it as a decimal string with the currency's digits. units is how
-- many of the sale's units are this item: the sale inserts exactly that many.
ALTER TABLE items
    ADD COLUMN sku         text,
    ADD COLUMN description text NOT NULL DEFAULT '',
    ADD COLUMN currency    text NOT NULL DEFAULT 'USD',
    ADD COLUMN image_url   text,
    ADD COLUMN units       integer;

UPDATE items i
SET sku = 'item' || i.item_id,
    units = (SELECT count(*) FROM units u WHERE u.sale_id = i.sale_id AND u.item_id = i.item_id);

ALTER TABLE items
    ALTER COLUMN sku SET NOT NULL,
    ALTER COLUMN units SET NOT NULL,
    DROP CONSTRAINT items_price_positive,
    ADD CONSTRAINT items_price_not_negative CHECK (price_cents >= 0),
    ADD CONSTRAINT items_sale_sku_key UNIQUE (sale_id, sku),
    ADD CONSTRAINT items_sku_format CHECK (sku ~ '^[A-Za-z0-9._-]{1,64}$'),
    ADD CONSTRAINT items_description_length CHECK (char_length(description) <= 2000),
    ADD CONSTRAINT items_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    ADD CONSTRAINT items_image_url_http CHECK (image_url ~ '^https?://[^[:space:]]+$' AND char_length(image_url) <= 2048),
    ADD CONSTRAINT items_units_positive CHECK (units > 0);

-- The current_sale view was made with the columns sales had then; it is
-- made again so it has paused_at and the others (queries read it as a sale).
DROP VIEW current_sale;
CREATE VIEW current_sale AS
SELECT latest.*
FROM (SELECT * FROM sales WHERE starts_at <= now() ORDER BY starts_at DESC LIMIT 1) AS latest
WHERE latest.ends_at > now();

-- Every admin action, whoever made it (an admin token's name, a JWT's
-- subject, the operator CLI), written in the transaction of the change it
-- records. before and after are the sale as sale_documents shows it; no
-- foreign key, so a deleted sale keeps its history.
CREATE TABLE admin_actions (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text        NOT NULL,
    action  text        NOT NULL,
    sale_id bigint      NOT NULL,
    before  jsonb,
    after   jsonb,
    CONSTRAINT admin_actions_actor_length CHECK (char_length(actor) BETWEEN 1 AND 200),
    CONSTRAINT admin_actions_action_valid CHECK (action IN ('create', 'replace', 'delete', 'pause', 'resume', 'end')),
    CONSTRAINT admin_actions_states CHECK (
        (action = 'create') = (before IS NULL) AND (action = 'delete') = (after IS NULL))
);
CREATE INDEX admin_actions_sale_id ON admin_actions (sale_id, id);

-- A sale as a JSON document: what the audit trail keeps before and after
-- each action. sale_headers is the sale's own row, what pause, resume and
-- end change; sale_documents adds its items, what a definition changes (a
-- 10,000-item sale's items are a megabyte or two of JSON, too much to
-- build twice in a pause that must be quick).
CREATE VIEW sale_headers AS
SELECT s.id,
       jsonb_build_object(
           'id', s.id, 'starts_at', s.starts_at, 'ends_at', s.ends_at, 'per_user_limit', s.per_user_limit,
           'hold_ttl', s.hold_ttl, 'units_total', s.units_total, 'items_total', s.items,
           'paused_at', s.paused_at, 'defined_by', s.defined_by) AS document
FROM sales s;

CREATE VIEW sale_documents AS
SELECT h.id,
       (h.document || jsonb_build_object(
           'items', (SELECT jsonb_agg(jsonb_build_object(
                         'id', i.item_id, 'sku', i.sku, 'name', i.name, 'description', i.description,
                         'price_cents', i.price_cents, 'currency', i.currency, 'units', i.units,
                         'image_url', i.image_url) ORDER BY i.item_id)
                     FROM items i WHERE i.sale_id = h.id)))::jsonb AS document
FROM sale_headers h;

-- The audit trail for psql: one line per action, newest last, with the
-- window and the pause as they were after it (before it, for a delete).
CREATE VIEW admin_audit AS
SELECT a.id,
       a.at,
       a.actor,
       a.action,
       a.sale_id,
       (coalesce(a.after, a.before) ->> 'starts_at')::timestamptz  AS starts_at,
       (coalesce(a.after, a.before) ->> 'ends_at')::timestamptz    AS ends_at,
       (coalesce(a.after, a.before) ->> 'units_total')::integer    AS units_total,
       (coalesce(a.after, a.before) ->> 'items_total')::integer    AS items,
       (a.after ->> 'paused_at') IS NOT NULL                      AS paused,
       a.before,
       a.after
FROM admin_actions a;

-- One row per item, for auditors: what each product sold and took.
-- Reads the item's units through units_free_by_item for the unsold ones.
CREATE VIEW item_summary AS
SELECT i.sale_id,
       i.item_id,
       i.sku,
       i.name,
       i.price_cents,
       i.currency,
       i.units,
       (i.units - u.unsold)::bigint                  AS units_sold,
       u.held                                        AS units_held,
       (i.units - u.unsold)::bigint * i.price_cents  AS revenue_cents
FROM items i
CROSS JOIN LATERAL (
    SELECT count(*)                                    AS unsold,
           count(*) FILTER (WHERE held_until > now())  AS held
    FROM units WHERE units.sale_id = i.sale_id AND units.item_id = i.item_id AND units.sold_at IS NULL
) u;

-- sale_summary gains who defined the sale and whether it is paused.
CREATE OR REPLACE VIEW sale_summary AS
SELECT s.id,
       s.starts_at,
       s.ends_at,
       s.units_total,
       st.units_sold,
       st.units_held,
       st.units_available,
       CASE WHEN s.attempts_dropped_at IS NULL
            THEN (SELECT count(*) FROM checkout_attempts a WHERE a.sale_id = s.id) END::bigint AS checkout_attempts,
       st.buyers,
       st.max_units_per_user,
       s.per_user_limit,
       coalesce(s.defined_by, 'generated') AS defined_by,
       s.paused_at
FROM sales s
JOIN sale_stock st ON st.id = s.id;

-- +goose Down
DROP VIEW sale_summary;
CREATE VIEW sale_summary AS
SELECT s.id,
       s.starts_at,
       s.ends_at,
       s.units_total,
       st.units_sold,
       st.units_held,
       st.units_available,
       CASE WHEN s.attempts_dropped_at IS NULL
            THEN (SELECT count(*) FROM checkout_attempts a WHERE a.sale_id = s.id) END::bigint AS checkout_attempts,
       st.buyers,
       st.max_units_per_user,
       s.per_user_limit
FROM sales s
JOIN sale_stock st ON st.id = s.id;
DROP VIEW item_summary;
DROP VIEW admin_audit;
DROP VIEW sale_documents;
DROP VIEW sale_headers;
DROP TABLE admin_actions;
DROP VIEW current_sale;
ALTER TABLE items
    DROP CONSTRAINT items_price_not_negative,
    ADD CONSTRAINT items_price_positive CHECK (price_cents > 0) NOT VALID,
    DROP COLUMN sku,
    DROP COLUMN description,
    DROP COLUMN currency,
    DROP COLUMN image_url,
    DROP COLUMN units;
ALTER TABLE sales
    DROP COLUMN defined_by,
    DROP COLUMN definition_sha256,
    DROP COLUMN paused_at;
CREATE VIEW current_sale AS
SELECT latest.*
FROM (SELECT * FROM sales WHERE starts_at <= now() ORDER BY starts_at DESC LIMIT 1) AS latest
WHERE latest.ends_at > now();
