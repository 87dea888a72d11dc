package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/db"
)

// EventType names what an event says happened, as the event_type enum does.
type EventType string

// The event types; TestEventTypesMatchTheEnum ties them to the enum.
const (
	SaleStarted       EventType = "sale.started"
	PurchaseCompleted EventType = "purchase.completed"
	SalePausedEvent   EventType = "sale.paused"
	SaleResumedEvent  EventType = "sale.resumed"
	SaleSoldOut       EventType = "sale.sold_out"
	SaleEnded         EventType = "sale.ended"
)

// EventTypes lists every event type.
func EventTypes() []EventType {
	all := db.AllEventTypeValues()
	out := make([]EventType, len(all))
	for i, t := range all {
		out[i] = EventType(t)
	}
	return out
}

// controlEvents are the events the admin controls write with their change.
var controlEvents = map[Action]db.EventType{ActionPause: db.EventTypeSalepaused, ActionResume: db.EventTypeSaleresumed}

// Event is a published event with what it describes.
type Event struct {
	ID   int64
	Type EventType
	// Sequence numbers the sale's events 1, 2, 3, ... in publication order.
	Sequence    int64
	OccurredAt  time.Time
	PublishedAt time.Time
	// Sale is the sale's definition (its id, window, units and limits).
	Sale Sale
	// Purchase is set for purchase.completed; its UserPurchases is not.
	Purchase *Purchase
}

// Published is an event as the publisher returns it: enough to queue its
// deliveries.
type Published struct {
	ID     int64
	Type   EventType
	SaleID int64
}

// Publish is one publisher's turn (queries/events.sql, EventsPublish).
type Publish struct {
	// Max is the most outbox rows one turn moves.
	Max int
	// Lookback is how long after its end a sale is still watched for
	// events.
	Lookback time.Duration
	// Then queues the new events' deliveries in the publishing
	// transaction, so an event is published if and only if they are.
	Then func(ctx context.Context, tx pgx.Tx, published []Published) error
}

// PublishEvents takes the publisher's lock and publishes what is waiting.
// It returns the events it published; none, and no error, when another
// server holds the lock.
func (s *Store) PublishEvents(ctx context.Context, p Publish) ([]Published, error) {
	var out []Published
	err := pgx.BeginFunc(ctx, s.events, func(tx pgx.Tx) error {
		locked, err := s.q.EventsPublishLock(ctx, tx)
		if err != nil || !locked {
			return err
		}
		rows, err := s.q.EventsPublish(ctx, tx, db.EventsPublishParams{MaxEvents: int32(p.Max), Lookback: p.Lookback})
		if err != nil {
			return err
		}
		out = make([]Published, len(rows))
		for i, r := range rows {
			out[i] = Published{ID: r.ID, Type: EventType(r.Type), SaleID: r.SaleID}
		}
		if len(out) == 0 || p.Then == nil {
			return nil
		}
		return p.Then(ctx, tx, out)
	})
	if err != nil {
		return nil, wrap(err, "publish events")
	}
	return out, nil
}

// Events lists published events with ids above after, oldest first.
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]Event, error) {
	rows, err := s.q.EventsList(ctx, s.read, db.EventsListParams{After: after, Lim: int32(limit)})
	if err != nil {
		return nil, wrap(err, "list events")
	}
	return eventsFromRows(rows)
}

// EventsByID returns the published events among ids, in id order; an id
// that names none is left out. Deliveries read them, on the events' pool.
func (s *Store) EventsByID(ctx context.Context, ids []int64) ([]Event, error) {
	rows, err := s.q.EventsGet(ctx, s.events, ids)
	if err != nil {
		return nil, wrap(err, "get events")
	}
	return eventsFromRows(rows)
}

// EventIDsBetween returns up to limit ids, above after, of the events that
// happened in [from, to).
func (s *Store) EventIDsBetween(ctx context.Context, from, to time.Time, after int64, limit int) ([]int64, error) {
	ids, err := s.q.EventIDsOccurredBetween(ctx, s.read, db.EventIDsOccurredBetweenParams{
		FromAt: from, ToAt: to, After: after, Lim: int32(limit),
	})
	return ids, wrap(err, "list events between")
}

func eventsFromRows(rows []db.EventDetail) ([]Event, error) {
	out := make([]Event, len(rows))
	for i, r := range rows {
		e := Event{
			ID: r.ID, Type: EventType(r.Type), Sequence: r.Sequence, OccurredAt: r.OccurredAt, PublishedAt: r.PublishedAt,
			Sale: Sale{
				ID: r.SaleID, StartsAt: r.SaleStartsAt, EndsAt: r.SaleEndsAt, UnitsTotal: r.SaleUnitsTotal,
				Items: r.SaleItems, PerUserLimit: r.SalePerUserLimit, HoldTTL: r.SaleHoldTtl, DefinedBy: deref(r.SaleDefinedBy),
			},
		}
		if e.Type == PurchaseCompleted {
			if r.PurchaseID == nil || r.UserID == nil || r.Code == nil || r.PriceCents == nil || r.PurchasedAt == nil ||
				r.ItemID == nil || r.ItemName == nil {
				return nil, fmt.Errorf("event %d: purchase.completed without its purchase", r.ID)
			}
			e.Purchase = &Purchase{
				ID: *r.PurchaseID, SaleID: r.SaleID, UserID: *r.UserID, Code: *r.Code, PurchasedAt: *r.PurchasedAt,
				Item: Item{
					SaleID: r.SaleID, ID: *r.ItemID, SKU: deref(r.Sku), Name: *r.ItemName, Description: deref(r.ItemDescription),
					PriceCents: *r.PriceCents, Currency: deref(r.Currency), ImageURL: deref(r.ImageUrl),
				},
			}
		}
		out[i] = e
	}
	return out, nil
}

// Backlog is what waits to be published or delivered, in events.
type Backlog struct {
	// Unpublished outbox rows, and when the oldest happened.
	Unpublished       int64
	OldestUnpublished time.Time
	// Deliveries not yet made or finished (River jobs of kind), and when
	// the oldest of their events happened.
	Undelivered       int64
	OldestUndelivered time.Time
	// Failed deliveries, given up and kept.
	Failed int64
}

// EventBacklog reads the backlog of deliveries of kind.
func (s *Store) EventBacklog(ctx context.Context, kind string) (Backlog, error) {
	out, err := s.q.EventsOutboxWaiting(ctx, s.read)
	if err != nil {
		return Backlog{}, wrap(err, "count the outbox")
	}
	jobs, err := s.q.WebhookDeliveriesWaiting(ctx, s.read, kind)
	if err != nil {
		return Backlog{}, wrap(err, "count the deliveries")
	}
	failed, err := s.q.WebhookDeliveriesFailed(ctx, s.read, kind)
	if err != nil {
		return Backlog{}, wrap(err, "count the failed deliveries")
	}
	return Backlog{
		Unpublished: out.Waiting, OldestUnpublished: out.Oldest,
		Undelivered: jobs.Waiting, OldestUndelivered: jobs.Oldest, Failed: failed,
	}, nil
}

// Delivery is River's record of one delivery of an event to one endpoint.
type Delivery struct {
	JobID       int64
	EventID     int64
	URL         string
	State       string
	Attempts    int
	MaxAttempts int
	AttemptedAt time.Time
	// NextAttemptAt is when River runs it next, while it waits.
	NextAttemptAt time.Time
	FinalizedAt   time.Time
	LastError     string
	// Delivered: this delivery sent this event (a delivery sends up to
	// 100 events; its State is the whole delivery's).
	Delivered bool
}

// DeliveriesOfEvent returns every delivery of event id (of kind).
func (s *Store) DeliveriesOfEvent(ctx context.Context, kind string, id int64) ([]Delivery, error) {
	rows, err := s.q.WebhookDeliveriesOfEvent(ctx, s.read, db.WebhookDeliveriesOfEventParams{Kind: kind, EventID: id})
	if err != nil {
		return nil, wrap(err, "list the event's deliveries")
	}
	out := make([]Delivery, len(rows))
	for i, r := range rows {
		out[i] = Delivery{
			JobID: r.ID, EventID: id, URL: r.Url, State: string(r.State), Attempts: int(r.Attempt), MaxAttempts: int(r.MaxAttempts),
			AttemptedAt: deref(r.AttemptedAt), FinalizedAt: deref(r.FinalizedAt), LastError: r.LastError, Delivered: r.Delivered,
		}
		if r.FinalizedAt == nil {
			out[i].NextAttemptAt = r.ScheduledAt
		}
	}
	return out, nil
}

// FailedDeliveries lists the events of the limit newest deliveries given
// up (job ids below before, 0: from the newest) that they did not deliver.
func (s *Store) FailedDeliveries(ctx context.Context, kind string, before int64, limit int) ([]Delivery, error) {
	rows, err := s.q.WebhookDeliveriesFailedList(ctx, s.read, db.WebhookDeliveriesFailedListParams{Kind: kind, Before: before, Lim: int32(limit)})
	if err != nil {
		return nil, wrap(err, "list the failed deliveries")
	}
	out := make([]Delivery, len(rows))
	for i, r := range rows {
		out[i] = Delivery{
			JobID: r.ID, EventID: r.EventID, URL: r.Url, State: "discarded", Attempts: int(r.Attempt),
			MaxAttempts: int(r.Attempt), AttemptedAt: deref(r.AttemptedAt), FinalizedAt: deref(r.FinalizedAt), LastError: r.LastError,
		}
	}
	return out, nil
}
