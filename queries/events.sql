-- Events (migrations/00008_events.sql): written to event_outbox by the
-- transaction of the fact, published by one server at a time, delivered by
-- River (internal/webhook).

-- name: EventOutboxAdd :exec
-- A sale event a transaction makes (sale.paused, sale.resumed): it commits
-- with the change it describes.
INSERT INTO event_outbox (type, sale_id) VALUES (@type, @sale_id);

-- name: EventsPublishLock :one
-- One publisher at a time, so that ids and sequences are drawn in the order
-- the events commit. A server that finds the lock taken skips its turn: the
-- holder publishes what it would have. Key (3, 0), apart from the users'
-- (1, ...) and sale creation's (2, 0).
SELECT pg_try_advisory_xact_lock(3, 0) AS locked;

-- name: EventsPublish :many
-- Publishes, in one statement and so from one snapshot, the oldest
-- max_events outbox rows and the events no transaction writes: a sale's
-- start (once its start has passed), its sell-out (once no unit is unsold)
-- and its end (once its end has passed). Each sale's events get the next
-- sequence numbers, in the order start, outbox rows (as committed), then
-- sell-out and end by time. Because one snapshot sees every unit sold only
-- if it sees every purchase of them, and so their outbox rows, a sell-out
-- (and an end) waits until the outbox is drained: it comes after every
-- purchase that made it. Sales are watched from their start until lookback
-- after their end (the longest a hold made before the end can still be
-- bought); events_once_per_sale makes a repeat impossible anyway.
-- Returns the new events, for their deliveries to be queued in the same
-- transaction.
WITH batch AS (
    DELETE FROM event_outbox o
    WHERE o.id IN (SELECT x.id FROM event_outbox x ORDER BY x.id LIMIT @max_events::integer)
    RETURNING o.id, o.type, o.sale_id, o.purchase_id, o.occurred_at
),
drained AS (
    SELECT (SELECT count(*) FROM event_outbox) <= @max_events::integer AS yes
),
-- Up to clock_timestamp(), read after this statement's snapshot, not now(),
-- the transaction's start: a sale that started in between may have
-- purchases (or a pause) this snapshot sees, and its start comes first.
-- Read once, in a subquery: a volatile function in the condition itself
-- would keep the planner off sales_no_overlap's index.
watched AS (
    SELECT s.id, s.starts_at, s.ends_at FROM sales s
    WHERE tstzrange(s.starts_at, s.ends_at) && tstzrange(now() - @lookback::interval, (SELECT clock_timestamp()), '[]')
),
candidates AS (
    SELECT 'sale.started'::event_type AS type, w.id AS sale_id, NULL::bigint AS purchase_id,
           w.starts_at AS occurred_at, 0 AS rank, 0::bigint AS outbox_id
    FROM watched w
    WHERE NOT EXISTS (SELECT FROM events e WHERE e.sale_id = w.id AND e.type = 'sale.started')
    UNION ALL
    SELECT b.type, b.sale_id, b.purchase_id, b.occurred_at, 1, b.id
    FROM batch b
    UNION ALL
    SELECT 'sale.sold_out', w.id, NULL,
           coalesce((SELECT max(p.purchased_at) FROM purchases p WHERE p.sale_id = w.id), now()), 2, 0
    FROM watched w CROSS JOIN drained d
    WHERE d.yes
      AND NOT EXISTS (SELECT FROM units u WHERE u.sale_id = w.id AND u.sold_at IS NULL)
      AND NOT EXISTS (SELECT FROM events e WHERE e.sale_id = w.id AND e.type = 'sale.sold_out')
    UNION ALL
    SELECT 'sale.ended', w.id, NULL, w.ends_at, 2, 0
    FROM watched w CROSS JOIN drained d
    WHERE d.yes AND w.ends_at <= now()
      AND NOT EXISTS (SELECT FROM events e WHERE e.sale_id = w.id AND e.type = 'sale.ended')
),
numbered AS (
    SELECT c.type, c.sale_id, c.purchase_id, c.occurred_at, c.rank,
           coalesce((SELECT max(e.sequence) FROM events e WHERE e.sale_id = c.sale_id), 0)
               + row_number() OVER (PARTITION BY c.sale_id ORDER BY c.rank, c.occurred_at, c.outbox_id) AS sequence
    FROM candidates c
)
-- Ids are drawn in this order, which keeps each sale's ids in the order of
-- its sequence.
INSERT INTO events (type, sale_id, sequence, purchase_id, occurred_at)
SELECT n.type, n.sale_id, n.sequence, n.purchase_id, n.occurred_at
FROM numbered n
ORDER BY n.rank, n.occurred_at, n.sale_id, n.sequence
RETURNING id, type, sale_id, sequence;

-- name: EventsList :many
-- Published events after the cursor, oldest first.
SELECT * FROM event_details d WHERE d.id > @after ORDER BY d.id LIMIT @lim;

-- name: EventsGet :many
SELECT * FROM event_details d WHERE d.id = ANY(@ids::bigint[]) ORDER BY d.id;

-- name: EventIDsOccurredBetween :many
-- The events that happened in [from, to), after a cursor, to be delivered
-- again: an admin's rare action, so no index on occurred_at (see
-- migrations/00008_events.sql); the primary key's order follows time.
SELECT e.id FROM events e
WHERE e.occurred_at >= @from_at AND e.occurred_at < @to_at AND e.id > @after
ORDER BY e.id
LIMIT @lim;

-- name: EventsOutboxWaiting :one
-- What is written but not yet published, and since when (now when nothing).
SELECT count(*) AS waiting, coalesce(min(o.occurred_at), now())::timestamptz AS oldest FROM event_outbox o;

-- Deliveries are River jobs (river_job, db/river_schema.sql), each of up
-- to 100 events to one endpoint (args: url, event_ids); the events a job
-- has delivered are in its output (metadata.output.delivered), kept across
-- its attempts.

-- name: WebhookDeliveriesWaiting :one
-- Events River has yet to deliver to some endpoint, and when the oldest of
-- them happened (now when none).
SELECT count(*) AS waiting, coalesce(min(e.occurred_at), now())::timestamptz AS oldest
FROM river_job j
CROSS JOIN LATERAL jsonb_array_elements(j.args->'event_ids') AS x(id)
LEFT JOIN events e ON e.id = x.id::bigint
WHERE j.kind = @kind AND j.state IN ('available', 'scheduled', 'retryable', 'running', 'pending')
  AND NOT coalesce(j.metadata->'output'->'delivered', '[]') @> jsonb_build_array(x.id);

-- name: WebhookDeliveriesFailed :one
-- Events given up by a delivery (kept as River's discarded jobs).
SELECT count(*) AS failed
FROM river_job j
CROSS JOIN LATERAL jsonb_array_elements(j.args->'event_ids') AS x(id)
WHERE j.kind = @kind AND j.state = 'discarded'
  AND NOT coalesce(j.metadata->'output'->'delivered', '[]') @> jsonb_build_array(x.id);

-- name: WebhookDeliveriesOfEvent :many
-- Every delivery of an event, to each endpoint, with River's record of it
-- and whether it delivered this event.
SELECT j.id, j.state, j.attempt, j.max_attempts, j.attempted_at, j.scheduled_at, j.finalized_at,
       (j.args->>'url')::text AS url, coalesce(j.errors[array_upper(j.errors, 1)]->>'error', '')::text AS last_error,
       (coalesce(j.metadata->'output'->'delivered', '[]') @> jsonb_build_array(@event_id::bigint))::boolean AS delivered
FROM river_job j
WHERE j.kind = @kind AND j.args @> jsonb_build_object('event_ids', jsonb_build_array(@event_id::bigint))
ORDER BY j.id;

-- name: WebhookDeliveriesFailedList :many
-- The events of the lim newest deliveries given up (job ids below before,
-- 0: from the newest) that they did not deliver.
WITH jobs AS (
    SELECT j.id, j.attempt, j.attempted_at, j.finalized_at, j.args, j.metadata, j.errors
    FROM river_job j
    WHERE j.kind = @kind AND j.state = 'discarded' AND (@before::bigint = 0 OR j.id < @before::bigint)
    ORDER BY j.id DESC
    LIMIT @lim
)
SELECT j.id, j.attempt, j.attempted_at, j.finalized_at, x.id::bigint AS event_id, (j.args->>'url')::text AS url,
       coalesce(j.errors[array_upper(j.errors, 1)]->>'error', '')::text AS last_error
FROM jobs j
CROSS JOIN LATERAL jsonb_array_elements(j.args->'event_ids') AS x(id)
WHERE NOT coalesce(j.metadata->'output'->'delivered', '[]') @> jsonb_build_array(x.id)
ORDER BY j.id DESC, event_id;
