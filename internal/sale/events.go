package sale

import (
	"context"
	"time"

	"github.com/flashsale/flashsale/internal/sale/store"
)

// Events: what happened to the sales, published in order (queries/
// events.sql) and delivered by package webhook.

type (
	// Event is a published event with what it describes.
	Event = store.Event
	// EventType names what an event says happened.
	EventType = store.EventType
	// Published is an event as the publisher returns it.
	Published = store.Published
	// Publish is one publisher's turn.
	Publish = store.Publish
	// Backlog is what waits to be published or delivered.
	Backlog = store.Backlog
	// Delivery is River's record of one delivery of an event.
	Delivery = store.Delivery
)

// The event types.
const (
	SaleStarted       = store.SaleStarted
	PurchaseCompleted = store.PurchaseCompleted
	SalePausedEvent   = store.SalePausedEvent
	SaleResumedEvent  = store.SaleResumedEvent
	SaleSoldOut       = store.SaleSoldOut
	SaleEnded         = store.SaleEnded
)

// EventTypes lists every event type.
func EventTypes() []EventType { return store.EventTypes() }

// PublishEvents publishes what is waiting, unless another server is at it.
func (s *Service) PublishEvents(ctx context.Context, p Publish) ([]Published, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.store.PublishEvents(ctx, p)
}

// Events lists up to limit published events with ids above after.
func (s *Service) Events(ctx context.Context, after int64, limit int) ([]Event, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	evs, err := s.store.Events(ctx, after, limit)
	return evs, unavailable(err)
}

// EventsByID returns the published events among ids.
func (s *Service) EventsByID(ctx context.Context, ids []int64) ([]Event, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	evs, err := s.store.EventsByID(ctx, ids)
	return evs, unavailable(err)
}

// EventIDsBetween returns up to limit ids above after of the events that
// happened in [from, to).
func (s *Service) EventIDsBetween(ctx context.Context, from, to time.Time, after int64, limit int) ([]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ids, err := s.store.EventIDsBetween(ctx, from, to, after, limit)
	return ids, unavailable(err)
}

// EventBacklog reads what waits to be published or delivered (deliveries
// are River jobs of kind).
func (s *Service) EventBacklog(ctx context.Context, kind string) (Backlog, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	b, err := s.store.EventBacklog(ctx, kind)
	return b, unavailable(err)
}

// DeliveriesOfEvent returns every delivery of event id.
func (s *Service) DeliveriesOfEvent(ctx context.Context, kind string, id int64) ([]Delivery, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ds, err := s.store.DeliveriesOfEvent(ctx, kind, id)
	return ds, unavailable(err)
}

// FailedDeliveries lists the deliveries given up, newest first, with job
// ids below before (0: from the newest).
func (s *Service) FailedDeliveries(ctx context.Context, kind string, before int64, limit int) ([]Delivery, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ds, err := s.store.FailedDeliveries(ctx, kind, before, limit)
	return ds, unavailable(err)
}
