-- +goose Up

-- The rules of checkout and purchase move out of plpgsql into the named
-- queries in queries/ (checkout.sql, purchase.sql, user_locks.sql), which the
-- service sends as one pipelined transaction per batch. What stays here is
-- schema: the outcome type, the per-user counter and the constraints that
-- state the invariants.
DROP FUNCTION IF EXISTS purchase_batch(text[]);
DROP FUNCTION IF EXISTS checkout_batch(text[], bigint[], text[]);
DROP FUNCTION IF EXISTS require_read_committed();

-- Every outcome a checkout attempt can have: one type, read by sqlc as Go
-- constants, instead of strings spelled in several places.
CREATE TYPE checkout_outcome AS ENUM
    ('held', 'sold_out', 'item_unavailable', 'user_limit_reached', 'item_not_found', 'no_active_sale');

ALTER TABLE checkout_attempts
    DROP CONSTRAINT checkout_attempts_outcome_valid,
    DROP CONSTRAINT checkout_attempts_held_has_code,
    DROP CONSTRAINT checkout_attempts_sale_known;
ALTER TABLE checkout_attempts
    ALTER COLUMN outcome TYPE checkout_outcome USING outcome::checkout_outcome,
    ADD CONSTRAINT checkout_attempts_held_has_code CHECK (
        (outcome = 'held') = (code IS NOT NULL AND unit_id IS NOT NULL AND expires_at IS NOT NULL)),
    ADD CONSTRAINT checkout_attempts_sale_known CHECK ((outcome = 'no_active_sale') = (sale_id IS NULL));

-- What a purchase request came to; never stored, only returned.
CREATE TYPE purchase_outcome AS ENUM ('purchased', 'code_not_found', 'code_expired');

-- One row per (sale, user) that has bought: the units bought, next to the
-- cap of the sale. Only purchase writes it, under the user's advisory lock
-- (queries/user_locks.sql), so no two transactions ever update one row at
-- once. The CHECK makes PostgreSQL itself refuse a purchase past the cap,
-- the way purchases_unit_id_key refuses selling a unit twice.
CREATE TABLE buyers (
    sale_id        bigint  NOT NULL,
    user_id        text    NOT NULL,
    units_bought   integer NOT NULL,
    per_user_limit integer NOT NULL,
    PRIMARY KEY (sale_id, user_id),
    CONSTRAINT buyers_within_limit CHECK (units_bought BETWEEN 1 AND per_user_limit)
);

INSERT INTO buyers (sale_id, user_id, units_bought, per_user_limit)
SELECT p.sale_id, p.user_id, count(*), s.per_user_limit
FROM purchases p
JOIN sales s ON s.id = p.sale_id
GROUP BY p.sale_id, p.user_id, s.per_user_limit;

-- Buyers and the largest count now come from the counters, not from
-- grouping every purchase of the sale.
CREATE OR REPLACE VIEW sale_stock AS
SELECT s.id,
       u.units_sold,
       u.units_held,
       u.units_available,
       b.buyers,
       b.max_units_per_user
FROM sales s
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE sold_at IS NOT NULL)                        AS units_sold,
           count(*) FILTER (WHERE sold_at IS NULL AND held_until > now())     AS units_held,
           count(*) FILTER (WHERE sold_at IS NULL AND held_until <= now())    AS units_available
    FROM units WHERE units.sale_id = s.id
) u
CROSS JOIN LATERAL (
    SELECT count(*) AS buyers, coalesce(max(units_bought), 0)::bigint AS max_units_per_user
    FROM buyers WHERE buyers.sale_id = s.id
) b;

-- +goose Down
CREATE OR REPLACE VIEW sale_stock AS
SELECT s.id,
       u.units_sold,
       u.units_held,
       u.units_available,
       p.buyers,
       p.max_units_per_user
FROM sales s
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE sold_at IS NOT NULL)                        AS units_sold,
           count(*) FILTER (WHERE sold_at IS NULL AND held_until > now())     AS units_held,
           count(*) FILTER (WHERE sold_at IS NULL AND held_until <= now())    AS units_available
    FROM units WHERE units.sale_id = s.id
) u
CROSS JOIN LATERAL (
    SELECT count(*) AS buyers, coalesce(max(n), 0)::bigint AS max_units_per_user
    FROM (SELECT count(*) AS n FROM purchases WHERE purchases.sale_id = s.id GROUP BY user_id) per_user
) p;
DROP TABLE buyers;
DROP TYPE purchase_outcome;
ALTER TABLE checkout_attempts
    DROP CONSTRAINT checkout_attempts_held_has_code,
    DROP CONSTRAINT checkout_attempts_sale_known;
ALTER TABLE checkout_attempts
    ALTER COLUMN outcome TYPE text USING outcome::text,
    ADD CONSTRAINT checkout_attempts_outcome_valid CHECK (outcome IN
        ('held', 'sold_out', 'item_unavailable', 'user_limit_reached', 'item_not_found', 'no_active_sale')),
    ADD CONSTRAINT checkout_attempts_held_has_code CHECK (
        (outcome = 'held') = (code IS NOT NULL AND unit_id IS NOT NULL AND expires_at IS NOT NULL)),
    ADD CONSTRAINT checkout_attempts_sale_known CHECK ((outcome = 'no_active_sale') = (sale_id IS NULL));
DROP TYPE checkout_outcome;
