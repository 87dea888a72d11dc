// Package sale holds the business rules of the flash sale: creating sale
// windows, holding a unit at checkout and selling it at purchase. The rules
// themselves are stated in SQL (queries/) and in the schema's constraints;
// this package decides which queries to send, groups concurrent requests
// into batches (batcher.go) that package store runs as one transaction
// each, and maps the outcomes to errors. It knows nothing of HTTP.
//
// A checkout, end to end: Service.Checkout (checkout.go) validates and
// queues the request on s.checkouts; a batcher worker runs
// Service.checkoutBatch on the batch, which calls
// store.CheckoutsRefuseIfSoldOut and store.CheckoutsDecide
// (store/checkout.go), which send queries/user_locks.sql and
// queries/checkout.sql in one pipelined transaction (store/tx.go). A
// purchase goes the same way through purchase.go and store/purchase.go.
package sale

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/sale/store"
)

// The types a sale is read as: the store's, which are plain Go values.
type (
	Sale      = store.Sale
	Summary   = store.Summary
	Item      = store.Item
	ItemStock = store.ItemStock
	ItemCount = store.ItemCount
	Purchase  = store.Purchase
)

// Settings are copied into each sale when it is created.
type Settings struct {
	Duration     time.Duration
	Units        int
	Items        int
	PerUserLimit int
	HoldTTL      time.Duration
	// IdempotencyKeyTTL is how long the answer to a checkout with an
	// Idempotency-Key is kept (a server setting, not copied into sales);
	// zero means DefaultIdempotencyKeyTTL.
	IdempotencyKeyTTL time.Duration
	// AttemptsRetention, when positive, is how long after a sale ended
	// (and its last hold expired) its checkout attempts are kept; the
	// scheduler then drops them (DropOldAttempts). Zero keeps everything.
	// A server setting, not copied into sales.
	AttemptsRetention time.Duration
	// NoGeneratedSales turns the generated sales off (SALE_AUTOGENERATE=false):
	// only sales a shop defines run.
	NoGeneratedSales bool
	// EditLead is how far ahead of its start a sale can still be defined,
	// replaced or deleted; zero means DefaultEditLead. Each such edit's
	// transaction is bounded by half of it, so none commits after the start.
	EditLead time.Duration
}

// DefaultEditLead is SALE_EDIT_LEAD's default: a minute, far longer than
// the largest definition takes to insert.
const DefaultEditLead = time.Minute

// DefaultIdempotencyKeyTTL keeps answers a day, as Stripe does: long past
// any hold, and enough for a client that retries after an outage. It is
// IDEMPOTENCY_KEY_TTL's default too (internal/config).
const DefaultIdempotencyKeyTTL = 24 * time.Hour

// Service is safe for concurrent use; it keeps no state that decides
// anything, so any number of servers can run against one database.
type Service struct {
	store    *store.Store
	settings Settings
	timeout  time.Duration
	log      *slog.Logger

	// checkouts runs checkoutBatch and purchases runs purchaseBatch, each
	// wrapped by observed (observe.go); both are set in NewService.
	checkouts *batcher[store.CheckoutRequest, store.CheckoutResult]
	purchases *batcher[store.Code, purchaseResult]

	// soldOut is set while the last checkout batch found the current sale
	// with no free unit: the next batch then tries the short query first
	// (store.CheckoutsRefuseIfSoldOut), which checks it again and stores
	// nothing when a unit is free. A hint for which query to send, never a
	// decision.
	soldOut atomic.Bool
}

// Option changes what NewService builds.
type Option func(*options)

type options struct {
	observer   Observer
	readPool   *pgxpool.Pool
	eventsPool *pgxpool.Pool
}

// WithObserver reports every batch to o.
func WithObserver(o Observer) Option { return func(opts *options) { opts.observer = o } }

// WithReadPool sends the reads that decide nothing (GET /sales/...,
// /users/.../purchases, readiness, the live page's counts) to p instead of
// the pool of checkouts and purchases. Reads then wait for p's
// connections, never for the batches' ones, and the batches never wait for
// theirs. Close p after the service.
func WithReadPool(p *pgxpool.Pool) Option { return func(opts *options) { opts.readPool = p } }

// WithEventsPool sends the publishing of events and the deliveries' reads
// of them (package webhook) to p, River's pool, instead of the pool of
// checkouts and purchases. Close p after the service.
func WithEventsPool(p *pgxpool.Pool) Option { return func(opts *options) { opts.eventsPool = p } }

// NewService returns a Service whose every database call is bounded by
// timeout, so an unreachable database turns into ErrUnavailable quickly.
// Close it when done.
func NewService(pool *pgxpool.Pool, settings Settings, timeout time.Duration, log *slog.Logger, opts ...Option) *Service {
	if settings.IdempotencyKeyTTL == 0 {
		settings.IdempotencyKeyTTL = DefaultIdempotencyKeyTTL
	}
	if settings.EditLead == 0 {
		settings.EditLead = DefaultEditLead
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	st := store.New(pool, o.readPool, o.eventsPool, timeout)
	s := &Service{store: st, settings: settings, timeout: timeout, log: log}
	obs := o.observer
	s.checkouts = newBatcher(st.Conns(), timeout, checkoutKey,
		observed(obs, "checkout", s.checkoutBatch, checkoutOutcome, obs.CheckoutOutcome))
	s.purchases = newBatcher(st.Conns(), timeout, func(c store.Code) string { return c.Code },
		observed(obs, "purchase", s.purchaseBatch, purchaseOutcome, obs.PurchaseOutcome))
	return s
}

// Close stops the batch workers. Call it after the HTTP server has stopped,
// so that no request waits for a batch.
func (s *Service) Close() {
	s.checkouts.close()
	s.purchases.close()
}
