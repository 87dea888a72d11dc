-- +goose Up

-- checkout and purchase are functions so that each call is one round trip
-- and one short transaction. Inside a VOLATILE plpgsql function every
-- statement takes a fresh snapshot, so a count that follows
-- pg_advisory_xact_lock sees everything committed by whoever held the lock
-- before (a single CTE statement could not: its snapshot predates the wait).
-- Times come from the database clock only, so every server agrees on them.
--
-- The searches for a free unit are written ORDER BY held_until LIMIT 1 so
-- that the only cheap plan is the partial index (free units sort first):
-- with a plain EXISTS the planner, once the table is analyzed, may pick a
-- sequential scan over every unit of every sale.
--
-- Lock order, which keeps the two functions free of deadlocks:
-- * checkout never waits for a row lock (SKIP LOCKED) and takes the per-user
--   advisory locks of a batch in ascending key order;
-- * purchase locks its unit row first and then one advisory lock, so while
--   it waits for the advisory lock it holds nothing a checkout waits for.

-- +goose StatementBegin
-- checkout_batch decides a batch of checkout requests (the i-th user, item
-- and code of the arrays form one request) in one transaction and stores
-- every attempt, so concurrent requests share one commit. A batch of one is
-- an ordinary checkout. It returns one row per request, ord being its index.
CREATE FUNCTION checkout_batch(p_user_ids text[], p_item_ids bigint[], p_codes text[])
RETURNS TABLE (ord integer, outcome text, sale_id bigint, item_name text, price_cents integer,
               code text, expires_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    s         sales;
    r         record;
    v_free    boolean;
    v_unit    bigint;
    v_owned   bigint;
    v_until   timestamptz;
    v_outcome text;
    o_ord     integer[]     := '{}';
    o_outcome text[]        := '{}';
    o_unit    bigint[]      := '{}';
    o_until   timestamptz[] := '{}';
BEGIN
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

    FOR r IN
        SELECT q.i::integer AS i, q.user_id, q.item_id, q.code
        FROM unnest(p_user_ids, p_item_ids, p_codes) WITH ORDINALITY AS q(user_id, item_id, code, i)
        ORDER BY hashtext(q.user_id), q.i
    LOOP
        v_unit := NULL;
        v_until := NULL;
        IF s.id IS NULL THEN
            v_outcome := 'no_active_sale';
        ELSIF r.item_id < 1 OR r.item_id > s.items THEN
            v_outcome := 'item_not_found';
        ELSIF NOT v_free THEN
            v_outcome := 'sold_out';
        ELSE
            -- Serialise this user's checkouts and purchases in this sale;
            -- the count below then sees every hold and purchase committed
            -- before, and this batch's own.
            PERFORM pg_advisory_xact_lock(s.id::integer, hashtext(r.user_id));
            SELECT count(*) INTO v_owned FROM units u
            WHERE u.sale_id = s.id AND u.held_by = r.user_id AND u.sold_at IS NULL AND u.held_until > now();
            v_owned := v_owned + (SELECT count(*) FROM purchases p WHERE p.sale_id = s.id AND p.user_id = r.user_id);

            IF v_owned >= s.per_user_limit THEN
                v_outcome := 'user_limit_reached';
            ELSE
                SELECT u.id INTO v_unit FROM units u
                WHERE u.sale_id = s.id AND u.item_id = r.item_id AND u.sold_at IS NULL AND u.held_until <= now()
                ORDER BY u.held_until
                LIMIT 1
                FOR UPDATE SKIP LOCKED;
                IF v_unit IS NOT NULL THEN
                    v_until := now() + s.hold_ttl;
                    UPDATE units SET held_by = r.user_id, hold_code = r.code, held_until = v_until WHERE id = v_unit;
                    v_outcome := 'held';
                -- Other items only: units of this one that SKIP LOCKED passed
                -- over are being claimed by concurrent checkouts right now.
                ELSIF EXISTS (SELECT 1 FROM units u
                              WHERE u.sale_id = s.id AND u.item_id <> r.item_id
                                AND u.sold_at IS NULL AND u.held_until <= now()
                              ORDER BY u.held_until LIMIT 1) THEN
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
    END LOOP;

    INSERT INTO checkout_attempts (sale_id, user_id, item_id, outcome, code, unit_id, expires_at)
    SELECT s.id, p_user_ids[x.i], p_item_ids[x.i], x.outcome,
           CASE WHEN x.outcome = 'held' THEN p_codes[x.i] END, x.unit, x.until
    FROM unnest(o_ord, o_outcome, o_unit, o_until) AS x(i, outcome, unit, until);

    RETURN QUERY
    SELECT x.i, x.outcome, s.id, it.name, it.price_cents,
           CASE WHEN x.outcome = 'held' THEN p_codes[x.i] END, x.until
    FROM unnest(o_ord, o_outcome, o_unit, o_until) AS x(i, outcome, unit, until)
    LEFT JOIN items it ON x.outcome = 'held' AND it.sale_id = s.id AND it.item_id = p_item_ids[x.i];
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION purchase(p_code text)
RETURNS TABLE (outcome text, purchase_id bigint, sale_id bigint, user_id text, item_id integer,
               item_name text, price_cents integer, purchased_at timestamptz, user_purchases bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    a checkout_attempts;
    u units;
    p purchases;
BEGIN
    SELECT * INTO a FROM checkout_attempts WHERE code = p_code;
    IF NOT FOUND THEN
        outcome := 'code_not_found';
        RETURN NEXT;
        RETURN;
    END IF;

    -- Racing repeats of one code queue on the unit's row lock. Then the
    -- lock checkout takes: a hold that a checkout counted as expired cannot
    -- be bought after that checkout.
    SELECT * INTO u FROM units WHERE id = a.unit_id FOR UPDATE;
    PERFORM pg_advisory_xact_lock(a.sale_id::integer, hashtext(a.user_id));

    -- A repeat of a code already bought answers with the first purchase.
    SELECT * INTO p FROM purchases WHERE code = p_code;
    IF NOT FOUND THEN
        -- clock_timestamp, not now(): the lock waits may have outlived the hold.
        IF u.hold_code IS DISTINCT FROM p_code OR u.sold_at IS NOT NULL OR u.held_until <= clock_timestamp() THEN
            outcome := 'code_expired';
            sale_id := a.sale_id;
            user_id := a.user_id;
            item_id := a.item_id;
            RETURN NEXT;
            RETURN;
        END IF;
        UPDATE units SET sold_at = now() WHERE id = u.id;
        INSERT INTO purchases (sale_id, user_id, item_id, unit_id, code, price_cents)
        SELECT u.sale_id, u.held_by, u.item_id, u.id, p_code, i.price_cents
        FROM items i WHERE i.sale_id = u.sale_id AND i.item_id = u.item_id
        RETURNING * INTO p;
    END IF;

    outcome := 'purchased';
    purchase_id := p.id;
    sale_id := p.sale_id;
    user_id := p.user_id;
    item_id := p.item_id;
    price_cents := p.price_cents;
    purchased_at := p.purchased_at;
    SELECT i.name INTO item_name FROM items i WHERE i.sale_id = p.sale_id AND i.item_id = p.item_id;
    SELECT count(*) INTO user_purchases FROM purchases x WHERE x.sale_id = p.sale_id AND x.user_id = p.user_id;
    RETURN NEXT;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION purchase(text);
DROP FUNCTION checkout_batch(text[], bigint[], text[]);
