-- +goose Up

-- One row per sale window. The window is aligned to its duration and never
-- changes once created, so servers may cache it; the per-sale settings are
-- copied here so a config change only affects sales created after it.
CREATE TABLE sales (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL,
    units_total    integer     NOT NULL,
    items          integer     NOT NULL,
    per_user_limit integer     NOT NULL,
    hold_ttl       interval    NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sales_starts_at_key UNIQUE (starts_at),
    CONSTRAINT sales_window_valid CHECK (ends_at > starts_at),
    CONSTRAINT sales_units_positive CHECK (units_total > 0),
    CONSTRAINT sales_items_valid CHECK (items > 0 AND items <= units_total),
    CONSTRAINT sales_per_user_limit_positive CHECK (per_user_limit > 0),
    CONSTRAINT sales_hold_ttl_positive CHECK (hold_ttl > interval '0')
);

CREATE TABLE items (
    sale_id     bigint  NOT NULL REFERENCES sales (id) ON DELETE CASCADE,
    item_id     integer NOT NULL,
    name        text    NOT NULL,
    price_cents integer NOT NULL,
    PRIMARY KEY (sale_id, item_id),
    CONSTRAINT items_item_id_positive CHECK (item_id > 0),
    CONSTRAINT items_name_length CHECK (char_length(name) BETWEEN 1 AND 128),
    CONSTRAINT items_price_positive CHECK (price_cents > 0)
);

-- The inventory: exactly sales.units_total rows per sale, inserted with the
-- sale. A unit is available when it is not sold and its hold (if any) has
-- expired; held_until starts at -infinity so "available" is the single range
-- condition held_until < now(), which one btree range scan answers.
CREATE TABLE units (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sale_id    bigint      NOT NULL,
    item_id    integer     NOT NULL,
    held_by    text,
    hold_code  text,
    held_until timestamptz NOT NULL DEFAULT '-infinity',
    sold_at    timestamptz,
    FOREIGN KEY (sale_id, item_id) REFERENCES items (sale_id, item_id) ON DELETE CASCADE,
    CONSTRAINT units_hold_complete CHECK ((held_by IS NULL) = (hold_code IS NULL)),
    CONSTRAINT units_sold_was_held CHECK (sold_at IS NULL OR hold_code IS NOT NULL)
);

-- Claiming: free units of one item. Sold units leave these partial indexes,
-- so once a sale sells out the sold-out check scans an empty range.
CREATE INDEX units_free_by_item ON units (sale_id, item_id, held_until) WHERE sold_at IS NULL;
CREATE INDEX units_free_by_sale ON units (sale_id, held_until) WHERE sold_at IS NULL;
-- Per-user cap: a user's active holds in a sale.
CREATE INDEX units_held_by ON units (sale_id, held_by) WHERE held_by IS NOT NULL AND sold_at IS NULL;
CREATE UNIQUE INDEX units_hold_code_key ON units (hold_code);

-- Every well-formed checkout request, whatever its outcome. sale_id has no
-- foreign key on purpose: a key check takes FOR KEY SHARE on the sale row,
-- which would make that one row a hot spot for every request of the sale.
CREATE TABLE checkout_attempts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sale_id    bigint,
    user_id    text        NOT NULL,
    item_id    bigint      NOT NULL,
    outcome    text        NOT NULL,
    code       text,
    unit_id    bigint REFERENCES units (id) ON DELETE CASCADE,
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT checkout_attempts_outcome_valid CHECK (outcome IN
        ('held', 'sold_out', 'item_unavailable', 'user_limit_reached', 'item_not_found', 'no_active_sale')),
    CONSTRAINT checkout_attempts_user_id_length CHECK (octet_length(user_id) BETWEEN 1 AND 64),
    CONSTRAINT checkout_attempts_held_has_code CHECK (
        (outcome = 'held') = (code IS NOT NULL AND unit_id IS NOT NULL AND expires_at IS NOT NULL)),
    CONSTRAINT checkout_attempts_sale_known CHECK ((outcome = 'no_active_sale') = (sale_id IS NULL))
);
CREATE UNIQUE INDEX checkout_attempts_code_key ON checkout_attempts (code);
CREATE INDEX checkout_attempts_sale_id ON checkout_attempts (sale_id);

-- One row per unit sold: a unit and a code can each be sold once.
CREATE TABLE purchases (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sale_id      bigint      NOT NULL,
    user_id      text        NOT NULL,
    item_id      integer     NOT NULL,
    unit_id      bigint      NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    code         text        NOT NULL,
    price_cents  integer     NOT NULL,
    purchased_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT purchases_unit_id_key UNIQUE (unit_id),
    CONSTRAINT purchases_code_key UNIQUE (code)
);
CREATE INDEX purchases_sale_user ON purchases (sale_id, user_id);

-- Live counts of each sale's units and buyers (the API reads one row).
CREATE VIEW sale_stock AS
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

-- One row per sale, for auditing with psql alone. Counting the attempts
-- reads every attempt of the sale (millions after a storm), so the API
-- reads sale_stock instead.
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

-- +goose Down
DROP VIEW sale_summary;
DROP VIEW sale_stock;
DROP TABLE purchases;
DROP TABLE checkout_attempts;
DROP TABLE units;
DROP TABLE items;
DROP TABLE sales;
