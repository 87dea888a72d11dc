-- +goose Up

-- checkout_attempts is partitioned by sale (LIST on sale_id): one partition
-- per sale, created with the sale (queries/partitions.sql), and one for the
-- attempts that found no sale (sale_id NULL). A storm stores millions of
-- attempts per sale; with one partition each, what a query of one sale
-- costs does not grow with the sales before it, and a sale's attempts can
-- be dropped as one file (ATTEMPTS_RETENTION) instead of deleted row by row.
--
-- Every query that reads attempts names its sale, so PostgreSQL reads one
-- partition: a checkout code carries its sale's id ("<sale id>.<random>",
-- see CheckoutsDecide), and the service passes that id with the code.
--
-- What changes besides:
-- * The unique key of codes is (code, sale_id): a unique index of a
--   partitioned table must hold the partition key. A code is 128 random
--   bits after its sale's id, so (code) stays unique in practice, and only
--   held attempts have one: the index skips the rest (most of a storm).
-- * No primary key: it would have to hold sale_id, which is NULL for
--   attempts without a sale. id stays, an identity (unique by
--   construction), without an index: nothing looks an attempt up by id, and
--   the index would cost every stored attempt an insert and the table a
--   third of its size.
-- * No index on sale_id: a partition holds one sale.
-- * No foreign key from unit_id to units: adding a partition with that key
--   locks units against every checkout's UPDATE (SHARE ROW EXCLUSIVE) until
--   the creating transaction ends. units rows are never deleted (nothing
--   but a deleted sale would), and a held attempt's unit is the unit the
--   same statement claimed.
--
-- The existing rows are copied into their sale's partition, in this
-- migration's transaction: checkouts wait for it (4.6 s for 2 million
-- attempts on 2 cores, the index built after the copy).

DROP VIEW sale_summary;
DROP VIEW sale_stock;

ALTER TABLE checkout_attempts RENAME TO checkout_attempts_unpartitioned;
ALTER TABLE checkout_attempts_unpartitioned DROP CONSTRAINT checkout_attempts_pkey;
DROP INDEX checkout_attempts_code_key;
ALTER SEQUENCE checkout_attempts_id_seq RENAME TO checkout_attempts_unpartitioned_id_seq;

CREATE TABLE checkout_attempts (
    id         bigint           NOT NULL GENERATED ALWAYS AS IDENTITY,
    sale_id    bigint,
    user_id    text             NOT NULL,
    item_id    bigint           NOT NULL,
    outcome    checkout_outcome NOT NULL,
    code       text,
    unit_id    bigint,
    expires_at timestamptz,
    created_at timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT checkout_attempts_user_id_length CHECK (octet_length(user_id) BETWEEN 1 AND 64),
    CONSTRAINT checkout_attempts_held_has_code CHECK (
        (outcome = 'held') = (code IS NOT NULL AND unit_id IS NOT NULL AND expires_at IS NOT NULL)),
    CONSTRAINT checkout_attempts_sale_known CHECK (
        CASE outcome::text
            WHEN 'no_active_sale' THEN sale_id IS NULL
            WHEN 'rate_limited' THEN true
            ELSE sale_id IS NOT NULL
        END)
) PARTITION BY LIST (sale_id);

CREATE TABLE checkout_attempts_no_sale PARTITION OF checkout_attempts FOR VALUES IN (NULL);

-- Schema maintenance, not rules: these two functions only make or remove
-- the partition of the sale they are given; which sales, and when, the
-- queries that call them decide (queries/partitions.sql). They exist
-- because DDL cannot take a table name as a bound parameter, and building
-- SQL text in Go would put a statement outside sqlc.
--
-- A partition is made as a table of its own and then attached: ATTACH
-- PARTITION locks checkout_attempts in SHARE UPDATE EXCLUSIVE mode, which
-- inserts and reads pass, where CREATE TABLE ... PARTITION OF would lock
-- it against every checkout. Two callers for one sale queue on that lock,
-- and the second finds the partition made. Returns whether it made one.
-- +goose StatementBegin
CREATE FUNCTION checkout_attempts_partition_create(sale bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    part text := 'checkout_attempts_sale_' || sale;
BEGIN
    IF sale IS NULL THEN
        RAISE EXCEPTION 'checkout_attempts_partition_create: no sale given';
    END IF;
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    LOCK TABLE checkout_attempts IN SHARE UPDATE EXCLUSIVE MODE;
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE checkout_attempts INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format('ALTER TABLE checkout_attempts ATTACH PARTITION %I FOR VALUES IN (%s)', part, sale);
    RETURN true;
END
$$;
-- +goose StatementEnd

-- Drops the partition of one sale, with every attempt in it. Dropping a
-- partition locks checkout_attempts in ACCESS EXCLUSIVE mode (every
-- checkout waits) for the few milliseconds it takes; the caller bounds the
-- wait for that lock with lock_timeout. The parent is locked first, in the
-- order every query takes them. Returns whether there was one.
-- +goose StatementBegin
CREATE FUNCTION checkout_attempts_partition_drop(sale bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    part text := 'checkout_attempts_sale_' || sale;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_inherits i
                   WHERE i.inhparent = 'checkout_attempts'::regclass AND i.inhrelid = to_regclass(part)) THEN
        RETURN false;
    END IF;
    LOCK TABLE checkout_attempts IN ACCESS EXCLUSIVE MODE;
    EXECUTE format('DROP TABLE %I', part);
    RETURN true;
END
$$;
-- +goose StatementEnd

-- A partition for every sale, and for any sale id an attempt names that
-- sales has not (sale_id never had a foreign key).
SELECT checkout_attempts_partition_create(x.id)
FROM (SELECT id FROM sales
      UNION
      SELECT DISTINCT sale_id FROM checkout_attempts_unpartitioned WHERE sale_id IS NOT NULL) AS x
ORDER BY x.id;
DROP INDEX checkout_attempts_sale_id;

INSERT INTO checkout_attempts (id, sale_id, user_id, item_id, outcome, code, unit_id, expires_at, created_at)
OVERRIDING SYSTEM VALUE
SELECT id, sale_id, user_id, item_id, outcome, code, unit_id, expires_at, created_at
FROM checkout_attempts_unpartitioned;

SELECT setval(pg_get_serial_sequence('checkout_attempts', 'id'), coalesce(max(id), 0) + 1, false)
FROM checkout_attempts_unpartitioned;

DROP TABLE checkout_attempts_unpartitioned;

-- Built on each partition, and on every partition attached later.
CREATE UNIQUE INDEX checkout_attempts_code_key ON checkout_attempts (code, sale_id) WHERE code IS NOT NULL;

-- When the sale's attempts were dropped (ATTEMPTS_RETENTION); NULL while
-- they are kept.
ALTER TABLE sales ADD COLUMN attempts_dropped_at timestamptz;

-- Live counts of each sale's units and buyers (the API reads one row).
-- Its cost is one sale's unsold units and buyers, whatever the number of
-- sales before it: the unsold units are counted through the partial index
-- of free units (units_free_by_sale), and the sold ones are the rest, since
-- a sale has exactly units_total units (inserted with it, never deleted).
-- Counting them directly would read every unit of the sale with no index
-- to bound it.
CREATE VIEW sale_stock AS
SELECT s.id,
       (s.units_total - u.units_unsold)::bigint AS units_sold,
       u.units_held,
       u.units_available,
       b.buyers,
       b.max_units_per_user
FROM sales s
CROSS JOIN LATERAL (
    SELECT count(*)                                    AS units_unsold,
           count(*) FILTER (WHERE held_until > now())  AS units_held,
           count(*) FILTER (WHERE held_until <= now()) AS units_available
    FROM units WHERE units.sale_id = s.id AND units.sold_at IS NULL
) u
CROSS JOIN LATERAL (
    SELECT count(*) AS buyers, coalesce(max(units_bought), 0)::bigint AS max_units_per_user
    FROM buyers WHERE buyers.sale_id = s.id
) b;

-- One row per sale, for auditing with psql alone. Counting the attempts
-- reads every attempt of the sale (its partition: millions after a storm),
-- so the API reads sale_stock instead. NULL once the sale's attempts were
-- dropped.
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

-- +goose Down
DROP VIEW sale_summary;
DROP VIEW sale_stock;

CREATE TABLE checkout_attempts_unpartitioned (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sale_id    bigint,
    user_id    text             NOT NULL,
    item_id    bigint           NOT NULL,
    outcome    checkout_outcome NOT NULL,
    code       text,
    unit_id    bigint CONSTRAINT checkout_attempts_unit_id_fkey REFERENCES units (id) ON DELETE CASCADE,
    expires_at timestamptz,
    created_at timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT checkout_attempts_user_id_length CHECK (octet_length(user_id) BETWEEN 1 AND 64),
    CONSTRAINT checkout_attempts_held_has_code CHECK (
        (outcome = 'held') = (code IS NOT NULL AND unit_id IS NOT NULL AND expires_at IS NOT NULL)),
    CONSTRAINT checkout_attempts_sale_known CHECK (
        CASE outcome::text
            WHEN 'no_active_sale' THEN sale_id IS NULL
            WHEN 'rate_limited' THEN true
            ELSE sale_id IS NOT NULL
        END)
);
INSERT INTO checkout_attempts_unpartitioned (id, sale_id, user_id, item_id, outcome, code, unit_id, expires_at, created_at)
OVERRIDING SYSTEM VALUE
SELECT id, sale_id, user_id, item_id, outcome, code, unit_id, expires_at, created_at
FROM checkout_attempts;
SELECT setval(pg_get_serial_sequence('checkout_attempts_unpartitioned', 'id'), coalesce(max(id), 0) + 1, false)
FROM checkout_attempts;
DROP TABLE checkout_attempts;
DROP FUNCTION checkout_attempts_partition_drop(bigint);
DROP FUNCTION checkout_attempts_partition_create(bigint);
ALTER TABLE checkout_attempts_unpartitioned RENAME TO checkout_attempts;
ALTER INDEX checkout_attempts_unpartitioned_pkey RENAME TO checkout_attempts_pkey;
ALTER SEQUENCE checkout_attempts_unpartitioned_id_seq RENAME TO checkout_attempts_id_seq;
CREATE UNIQUE INDEX checkout_attempts_code_key ON checkout_attempts (code);
CREATE INDEX checkout_attempts_sale_id ON checkout_attempts (sale_id);

ALTER TABLE sales DROP COLUMN attempts_dropped_at;

CREATE VIEW sale_stock AS
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

CREATE VIEW sale_summary AS
SELECT s.id,
       s.starts_at,
       s.ends_at,
       s.units_total,
       st.units_sold,
       st.units_held,
       st.units_available,
       (SELECT count(*) FROM checkout_attempts a WHERE a.sale_id = s.id) AS checkout_attempts,
       st.buyers,
       st.max_units_per_user,
       s.per_user_limit
FROM sales s
JOIN sale_stock st ON st.id = s.id;
