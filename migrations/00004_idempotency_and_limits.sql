-- +goose Up

-- Idempotent checkout: the first answer to a (user, Idempotency-Key) is
-- kept here, written by the same statement and transaction as its checkout
-- attempt (queries/checkout.sql, CheckoutsDecide), under the user's
-- advisory lock. A repeat is answered from this row and stores nothing; the
-- primary key makes a second answer for one live key impossible even if the
-- lock were bypassed. The row holds what the answer needs (outcome, code,
-- hold expiry), so the replay is the first answer even after the hold was
-- bought or expired. Rows are deleted after expires_at (queries/
-- idempotency.sql, by the scheduler); an expired row still present is
-- replaced by the next request with its key.
CREATE TABLE idempotency_keys (
    user_id         text             NOT NULL,
    key             text             NOT NULL,
    item_id         bigint           NOT NULL,
    sale_id         bigint           NOT NULL,
    outcome         checkout_outcome NOT NULL,
    code            text,
    hold_expires_at timestamptz,
    created_at      timestamptz      NOT NULL DEFAULT now(),
    expires_at      timestamptz      NOT NULL,
    PRIMARY KEY (user_id, key),
    CONSTRAINT idempotency_keys_key_valid CHECK (key ~ '^[ -~]{1,255}$'),
    CONSTRAINT idempotency_keys_held_has_code CHECK (
        (outcome = 'held') = (code IS NOT NULL AND hold_expires_at IS NOT NULL)),
    -- Only answers the sale's rules gave are kept: a 503 or a 429 invites
    -- the client to try again, so repeating it must try again.
    CONSTRAINT idempotency_keys_outcome_final CHECK (outcome NOT IN ('no_active_sale'))
);
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);

-- A checkout refused by the server's rate limit is still an attempt, and
-- is stored as one (without touching any unit or user lock).
ALTER TYPE checkout_outcome ADD VALUE IF NOT EXISTS 'rate_limited';

-- A rate-limited attempt arriving while no sale is open has no sale.
ALTER TABLE checkout_attempts
    DROP CONSTRAINT checkout_attempts_sale_known,
    ADD CONSTRAINT checkout_attempts_sale_known CHECK (
        CASE outcome::text
            WHEN 'no_active_sale' THEN sale_id IS NULL
            WHEN 'rate_limited' THEN true
            ELSE sale_id IS NOT NULL
        END);

-- Two sales never overlap in time, whatever SALE_DURATION was when each was
-- created: "the current sale" is then always one sale.
ALTER TABLE sales
    ADD CONSTRAINT sales_no_overlap EXCLUDE USING gist (tstzrange(starts_at, ends_at) WITH &&);

-- +goose Down
ALTER TABLE sales DROP CONSTRAINT sales_no_overlap;
DELETE FROM checkout_attempts WHERE outcome::text = 'rate_limited';
ALTER TABLE checkout_attempts
    DROP CONSTRAINT checkout_attempts_sale_known,
    ADD CONSTRAINT checkout_attempts_sale_known CHECK ((outcome = 'no_active_sale') = (sale_id IS NULL));
DROP TABLE idempotency_keys;
-- PostgreSQL cannot drop one value of an enum: 'rate_limited' stays, unused,
-- and Up adds it only if it is missing.
