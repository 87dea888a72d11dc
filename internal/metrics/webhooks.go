package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/webhook"
)

// webhookCounters count this process's delivery attempts (package webhook
// reports them); the backlog is read from PostgreSQL when scraped.
type webhookCounters struct {
	attempts *prometheus.CounterVec
	retries  prometheus.Counter
	gaveUp   prometheus.Counter
}

func (w *webhookCounters) Delivered() { w.attempts.WithLabelValues("delivered").Inc() }

func (w *webhookCounters) AttemptFailed(final bool, undelivered int) {
	w.attempts.WithLabelValues("failed").Inc()
	if final {
		w.gaveUp.Add(float64(undelivered))
	} else {
		w.retries.Inc()
	}
}

// Webhooks returns what package webhook tells of each delivery attempt;
// nil when metrics are off.
func (m *Metrics) Webhooks() webhook.Observer {
	if m == nil {
		return nil
	}
	w := &webhookCounters{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "webhook_attempts_total",
			Help: "Webhook POSTs made by this server, by result: delivered (2xx in time) or failed.",
		}, []string{"result"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "webhook_retries_total",
			Help: "Failed webhook POSTs whose delivery River will retry.",
		}),
		gaveUp: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "webhook_given_up_total",
			Help: "Events whose delivery this server gave up after the last attempt (WEBHOOK_RETRY_FOR), kept as failed.",
		}),
	}
	w.attempts.WithLabelValues("delivered")
	w.attempts.WithLabelValues("failed")
	m.reg.MustRegister(w.attempts, w.retries, w.gaveUp)
	return w
}

// backlogCollector reads the events' backlog when scraped.
type backlogCollector struct {
	read func(context.Context) (sale.Backlog, error)
}

func eventsDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "events", name), help, nil, nil)
}

var (
	eventsUnpublished = eventsDesc("unpublished", "Events committed and not yet published (the outbox); published each second.")
	eventsWaiting     = eventsDesc("deliveries_waiting", "Events not yet delivered to an endpoint (not tried yet or being retried), across every server.")
	eventsFailed      = eventsDesc("deliveries_failed", "Events given up for an endpoint and kept (in River's discarded jobs), across every server.")
	eventsOldest      = eventsDesc("oldest_undelivered_seconds", "Age of the oldest event not yet published or delivered to every endpoint; 0 when none waits.")
)

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{eventsUnpublished, eventsWaiting, eventsFailed, eventsOldest} {
		ch <- d
	}
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	b, err := c.read(context.Background()) // sale.Service bounds each query by DB_TIMEOUT
	if err != nil {
		ch <- prometheus.NewInvalidMetric(eventsUnpublished, err)
		return
	}
	now := time.Now()
	oldest := 0.0
	if b.Unpublished > 0 {
		oldest = max(oldest, now.Sub(b.OldestUnpublished).Seconds())
	}
	if b.Undelivered > 0 {
		oldest = max(oldest, now.Sub(b.OldestUndelivered).Seconds())
	}
	for _, m := range []struct {
		d *prometheus.Desc
		v float64
	}{{eventsUnpublished, float64(b.Unpublished)}, {eventsWaiting, float64(b.Undelivered)}, {eventsFailed, float64(b.Failed)}, {eventsOldest, oldest}} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.GaugeValue, m.v)
	}
}

// WatchEvents adds the events' backlog, as read reports it when scraped.
func (m *Metrics) WatchEvents(read func(context.Context) (sale.Backlog, error)) {
	if m == nil {
		return
	}
	m.reg.MustRegister(&backlogCollector{read: read})
}
