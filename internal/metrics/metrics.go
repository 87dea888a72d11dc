// Package metrics exposes the service to Prometheus: HTTP requests by route
// and status, checkout and purchase outcomes, batch sizes and durations,
// the connection pool, and the current sale's units. Everything on the
// request path is a client_golang counter or histogram, touched once per
// request (HTTP) or once per batch (the sale package's Observer); what needs
// the database is read at scrape time, at most once per second.
package metrics

import (
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/salewatch"
)

const namespace = "flashsale"

// Metrics is one process's registry. Build it with New, hook it into the
// sale service (SaleOptions) and the API (Middleware), then Watch the pool
// and the service, and serve it on a private listener (Server).
type Metrics struct {
	reg  *prometheus.Registry
	http *httpMetrics

	batchSize        *prometheus.HistogramVec
	batchSeconds     *prometheus.HistogramVec
	batchFailures    *prometheus.CounterVec
	checkoutOutcomes *prometheus.CounterVec
	purchaseOutcomes *prometheus.CounterVec

	sale *saleCollector
}

// Option changes what New registers.
type Option func(*options)

type options struct{ httpSizes bool }

// WithHTTPSizes adds histograms of request and response body sizes
// (METRICS_HTTP_SIZES); off by default.
func WithHTTPSizes() Option { return func(o *options) { o.httpSizes = true } }

// New registers the Go runtime, process, build, HTTP and batch metrics.
func New(version string, opts ...Option) *Metrics {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg:  reg,
		http: newHTTPMetrics(o.httpSizes),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "batch_size",
			Help: "Requests per checkout or purchase batch (one transaction each).",
			// Powers of two up to the batcher's limit of 64.
			Buckets: prometheus.ExponentialBuckets(1, 2, 7),
		}, []string{"batch"}),
		batchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "batch_duration_seconds",
			Help: "Time a checkout or purchase batch spent in its transaction(s), connection wait included.",
			// 0.25 ms to 4 s: a healthy batch takes about a millisecond,
			// DB_TIMEOUT (2 s) plus its grace bounds a failing one.
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 15),
		}, []string{"batch"}),
		batchFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "batch_failures_total",
			Help: "Batches that failed as a whole (every request in them answered 503 or 500).",
		}, []string{"batch"}),
		checkoutOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "checkout_outcomes_total",
			Help: "Checkouts decided by PostgreSQL, by checkout_outcome.",
		}, []string{"outcome"}),
		purchaseOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "purchase_outcomes_total",
			Help: "Purchases decided by PostgreSQL, by purchase_outcome (purchased includes repeats of a code), or user_limit_reached.",
		}, []string{"outcome"}),
	}
	// Every series exists from the start at 0, so rate() and alerts see
	// the first event rather than the second.
	for _, kind := range []string{"checkout", "purchase"} {
		m.batchSize.WithLabelValues(kind)
		m.batchSeconds.WithLabelValues(kind)
		m.batchFailures.WithLabelValues(kind)
	}
	// Answers replayed under an idempotency key are outcomes too (see
	// sale.Observer), present from the start like the rest.
	for _, o := range append(sale.CheckoutOutcomes(), "replayed", "idempotency_key_reused") {
		m.checkoutOutcomes.WithLabelValues(o)
	}
	for _, o := range sale.PurchaseOutcomes() {
		m.purchaseOutcomes.WithLabelValues(o)
	}
	m.purchaseOutcomes.WithLabelValues("user_limit_reached")

	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info", Help: "Always 1; the version the server was built as.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build, m.batchSize, m.batchSeconds, m.batchFailures, m.checkoutOutcomes, m.purchaseOutcomes,
	)
	reg.MustRegister(m.http.collectors()...)
	return m
}

// SaleOptions make the sale service report every batch here. Like
// Middleware and Watch, it does nothing on a nil *Metrics (metrics off), so
// callers wire it in without a condition.
func (m *Metrics) SaleOptions() []sale.Option {
	if m == nil {
		return nil
	}
	return []sale.Option{sale.WithObserver(sale.Observer{
		Batch: func(kind string, size int, took time.Duration, err error) {
			m.batchSize.WithLabelValues(kind).Observe(float64(size))
			m.batchSeconds.WithLabelValues(kind).Observe(took.Seconds())
			if err != nil {
				m.batchFailures.WithLabelValues(kind).Inc()
			}
		},
		CheckoutOutcome: func(outcome string, n int) { m.checkoutOutcomes.WithLabelValues(outcome).Add(float64(n)) },
		PurchaseOutcome: func(outcome string, n int) { m.purchaseOutcomes.WithLabelValues(outcome).Add(float64(n)) },
	})}
}

// Middleware counts and times HTTP requests (httpapi.Options.Middleware).
func (m *Metrics) Middleware() []echo.MiddlewareFunc {
	if m == nil {
		return nil
	}
	return []echo.MiddlewareFunc{m.http.middleware}
}

// Watch adds both pools' statistics (pool="write" for checkouts and
// purchases, pool="read" for the reads) and the current sale's units, all
// read when scraped; the sale through the process's shared read, which
// the API's readers use too.
func (m *Metrics) Watch(write, read *pgxpool.Pool, current *salewatch.Current, sales *sale.Service) {
	if m == nil {
		return
	}
	m.sale = &saleCollector{current: current, sales: sales, maxAge: time.Second}
	m.reg.MustRegister(poolCollector{map[string]*pgxpool.Pool{"write": write, "read": read}}, m.sale)
}

// WatchStreams adds the number of open event streams, as open reports it
// when scraped (httpapi.Server.OpenStreams).
func (m *Metrics) WatchStreams(open func() int64) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "event_streams_open",
		Help: "Event streams (GET /sales/current/events) open on this server now.",
	}, func() float64 { return float64(open()) }))
}

// SaleReads is how many times the current sale was read from PostgreSQL,
// by the scrapes and the other users of the shared read.
func (m *Metrics) SaleReads() int64 { return m.sale.current.Reads() }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, Timeout: 10 * time.Second})
}

// Server returns an http.Server for Handler at /metrics, with timeouts.
func (m *Metrics) Server(addr string) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	return &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
}
