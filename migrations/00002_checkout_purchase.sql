-- +goose Up

-- checkout and purchase are functions so that each request is one round trip
-- and one short transaction. Inside a VOLATILE plpgsql function every
-- statement takes a fresh snapshot, so a count that follows
-- pg_advisory_xact_lock sees everything committed by whoever held the lock
-- before (a single CTE statement could not: its snapshot predates the wait).
-- Times come from the database clock only, so every server agrees on them.

-- +goose StatementBegin
CREATE FUNCTION checkout(p_user_id text, p_item_id bigint, p_code text)
RETURNS TABLE (outcome text, sale_id bigint, item_name text, price_cents integer, code text, expires_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    s        sales;
    v_unit   bigint;
    v_owned  bigint;
    v_until  timestamptz;
BEGIN
    -- The sale whose window contains now: the latest one started.
    SELECT * INTO s FROM sales WHERE starts_at <= now() ORDER BY starts_at DESC LIMIT 1;
    IF NOT FOUND OR s.ends_at <= now() THEN
        outcome := 'no_active_sale';
    ELSIF p_item_id < 1 OR p_item_id > s.items THEN
        outcome := 'item_not_found';
    -- Sold out needs no per-user lock: answer it before taking one.
    ELSIF NOT EXISTS (SELECT 1 FROM units u
                      WHERE u.sale_id = s.id AND u.sold_at IS NULL AND u.held_until <= now()) THEN
        outcome := 'sold_out';
    ELSE
        -- Serialise this user's checkouts and purchases in this sale; the
        -- count below then sees every hold and purchase committed before.
        PERFORM pg_advisory_xact_lock(s.id::integer, hashtext(p_user_id));
        SELECT count(*) INTO v_owned FROM units u
        WHERE u.sale_id = s.id AND u.held_by = p_user_id AND u.sold_at IS NULL AND u.held_until > now();
        v_owned := v_owned + (SELECT count(*) FROM purchases p WHERE p.sale_id = s.id AND p.user_id = p_user_id);

        IF v_owned >= s.per_user_limit THEN
            outcome := 'user_limit_reached';
        ELSE
            SELECT u.id INTO v_unit FROM units u
            WHERE u.sale_id = s.id AND u.item_id = p_item_id AND u.sold_at IS NULL AND u.held_until <= now()
            LIMIT 1
            FOR UPDATE SKIP LOCKED;
            IF FOUND THEN
                v_until := now() + s.hold_ttl;
                UPDATE units SET held_by = p_user_id, hold_code = p_code, held_until = v_until WHERE id = v_unit;
                outcome := 'held';
            -- Other items only: units of this one that SKIP LOCKED passed
            -- over are being claimed by concurrent checkouts right now.
            ELSIF EXISTS (SELECT 1 FROM units u
                          WHERE u.sale_id = s.id AND u.item_id <> p_item_id
                            AND u.sold_at IS NULL AND u.held_until <= now()) THEN
                outcome := 'item_unavailable';
            ELSE
                outcome := 'sold_out';
            END IF;
        END IF;
    END IF;

    sale_id := s.id;
    IF outcome = 'held' THEN
        code := p_code;
        expires_at := v_until;
        SELECT i.name, i.price_cents INTO item_name, price_cents
        FROM items i WHERE i.sale_id = s.id AND i.item_id = p_item_id;
    END IF;
    INSERT INTO checkout_attempts (sale_id, user_id, item_id, outcome, code, unit_id, expires_at)
    VALUES (s.id, p_user_id, p_item_id, outcome, CASE WHEN outcome = 'held' THEN p_code END, v_unit, v_until);
    RETURN NEXT;
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

    -- The same lock checkout takes: a hold counted as expired by a checkout
    -- cannot be bought afterwards, and racing repeats of one code queue here.
    PERFORM pg_advisory_xact_lock(a.sale_id::integer, hashtext(a.user_id));

    -- A repeat of a code already bought answers with the first purchase.
    SELECT * INTO p FROM purchases WHERE code = p_code;
    IF NOT FOUND THEN
        SELECT * INTO u FROM units WHERE id = a.unit_id FOR UPDATE;
        -- clock_timestamp, not now(): the lock wait may have outlived the hold.
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
DROP FUNCTION checkout(text, bigint, text);
