// Package saletest gives a test a ready sale.Service on a fresh database in
// one line, so tests of the rules call the service directly instead of
// going through HTTP (apitest.Start is for tests of the API).
package saletest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// DefaultSettings are a sale small enough to sell out in a test: 300 units
// over 30 items (10 each), a cap of 10 and a 10-minute hold.
//
// The window is a week rather than the server's hour: tests compare counts
// across many requests, and a test that straddled the hourly boundary would
// see its later requests land in the next sale.
var DefaultSettings = sale.Settings{
	Duration: 7 * 24 * time.Hour, Units: 300, Items: 30, PerUserLimit: 10, HoldTTL: 10 * time.Minute,
}

const (
	// DefaultPoolSize is also the number of batch workers per kind of
	// request, so it decides how many transactions race at once.
	DefaultPoolSize = 8
	// DefaultDBTimeout is generous: under -race with hundreds of goroutines
	// a batch can wait a while for its connection, and a test that fails
	// with ErrUnavailable on a slow machine says nothing about the rules.
	DefaultDBTimeout = 5 * time.Second
)

// Env is one service on its own database, with the current sale created.
type Env struct {
	Service *sale.Service
	// Pool is the service's own pool, for assertions in SQL and for
	// test setup that bypasses the rules (see factory.go).
	Pool *pgxpool.Pool
	// URL of the test's database, for extra connections (a session that
	// holds a lock, a second service on the same database).
	URL      string
	Settings sale.Settings
	// Sale is the sale open now by the database's clock; zero with WithoutSales.
	Sale sale.Sale
}

type config struct {
	settings  sale.Settings
	poolSize  int32
	dbTimeout time.Duration
	url       string
	noSales   bool
}

// Option changes what New sets up.
type Option func(*config)

// WithSettings replaces every sale setting at once.
func WithSettings(s sale.Settings) Option { return func(c *config) { c.settings = s } }

// WithUnits sets the units of each sale.
func WithUnits(n int) Option { return func(c *config) { c.settings.Units = n } }

// WithItems sets the items of each sale; units are spread evenly over them.
func WithItems(n int) Option { return func(c *config) { c.settings.Items = n } }

// WithPerUserLimit sets the cap of units one user may hold plus own.
func WithPerUserLimit(n int) Option { return func(c *config) { c.settings.PerUserLimit = n } }

// WithHoldTTL sets how long a checkout holds its unit.
func WithHoldTTL(d time.Duration) Option { return func(c *config) { c.settings.HoldTTL = d } }

// WithDuration sets the length of a sale window.
func WithDuration(d time.Duration) Option { return func(c *config) { c.settings.Duration = d } }

// WithPoolSize sets the pool's connections (and so the batch workers).
func WithPoolSize(n int32) Option { return func(c *config) { c.poolSize = n } }

// WithDBTimeout sets the bound on each database call of the service.
func WithDBTimeout(d time.Duration) Option { return func(c *config) { c.dbTimeout = d } }

// WithDatabase uses an existing database (another Env's URL) instead of a
// new one, for several services racing on one database as servers do.
// Sales that already exist keep the settings they were created with.
func WithDatabase(url string) Option { return func(c *config) { c.url = url } }

// WithoutSales creates no sale, for tests of what happens when none is open
// or of creating them.
func WithoutSales() Option { return func(c *config) { c.noSales = true } }

// New returns a service on a fresh migrated database with the current and
// next sale created. Everything is closed when the test ends, the service
// before its pool, so no batch worker outlives its connections.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	c := config{settings: DefaultSettings, poolSize: DefaultPoolSize, dbTimeout: DefaultDBTimeout}
	for _, o := range opts {
		o(&c)
	}
	url := c.url
	if url == "" {
		url = pgtest.New(t)
	}
	ctx := context.Background()
	pool, err := database.Open(ctx, url, c.poolSize, c.dbTimeout)
	if err != nil {
		t.Fatalf("saletest: %v", err)
	}
	t.Cleanup(pool.Close)
	svc := sale.NewService(pool, c.settings, c.dbTimeout, testutil.Logger(t, slog.LevelInfo))
	// Registered after pool.Close, so it runs before it (cleanups run last
	// in, first out).
	t.Cleanup(svc.Close)

	env := &Env{Service: svc, Pool: pool, URL: url, Settings: c.settings}
	if c.noSales {
		return env
	}
	// The database's clock, not this process's: the queries decide which
	// sale is open by now(), so the sale created must be the one they find.
	var now time.Time
	if err := pool.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		t.Fatalf("saletest: read the database clock: %v", err)
	}
	if err := svc.EnsureSales(ctx, now); err != nil {
		t.Fatalf("saletest: create sales: %v", err)
	}
	if env.Sale, err = svc.Current(ctx); err != nil {
		t.Fatalf("saletest: current sale: %v", err)
	}
	return env
}

// RunScheduler runs every service's scheduler until the test ends, and
// waits for each to return before the test's pools close.
func RunScheduler(t testing.TB, services ...*sale.Service) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range services {
		wg.Go(func() { s.RunScheduler(ctx) })
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}
