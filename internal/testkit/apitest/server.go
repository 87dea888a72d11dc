package apitest

import (
	"cmp"
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/httpapi"
	"github.com/flashsale/flashsale/internal/metrics"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/salewatch"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/spectest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
	"github.com/flashsale/flashsale/internal/webhook"
)

// Settings a test gets unless it says otherwise: a one-hour sale of 300 units.
var DefaultSettings = sale.Settings{
	Duration: time.Hour, Units: 300, Items: 30, PerUserLimit: 10, HoldTTL: 10 * time.Minute,
}

// Server is one running instance of the API.
type Server struct {
	URL  string // base URL, no trailing slash
	Pool *pgxpool.Pool
	// ReadPool serves the service's reads (sale.WithReadPool), as
	// DB_READ_MAX_CONNS does in cmd/server.
	ReadPool *pgxpool.Pool
	Sales    *sale.Service
	DBURL    string
	API      *httpapi.Server
	// Events publishes and delivers events, with Options.Webhooks.
	Events *webhook.Events
}

// Options change what Start does; the zero value starts a server with
// DefaultSettings on a new database and creates the current sale.
type Options struct {
	Settings *sale.Settings
	// DBURL reuses an existing database (a second server on the same one).
	DBURL string
	// NoSale skips creating the current and next sale.
	NoSale bool
	// DBTimeout bounds each database call; default 2s.
	DBTimeout time.Duration
	// HTTP turns on the API's guards (auth, rate limits, CORS, trusted
	// proxies); Version and Log are set by Start.
	HTTP httpapi.Options
	// Metrics, when set, instruments the server as cmd/server does.
	Metrics *metrics.Metrics
	// ReadPoolSize is the connections of the reads' own pool; default 1,
	// DB_READ_MAX_CONNS' default.
	ReadPoolSize int32
	// Webhooks, when set, publishes events and delivers them as cmd/server
	// does (its Body is httpapi.EventBody); Server.Events is then set.
	Webhooks *webhook.Config
}

// Start runs the real HTTP API on a loopback port against a fresh
// database (or opts.DBURL) until the test ends, for tests of any package.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	settings := DefaultSettings
	if opts.Settings != nil {
		settings = *opts.Settings
	}
	if opts.DBTimeout == 0 {
		opts.DBTimeout = 2 * time.Second
	}
	dbURL := opts.DBURL
	if dbURL == "" {
		dbURL = pgtest.New(t)
	}
	ctx := context.Background()
	pool, err := database.Open(ctx, dbURL, 8, opts.DBTimeout)
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	t.Cleanup(pool.Close)
	readPool, err := database.Open(ctx, dbURL, cmp.Or(opts.ReadPoolSize, 1), opts.DBTimeout)
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	t.Cleanup(readPool.Close)
	log := testutil.Logger(t, slog.LevelWarn)
	saleOpts := append(opts.Metrics.SaleOptions(), sale.WithReadPool(readPool))
	var eventsPool *pgxpool.Pool
	if opts.Webhooks != nil {
		// River's own pool, as in cmd/server.
		eventsPool, err = database.Open(ctx, dbURL, 5, opts.DBTimeout)
		if err != nil {
			t.Fatalf("apitest: River's pool: %v", err)
		}
		t.Cleanup(eventsPool.Close)
		saleOpts = append(saleOpts, sale.WithEventsPool(eventsPool))
	}
	sales := sale.NewService(pool, settings, opts.DBTimeout, log, saleOpts...)
	// One shared read of the current sale for the API and the metrics, as
	// in cmd/server.
	current := salewatch.NewCurrent(sales)
	opts.Metrics.Watch(pool, readPool, current, sales)
	t.Cleanup(sales.Close) // before pool.Close, after the HTTP server's
	if !opts.NoSale {
		if err := sales.EnsureSales(ctx, time.Now()); err != nil {
			t.Fatalf("apitest: create sales: %v", err)
		}
	}
	hopts := opts.HTTP
	hopts.Version, hopts.Log, hopts.Middleware, hopts.Current = "test", log, opts.Metrics.Middleware(), current
	var events *webhook.Events
	if opts.Webhooks != nil {
		events = startEvents(t, eventsPool, sales, *opts.Webhooks, log)
		hopts.Webhooks = events
	}
	api := httpapi.New(sales, hopts)
	opts.Metrics.WatchStreams(api.OpenStreams)
	// Every exchange is held to the OpenAPI document: an undocumented answer
	// fails the test that caused it.
	hs := httptest.NewServer(spectest.Wrap(t, api))
	t.Cleanup(hs.Close)
	t.Cleanup(api.StopStreams) // before hs.Close, which waits for every handler
	return &Server{URL: hs.URL, Pool: pool, ReadPool: readPool, Sales: sales, DBURL: dbURL, API: api, Events: events}
}

// startEvents runs River on pool until the test ends, as cmd/server does.
func startEvents(t testing.TB, pool *pgxpool.Pool, sales *sale.Service, cfg webhook.Config, log *slog.Logger) *webhook.Events {
	t.Helper()
	if cfg.Body == nil {
		cfg.Body = httpapi.EventBody
	}
	cfg.UserAgent = cmp.Or(cfg.UserAgent, "flashsale-webhooks/test")
	cfg.Timeout = cmp.Or(cfg.Timeout, 2*time.Second)
	cfg.RetryFor = cmp.Or(cfg.RetryFor, time.Hour)
	cfg.Workers = cmp.Or(cfg.Workers, 4)
	events, err := webhook.New(pool, sales, cfg, log)
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	if err := events.Start(context.Background()); err != nil {
		t.Fatalf("apitest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := events.Stop(ctx); err != nil {
			t.Errorf("apitest: stop River: %v", err)
		}
	})
	return events
}
