-- +goose Up

-- Events: what happened to a sale, in an order a shop can follow, pushed as
-- webhooks (River jobs, see migrations/river.go and internal/webhook) and
-- listed by GET /admin/events.
--
-- A fact and its event commit together. The transaction that makes the
-- fact writes an event_outbox row: the purchase batch (queries/
-- purchase.sql) for purchase.completed, the admin control for sale.paused
-- and sale.resumed. One publisher at a time (queries/events.sql) moves
-- outbox rows to events, giving each its id and per-sale sequence in the
-- order it publishes them, adds the events no transaction makes (a sale's
-- start, end and sell-out, which happen with the clock or across many
-- purchases) and queues their deliveries in the same transaction.

CREATE TYPE event_type AS ENUM (
    'sale.started', 'purchase.completed', 'sale.paused', 'sale.resumed', 'sale.sold_out', 'sale.ended'
);

-- No foreign keys: a key check on sales would lock the sale's row in every
-- purchase batch (FOR KEY SHARE), one row every buyer of the sale touches.
-- The outbox only ever holds what the writing transaction just made.
-- No index either, the primary key included: the outbox is drained each
-- second, so the publisher reads it whole, and an index would double what
-- each purchase writes for its event (EXPLAIN ANALYZE of UnitsSell, 64
-- purchases: 162 B of WAL and 4.2 us per purchase with a primary key, 98 B
-- and 2.0 us without). id is unique all the same (an identity) and orders
-- the rows as their transactions drew it.
CREATE TABLE event_outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    type        event_type  NOT NULL,
    sale_id     bigint      NOT NULL,
    purchase_id bigint,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT event_outbox_purchase_named CHECK ((type = 'purchase.completed') = (purchase_id IS NOT NULL))
);

-- The published log. id is drawn while the publisher holds its lock, so
-- ids are committed in increasing order: a reader paging with id > after
-- never misses an event that commits later with a smaller id. sequence
-- numbers a sale's events 1, 2, 3, ... in the same order.
CREATE TABLE events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type         event_type  NOT NULL,
    sale_id      bigint      NOT NULL,
    sequence     bigint      NOT NULL,
    purchase_id  bigint,
    occurred_at  timestamptz NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_sale_sequence_key UNIQUE (sale_id, sequence),
    CONSTRAINT events_sequence_positive CHECK (sequence > 0),
    -- One purchase, one event.
    CONSTRAINT events_purchase_id_key UNIQUE (purchase_id),
    CONSTRAINT events_purchase_named CHECK ((type = 'purchase.completed') = (purchase_id IS NOT NULL))
);

-- A sale starts, sells out and ends once: however many servers publish,
-- the second of these is refused.
CREATE UNIQUE INDEX events_once_per_sale ON events (sale_id, type)
    WHERE type IN ('sale.started', 'sale.sold_out', 'sale.ended');

-- No index on occurred_at: redelivering a time range (an admin's rare
-- action) walks the ids, which follow time closely, and every published
-- event would otherwise pay for it (EXPLAIN ANALYZE of EventsPublish, 1,000
-- events: 446 B of WAL and 17.2 us an event with it, 379 B and 14.6 us
-- without).

-- An event with what it describes, as webhooks and GET /admin/events show
-- it: the sale's definition, and for a purchase, the purchase and its item.
-- These rows never change once their sale has started, so an event reads
-- the same whenever it is sent.
CREATE VIEW event_details AS
SELECT e.id, e.type, e.sale_id, e.sequence, e.occurred_at, e.published_at,
       s.starts_at AS sale_starts_at, s.ends_at AS sale_ends_at, s.units_total AS sale_units_total,
       s.items AS sale_items, s.per_user_limit AS sale_per_user_limit, s.hold_ttl AS sale_hold_ttl,
       s.defined_by AS sale_defined_by,
       p.id AS purchase_id, p.user_id, p.code, p.price_cents, p.purchased_at,
       i.item_id, i.sku, i.name AS item_name, i.description AS item_description, i.currency, i.image_url
FROM events e
JOIN sales s ON s.id = e.sale_id
LEFT JOIN purchases p ON p.id = e.purchase_id
LEFT JOIN items i ON i.sale_id = p.sale_id AND i.item_id = p.item_id;

-- +goose Down
DROP VIEW event_details;
DROP TABLE events;
DROP TABLE event_outbox;
DROP TYPE event_type;
