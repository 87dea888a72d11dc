-- +goose Up

-- checkout and purchase are functions so that each call is one round trip
-- and one short transaction. Inside a VOLATILE plpgsql function every
-- statement takes a fresh snapshot, so a count that follows
-- pg_advisory_xact_lock sees everything committed by whoever held the lock
-- before (a single CTE statement could not: its snapshot predates the wait).
-- Times come from the database clock only, so every server agrees on them.
--
-- Every statement inside is a lookup by key, and plpgsql caches its plans
-- per connection: a plan made while a table was small (a sequential scan
-- is cheapest over a few pages) would be kept while the table grows during
-- the sale. enable_seqscan = off on the functions keeps them on the indexes.
--
-- The searches for a free unit are scalar subqueries ORDER BY held_until
-- LIMIT 1 so that the only cheap plan is the partial index (free units sort
-- first): with EXISTS (which drops ORDER BY and LIMIT) the planner, once the
-- table is analyzed, picks a sequential scan over every unit of every sale.
--
-- Lock order, which keeps the two functions free of deadlocks:
-- * checkout never waits for a row lock (SKIP LOCKED) and takes the per-user
--   advisory locks of a batch in ascending key order;
-- * purchase takes the row locks of its units first (in id order) and only
--   then advisory locks (in key order), and never waits for a row while
--   holding an advisory lock.
-- Advisory locks are thus always taken in ascending key order, and row
-- waits only happen before any advisory lock is held, so no cycle of
-- waits can form.

-- +goose StatementBegin
-- The arguments above hold only under READ COMMITTED, where each statement
-- of a function sees what committed before it started (after a lock wait).
-- Under REPEATABLE READ a count after the user lock could miss a hold
-- committed meanwhile, so both functions refuse to run there.
CREATE FUNCTION require_read_committed() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'flashsale: checkout and purchase need READ COMMITTED, not %',
            current_setting('transaction_isolation');
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- checkout_batch decides a batch of checkout requests (the i-th user, item
-- and code of the arrays form one request) in one transaction and stores
-- every attempt, so concurrent requests share one commit. A batch of one is
-- an ordinary checkout. It returns one row per request, ord being its index.
CREATE FUNCTION checkout_batch(p_user_ids text[], p_item_ids bigint[], p_codes text[])
RETURNS TABLE (ord integer, outcome text, sale_id bigint, item_name text, price_cents integer,
               code text, expires_at timestamptz)
LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    s         sales;
    r         record;
    v_free    boolean;
    v_unit    bigint;
    v_owned   bigint;
    v_until   timestamptz;
    v_outcome text;
    v_name    text;
    v_price   integer;
    o_ord     integer[]     := '{}';
    o_outcome text[]        := '{}';
    o_unit    bigint[]      := '{}';
    o_until   timestamptz[] := '{}';
    o_name    text[]        := '{}';
    o_price   integer[]     := '{}';
BEGIN
    PERFORM require_read_committed();
    -- The sale whose window contains now: the latest one started.
    SELECT * INTO s FROM sales WHERE starts_at <= now() ORDER BY starts_at DESC LIMIT 1;
    IF FOUND AND s.ends_at <= now() THEN
        s := NULL;
    END IF;
    -- Sold out needs no per-user lock: when nothing is free, the whole
    -- batch is answered without taking one.
    v_free := coalesce((
        SELECT u.held_until <= now() FROM units u
        WHERE u.sale_id = s.id AND u.sold_at IS NULL
        ORDER BY u.held_until LIMIT 1), false);

    -- The per-user locks of the whole batch first, in key order (see the
    -- lock order above); then every request is decided in arrival order,
    -- so the order of user ids never decides who gets a contested unit.
    IF v_free THEN
        FOR r IN SELECT DISTINCT hashtext(q.user_id) AS h FROM unnest(p_user_ids) AS q(user_id) ORDER BY 1 LOOP
            PERFORM pg_advisory_xact_lock(s.id::integer, r.h);
        END LOOP;
    END IF;

    FOR r IN
        SELECT q.i::integer AS i, q.user_id, q.item_id, q.code
        FROM unnest(p_user_ids, p_item_ids, p_codes) WITH ORDINALITY AS q(user_id, item_id, code, i)
        ORDER BY q.i
    LOOP
        v_unit := NULL;
        v_until := NULL;
        v_name := NULL;
        v_price := NULL;
        IF s.id IS NULL THEN
            v_outcome := 'no_active_sale';
        ELSIF r.item_id < 1 OR r.item_id > s.items THEN
            v_outcome := 'item_not_found';
        ELSIF NOT v_free THEN
            v_outcome := 'sold_out';
        ELSE
            -- Under this user's lock (taken above) the count sees every hold
            -- and purchase committed before, and this batch's own.
            SELECT (SELECT count(*) FROM units u
                    WHERE u.sale_id = s.id AND u.held_by = r.user_id AND u.sold_at IS NULL AND u.held_until > now())
                 + (SELECT count(*) FROM purchases p WHERE p.sale_id = s.id AND p.user_id = r.user_id)
            INTO v_owned;

            IF v_owned >= s.per_user_limit THEN
                v_outcome := 'user_limit_reached';
            ELSE
                UPDATE units SET held_by = r.user_id, hold_code = r.code, held_until = now() + s.hold_ttl
                WHERE id = (SELECT u.id FROM units u
                            WHERE u.sale_id = s.id AND u.item_id = r.item_id
                              AND u.sold_at IS NULL AND u.held_until <= now()
                            ORDER BY u.held_until
                            LIMIT 1
                            FOR UPDATE SKIP LOCKED)
                RETURNING id, held_until INTO v_unit, v_until;
                IF v_unit IS NOT NULL THEN
                    v_outcome := 'held';
                    SELECT it.name, it.price_cents INTO v_name, v_price
                    FROM items it WHERE it.sale_id = s.id AND it.item_id = r.item_id;
                -- Other items only: units of this one that SKIP LOCKED passed
                -- over are being claimed by concurrent checkouts right now.
                ELSIF (SELECT u.held_until FROM units u
                       WHERE u.sale_id = s.id AND u.item_id <> r.item_id
                         AND u.sold_at IS NULL AND u.held_until <= now()
                       ORDER BY u.held_until LIMIT 1) IS NOT NULL THEN
                    v_outcome := 'item_unavailable';
                ELSE
                    v_outcome := 'sold_out';
                    v_free := false;
                END IF;
            END IF;
        END IF;
        o_ord := o_ord || r.i;
        o_outcome := o_outcome || v_outcome;
        o_unit := o_unit || v_unit;
        o_until := o_until || v_until;
        o_name := o_name || v_name;
        o_price := o_price || v_price;
    END LOOP;

    INSERT INTO checkout_attempts (sale_id, user_id, item_id, outcome, code, unit_id, expires_at)
    SELECT s.id, p_user_ids[x.i], p_item_ids[x.i], x.outcome,
           CASE WHEN x.outcome = 'held' THEN p_codes[x.i] END, x.unit, x.until
    FROM unnest(o_ord, o_outcome, o_unit, o_until) AS x(i, outcome, unit, until);

    -- No joins here or below: with a batch of a few dozen rows the planner
    -- may prefer hashing a whole table to a few dozen index lookups, so
    -- every lookup is a single-row statement in the loop.
    RETURN QUERY
    SELECT x.i, x.outcome, s.id, x.name, x.price,
           CASE WHEN x.outcome = 'held' THEN p_codes[x.i] END, x.until
    FROM unnest(o_ord, o_outcome, o_until, o_name, o_price) AS x(i, outcome, until, name, price);
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- purchase_batch sells, for each code of the batch, the unit held under it,
-- or answers the purchase already made with that code, in one transaction
-- (group commit again). It returns one row per code, ord being its index.
CREATE FUNCTION purchase_batch(p_codes text[])
RETURNS TABLE (ord integer, outcome text, purchase_id bigint, sale_id bigint, user_id text, item_id integer,
               item_name text, price_cents integer, purchased_at timestamptz, user_purchases bigint)
LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    n         integer := coalesce(array_length(p_codes, 1), 0);
    k         record;
    a         checkout_attempts;
    u         units;
    p         purchases;
    v_outcome text;
    v_count   bigint;
    v_name    text;
    -- The attempt behind each code (null: unknown code), looked up once.
    v_att     checkout_attempts[] := '{}';
    o_outcome text[]        := '{}';
    o_purch   bigint[]      := '{}';
    o_sale    bigint[]      := '{}';
    o_user    text[]        := '{}';
    o_item    integer[]     := '{}';
    o_name    text[]        := '{}';
    o_price   integer[]     := '{}';
    o_at      timestamptz[] := '{}';
    o_count   bigint[]      := '{}';
BEGIN
    PERFORM require_read_committed();
    -- Every lookup is a single-row statement (see checkout_batch).
    FOR i IN 1 .. n LOOP
        SELECT * INTO a FROM checkout_attempts WHERE code = p_codes[i];
        v_att := v_att || a;
    END LOOP;
    -- First the rows of the units of codes not yet expired, in id order:
    -- racing repeats of a code queue here, and two batches never wait for
    -- each other in a cycle. An expired code's unit is left alone: it is
    -- free for checkouts, whose SKIP LOCKED must not pass over it.
    FOR k IN
        SELECT DISTINCT x.unit_id FROM unnest(v_att) AS x
        WHERE x.unit_id IS NOT NULL AND x.expires_at > clock_timestamp()
        ORDER BY 1
    LOOP
        PERFORM 1 FROM units WHERE id = k.unit_id FOR UPDATE;
    END LOOP;
    -- Then the per-user locks checkout takes, in key order: a hold that a
    -- checkout counted as expired cannot be bought after that checkout.
    FOR k IN
        SELECT DISTINCT x.sale_id, hashtext(x.user_id) AS h FROM unnest(v_att) AS x
        WHERE x.sale_id IS NOT NULL ORDER BY 1, 2
    LOOP
        PERFORM pg_advisory_xact_lock(k.sale_id::integer, k.h);
    END LOOP;

    FOR i IN 1 .. n LOOP
        a := v_att[i];
        p := NULL;
        u := NULL;
        IF a.id IS NULL THEN
            v_outcome := 'code_not_found';
        ELSE
            -- A repeat of a code already bought answers with the first purchase.
            SELECT * INTO p FROM purchases WHERE code = p_codes[i];
            IF FOUND THEN
                v_outcome := 'purchased';
            ELSE
                -- Sold only if the unit is still held under this code:
                -- clock_timestamp, not now(), as the lock waits may have
                -- outlived the hold. An expired code never touches its unit
                -- (not locked above: updating it could wait for a row lock
                -- while holding user locks).
                IF a.expires_at > clock_timestamp() THEN
                    UPDATE units SET sold_at = now()
                    WHERE id = a.unit_id AND hold_code = p_codes[i] AND sold_at IS NULL
                      AND held_until > clock_timestamp()
                    RETURNING * INTO u;
                END IF;
                IF u.id IS NULL THEN
                    v_outcome := 'code_expired';
                ELSE
                    INSERT INTO purchases (sale_id, user_id, item_id, unit_id, code, price_cents)
                    SELECT u.sale_id, u.held_by, u.item_id, u.id, p_codes[i], it.price_cents
                    FROM items it WHERE it.sale_id = u.sale_id AND it.item_id = u.item_id
                    RETURNING * INTO p;
                    v_outcome := 'purchased';
                END IF;
            END IF;
        END IF;
        v_name := NULL;
        v_count := NULL;
        IF a.id IS NOT NULL THEN
            SELECT it.name INTO v_name FROM items it WHERE it.sale_id = a.sale_id AND it.item_id = a.item_id;
            SELECT count(*) INTO v_count FROM purchases c WHERE c.sale_id = a.sale_id AND c.user_id = a.user_id;
        END IF;
        o_outcome := o_outcome || v_outcome;
        o_purch := o_purch || p.id;
        o_sale := o_sale || a.sale_id;
        o_user := o_user || a.user_id;
        o_item := o_item || a.item_id::integer;
        o_name := o_name || v_name;
        o_price := o_price || p.price_cents;
        o_at := o_at || p.purchased_at;
        o_count := o_count || v_count;
    END LOOP;

    RETURN QUERY
    SELECT x.i::integer, x.outcome, x.purch, x.sale, x.usr, x.item, x.name, x.price, x.at, x.cnt
    FROM unnest(o_outcome, o_purch, o_sale, o_user, o_item, o_name, o_price, o_at, o_count)
         WITH ORDINALITY AS x(outcome, purch, sale, usr, item, name, price, at, cnt, i);
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION purchase_batch(text[]);
DROP FUNCTION checkout_batch(text[], bigint[], text[]);
DROP FUNCTION require_read_committed();
