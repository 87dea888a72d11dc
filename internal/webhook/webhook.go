// Package webhook publishes the sales' events and delivers them to the
// shop's endpoints, with River, the PostgreSQL job queue, as the engine.
//
// A fact's transaction writes its event to event_outbox (the purchase
// batch, an admin control): the batch is one pipelined list of statements
// fixed before it is sent (internal/sale/store/tx.go), which River's insert
// API, running its own queries on a transaction it is handed, cannot join.
// A River periodic job publishes the outbox each second on one server at a
// time (queries/events.sql) and, in the same transaction, inserts one River
// job per event and endpoint. River runs each job on one server at a time,
// retries it with this package's backoff, rescues it from a server that
// died while running it, and keeps it as discarded once it gives up.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"golang.org/x/time/rate"

	"github.com/flashsale/flashsale/internal/sale"
)

// Config is how events are delivered.
type Config struct {
	// URLs are the endpoints; each event is delivered to every one. None:
	// events are published (GET /admin/events) but not pushed.
	URLs []string
	// Secrets sign each delivery, each with its own v1 (rotation).
	Secrets []string
	// Timeout bounds one delivery attempt: an answer after it is a failure.
	Timeout time.Duration
	// RetryFor is about how long a failing delivery is retried before it
	// is given up and kept as failed.
	RetryFor time.Duration
	// Workers is how many deliveries one server makes at once.
	Workers int
	// Rate caps the events one server sends a second (0: no cap), so
	// that during a sale's burst its deliveries take a bounded share of
	// the machine from the checkouts; what the cap holds back follows
	// right after.
	Rate float64
	// PollOnly: River polls instead of LISTEN (behind a transaction pooler).
	PollOnly bool
	// Body is an event as it is sent: the same JSON as GET /admin/events.
	Body func(sale.Event) ([]byte, error)
	// UserAgent is sent with each delivery.
	UserAgent string
	// Observer counts the deliveries (nil: none).
	Observer Observer
	// PublishEvery is how often events are published (0: each second).
	PublishEvery time.Duration
}

// Observer is told of each delivery attempt.
type Observer interface {
	// Delivered: an endpoint answered an event's POST with 2xx in time.
	Delivered()
	// AttemptFailed: it did not; final when the delivery is given up, with
	// undelivered events.
	AttemptFailed(final bool, undelivered int)
}

// DeliveryKind is the River job kind of a delivery.
const DeliveryKind = "flashsale_webhook_delivery"

const (
	publishKind = "flashsale_publish_events"
	queue       = "flashsale_webhooks"
	// publishBatch is the most outbox rows one turn publishes: a herd's
	// thousand purchases a second are published in one turn.
	publishBatch = 5000
	// deliveryBatch is the most events one delivery job sends.
	deliveryBatch = 100
	// attemptBudget is how long an attempt starts new POSTs; what is left
	// is sent by the same job at once after (a snooze, not a retry).
	attemptBudget = 20 * time.Second
	// lookback is how long after its end a sale is still watched for its
	// end and sell-out events: a hold made just before the end can be bought
	// until it expires (HOLD_TTL, at most 24h).
	lookback = 25 * time.Hour
	// failedKeptFor is how long a failed delivery is kept.
	failedKeptFor = 30 * 24 * time.Hour
)

// Events runs the publisher and the deliveries of one server.
type Events struct {
	client *river.Client[pgx.Tx]
	sales  *sale.Service
	cfg    Config
}

// New returns the events of sales, queued on pool (River's own pool: its
// listener holds a connection, and its queries never wait behind the
// checkouts' pool).
func New(pool *pgxpool.Pool, sales *sale.Service, cfg Config, log *slog.Logger) (*Events, error) {
	if cfg.Body == nil {
		return nil, errors.New("webhook: no Body")
	}
	if cfg.PublishEvery <= 0 {
		cfg.PublishEvery = time.Second
	}
	e := &Events{sales: sales, cfg: cfg}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &publishWorker{events: e}); err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	pace := rate.NewLimiter(rate.Inf, 0)
	if cfg.Rate > 0 {
		pace = rate.NewLimiter(rate.Limit(cfg.Rate), max(int(cfg.Rate/10), 1))
	}
	d := &deliverWorker{events: e, pace: pace, http: &http.Client{
		// A redirect is not a delivery: the endpoint must answer itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     transport(cfg.Workers),
	}}
	if err := river.AddWorkerSafely(workers, d); err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	jobTimeout := attemptBudget + cfg.Timeout + 5*time.Second // see deliverWorker.Timeout
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		// River reports its routine at info level every few seconds.
		Logger:   slog.New(warnAndUp{log.Handler()}).With("component", "river"),
		PollOnly: cfg.PollOnly,
		Queues: map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: 1},
			// A fetch fills the free workers, at most ten times a second
			// (River's cooldown): with up to 100 events a delivery, far more
			// than a server sends.
			queue: {MaxWorkers: max(cfg.Workers, 1)},
		},
		Workers:    workers,
		JobTimeout: jobTimeout,
		// A job still running this long after it started belongs to a
		// server that died: River's rescuer hands it to another.
		RescueStuckJobsAfter: jobTimeout + 10*time.Second,
		// Failed deliveries stay visible (GET /admin/webhooks/failed) a
		// month before River's cleaner removes them; delivered ones a day.
		DiscardedJobRetentionPeriod: failedKeptFor,
		PeriodicJobs: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(cfg.PublishEvery),
			// Tried once: the next turn, a second later, publishes what a
			// failed one did not, and retries would pile up while the
			// database is away.
			func() (river.JobArgs, *river.InsertOpts) { return publishArgs{}, &river.InsertOpts{MaxAttempts: 1} },
			&river.PeriodicJobOpts{ID: publishKind, RunOnStart: true})},
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: River client: %w", err)
	}
	e.client = client
	return e, nil
}

func transport(workers int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = max(workers, 2)
	return t
}

// Start starts publishing and delivering until Stop.
func (e *Events) Start(ctx context.Context) error {
	if err := e.client.Start(ctx); err != nil {
		return fmt.Errorf("start River: %w", err)
	}
	return nil
}

// Stop lets the running deliveries finish (until ctx ends) and stops.
func (e *Events) Stop(ctx context.Context) error {
	if err := e.client.Stop(ctx); err != nil {
		return fmt.Errorf("stop River: %w", err)
	}
	return nil
}

// Redeliver queues one more delivery of each of the events ids names to
// every endpoint, and returns how many it queued (events times
// endpoints). An id that names no published event is left out.
func (e *Events) Redeliver(ctx context.Context, ids []int64) (int, error) {
	evs, err := e.sales.EventsByID(ctx, ids)
	if err != nil {
		return 0, err
	}
	ids = make([]int64, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	return e.queue(ctx, ids)
}

// queue inserts the deliveries of events ids, all published, and returns
// how many it queued (events times endpoints).
func (e *Events) queue(ctx context.Context, ids []int64) (int, error) {
	params := e.deliveries(ids)
	if len(params) == 0 {
		return 0, nil
	}
	if _, err := e.client.InsertManyFast(ctx, params); err != nil {
		return 0, fmt.Errorf("queue deliveries: %w", err)
	}
	return len(ids) * len(e.cfg.URLs), nil
}

// RedeliverBetween queues one more delivery of every event that happened
// in [from, to) to every endpoint.
func (e *Events) RedeliverBetween(ctx context.Context, from, to time.Time) (int, error) {
	const page = 1000
	total := 0
	for after := int64(0); ; {
		ids, err := e.sales.EventIDsBetween(ctx, from, to, after, page)
		if err != nil {
			return total, err
		}
		if len(ids) == 0 {
			return total, nil
		}
		// Ids read from events name published events: no second read.
		n, err := e.queue(ctx, ids)
		total += n
		if err != nil {
			return total, err
		}
		after = ids[len(ids)-1]
	}
}

// Endpoints returns the configured endpoints.
func (e *Events) Endpoints() []string { return slices.Clone(e.cfg.URLs) }

// Deliveries returns every delivery of event id, with River's record.
func (e *Events) Deliveries(ctx context.Context, id int64) ([]sale.Delivery, error) {
	return e.sales.DeliveriesOfEvent(ctx, DeliveryKind, id)
}

// Failed lists the deliveries given up, newest first.
func (e *Events) Failed(ctx context.Context, before int64, limit int) ([]sale.Delivery, error) {
	return e.sales.FailedDeliveries(ctx, DeliveryKind, before, limit)
}

// Backlog reads what waits to be published or delivered.
func (e *Events) Backlog(ctx context.Context) (sale.Backlog, error) {
	return e.sales.EventBacklog(ctx, DeliveryKind)
}

// deliveries are the River jobs that deliver events ids to every endpoint,
// up to deliveryBatch events a job, in id order (the order of each sale's
// sequence).
func (e *Events) deliveries(ids []int64) []river.InsertManyParams {
	slices.Sort(ids)
	var params []river.InsertManyParams
	opts := &river.InsertOpts{Queue: queue, MaxAttempts: maxAttempts(e.cfg.RetryFor)}
	for batch := range slices.Chunk(ids, deliveryBatch) {
		for _, url := range e.cfg.URLs {
			params = append(params, river.InsertManyParams{Args: deliverArgs{URL: url, EventIDs: batch}, InsertOpts: opts})
		}
	}
	return params
}

// publishArgs is the periodic job that publishes the outbox.
type publishArgs struct{}

func (publishArgs) Kind() string { return publishKind }

type publishWorker struct {
	river.WorkerDefaults[publishArgs]
	events *Events
}

func (w *publishWorker) Work(ctx context.Context, _ *river.Job[publishArgs]) error {
	e := w.events
	_, err := e.sales.PublishEvents(ctx, sale.Publish{
		Max: publishBatch, Lookback: lookback,
		Then: func(ctx context.Context, tx pgx.Tx, published []sale.Published) error {
			ids := make([]int64, len(published))
			for i, p := range published {
				ids[i] = p.ID
			}
			params := e.deliveries(ids)
			if len(params) == 0 {
				return nil
			}
			_, err := e.client.InsertManyFastTx(ctx, tx, params)
			return err
		},
	})
	return err
}

// deliverArgs is the delivery of events to one endpoint: one POST per
// event, in order. A River job costs PostgreSQL a row written three times
// (queued, running, completed) with six index entries each, more than the
// purchase it reports: one job per event made the herd's PostgreSQL spend
// half as much again; a job per published batch makes it a rounding error.
// The events are read when they are sent: what they describe never
// changes once their sale has started.
type deliverArgs struct {
	URL      string  `json:"url"`
	EventIDs []int64 `json:"event_ids"`
}

func (deliverArgs) Kind() string { return DeliveryKind }

// progress is what a delivery has done, kept in its job's output (River
// stores it whatever the attempt's outcome), so a retry sends only what
// was not delivered.
type progress struct {
	Delivered []int64 `json:"delivered"`
}

type deliverWorker struct {
	river.WorkerDefaults[deliverArgs]
	events *Events
	http   *http.Client
	// pace is Config.Rate, shared by the server's deliveries.
	pace *rate.Limiter
}

// NextRetry spaces the attempts: see retryDelay.
func (w *deliverWorker) NextRetry(job *river.Job[deliverArgs]) time.Time {
	return time.Now().Add(jitter(retryDelay(w.events.cfg.RetryFor, job.Attempt)))
}

// Timeout is River's bound on an attempt: its sending budget and the last
// POST begun within it.
func (w *deliverWorker) Timeout(*river.Job[deliverArgs]) time.Duration {
	return attemptBudget + w.events.cfg.Timeout + 5*time.Second
}

// Work sends the events not yet delivered, in order, until one fails: the
// endpoint is then likely down, so the rest wait for the retry rather
// than each wait out a timeout now.
func (w *deliverWorker) Work(ctx context.Context, job *river.Job[deliverArgs]) error {
	e := w.events
	var done progress
	if out := job.Output(); len(out) > 0 {
		if err := json.Unmarshal(out, &done); err != nil {
			return fmt.Errorf("read the delivery's progress: %w", err)
		}
	}
	pending := slices.DeleteFunc(slices.Clone(job.Args.EventIDs), func(id int64) bool { return slices.Contains(done.Delivered, id) })
	evs, err := e.sales.EventsByID(ctx, pending)
	if err != nil {
		return err
	}
	started := time.Now()
	var failed error
	sent, outOfTime := 0, false
	for _, ev := range evs {
		if time.Since(started) > attemptBudget {
			outOfTime = true
			break
		}
		if err := w.pace.Wait(ctx); err != nil {
			failed = fmt.Errorf("wait for a turn to send: %w", err)
			break
		}
		body, err := e.cfg.Body(ev)
		if err == nil {
			err = w.post(ctx, job.Args.URL, ev, body, job.Attempt)
		}
		if err != nil {
			failed = fmt.Errorf("event %d: %w", ev.ID, err)
			break
		}
		sent++
		done.Delivered = append(done.Delivered, ev.ID)
		if o := e.cfg.Observer; o != nil {
			o.Delivered()
		}
	}
	if done.Delivered == nil {
		done.Delivered = []int64{} // [] rather than null for the queries
	}
	if err := river.RecordOutput(ctx, done); err != nil {
		return fmt.Errorf("record the delivery's progress: %w", err)
	}
	switch left := len(evs) - sent; {
	case failed != nil:
		if o := e.cfg.Observer; o != nil {
			o.AttemptFailed(job.Attempt >= job.MaxAttempts, left)
		}
		return fmt.Errorf("%d of %d events not delivered: %w", left, len(job.Args.EventIDs), failed)
	case outOfTime:
		// Not a failure: the rest are sent at once, the attempt not counted.
		return river.JobSnooze(0)
	}
	return nil
}

func (w *deliverWorker) post(ctx context.Context, url string, ev sale.Event, body []byte, attempt int) error {
	cfg := w.events.cfg
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return river.JobCancel(fmt.Errorf("POST %s: %w", url, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", cfg.UserAgent)
	req.Header.Set("Flashsale-Event-Id", strconv.FormatInt(ev.ID, 10))
	req.Header.Set("Flashsale-Event-Type", string(ev.Type))
	req.Header.Set("Flashsale-Delivery-Attempt", strconv.Itoa(attempt))
	req.Header.Set(SignatureHeader, Sign(cfg.Secrets, time.Now(), body))
	resp, err := w.http.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	// Read a little of the answer, so the connection can be reused, and
	// for the error River keeps.
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s answered %s: %q", url, resp.Status, snippet)
	}
	return nil
}

// retryDelay is the wait after a delivery's attempt-th failed attempt:
// doubling from RetryFor/20 (at most 10s) up to RetryFor/4 (at most an
// hour). With the default day: 10s, 20s, 40s, ... 43m, then hourly.
func retryDelay(retryFor time.Duration, attempt int) time.Duration {
	base := min(10*time.Second, max(retryFor/20, 100*time.Millisecond))
	ceiling := min(time.Hour, max(retryFor/4, base))
	d := base
	for i := 1; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// maxAttempts is how many attempts the retry delays spread over RetryFor.
func maxAttempts(retryFor time.Duration) int {
	n, total := 1, time.Duration(0)
	for total < retryFor && n < 1000 {
		total += retryDelay(retryFor, n)
		n++
	}
	return n
}

// jitter spreads d over ±20%, so the endpoints a burst failed are not
// retried in one burst again.
func jitter(d time.Duration) time.Duration {
	return d*4/5 + time.Duration(rand.Int64N(int64(d)*2/5+1))
}

// warnAndUp passes on River's warnings and errors only.
type warnAndUp struct{ slog.Handler }

func (h warnAndUp) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

func (h warnAndUp) WithAttrs(attrs []slog.Attr) slog.Handler {
	return warnAndUp{h.Handler.WithAttrs(attrs)}
}

func (h warnAndUp) WithGroup(name string) slog.Handler { return warnAndUp{h.Handler.WithGroup(name)} }
