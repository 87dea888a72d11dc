// Command server runs the flash-sale HTTP API. Any number of servers may run
// against one database; see README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/httpapi"
	"github.com/flashsale/flashsale/internal/logging"
	"github.com/flashsale/flashsale/internal/metrics"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/salewatch"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(command(os.Args[1:], os.Stdout, os.Stderr)) // cli.go
}

// serve runs the server until SIGINT or SIGTERM: the default command.
// A setting that cannot work ends it at once, before anything connects,
// with one line naming it and exit 2, as a misused command does.
func serve(stderr io.Writer) int {
	cfg, err := config.Load()
	if err != nil {
		return misconfigured(stderr, err)
	}
	if err := run(cfg); err != nil {
		// run's own logger is closed by now; this line is written directly.
		logging.New(os.Stderr, slog.LevelInfo).Error("server stopped", "err", err)
		return 1
	}
	return 0
}

func run(cfg config.Config) error {
	config.TuneGC()
	log, closeLog, err := logging.Open(cfg.LogLevel)
	if err != nil {
		return err
	}
	defer closeLog()

	// Settings read from files are checked before anything connects.
	apiOpts, err := httpapi.ConfigOptions(cfg, version, log)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	pool, err := database.Open(ctx, cfg.DatabaseURL, cfg.DBMaxConns, cfg.DBTimeout, database.Behind(database.Pooler(cfg.DBPooler)))
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := database.CheckServer(ctx, pool); err != nil {
		return err
	}
	if err := migrate(ctx, cfg, pool); err != nil {
		return err
	}
	// Reads that decide nothing get their own pool: checkouts and purchases never wait behind them.
	readPool, err := database.Open(ctx, cfg.DatabaseURL, cfg.DBReadMaxConns, cfg.DBTimeout, database.Behind(database.Pooler(cfg.DBPooler)))
	if err != nil {
		return err
	}
	defer readPool.Close()

	var m *metrics.Metrics // nil: off
	if cfg.MetricsAddr != "" {
		var opts []metrics.Option
		if cfg.MetricsHTTPSizes {
			opts = append(opts, metrics.WithHTTPSizes())
		}
		m = metrics.New(version, opts...)
	}
	// River's own pool: publishing events and delivering them never takes
	// a connection from the checkouts or the API's reads.
	eventsPool, err := database.Open(ctx, cfg.DatabaseURL, riverConns, cfg.DBTimeout, database.Behind(database.Pooler(cfg.DBPooler)))
	if err != nil {
		return fmt.Errorf("River's pool: %w", err)
	}
	defer eventsPool.Close()
	sales := sale.NewService(pool, saleSettings(cfg), cfg.DBTimeout, log,
		append(m.SaleOptions(), sale.WithReadPool(readPool), sale.WithEventsPool(eventsPool))...)
	defer sales.Close() // after srv.Shutdown: no checkout waits for a batch then
	// The API's polled reads, its event streams and the metrics share one
	// read of the current sale.
	current := salewatch.NewCurrent(sales)
	m.Watch(pool, readPool, current, sales)
	if m != nil {
		stopMetrics, err := serveMetrics(m, cfg.MetricsAddr, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	if err := sales.WaitForCurrentSale(ctx); err != nil {
		return err
	}
	schedulerDone := make(chan struct{})
	go func() {
		defer close(schedulerDone)
		sales.RunScheduler(ctx)
	}()

	// Events are published and delivered by River jobs (internal/webhook),
	// on any number of servers at once.
	events, stopEvents, err := startEvents(ctx, cfg, eventsPool, sales, m, log)
	if err != nil {
		return err
	}

	apiOpts.Middleware, apiOpts.Current, apiOpts.Webhooks = m.Middleware(), current, events
	api := httpapi.New(sales, apiOpts)
	m.WatchStreams(api.OpenStreams)
	if cfg.PprofAddr != "" {
		// The profiler gets its own listener so it is never exposed with the API.
		prof := &http.Server{Addr: cfg.PprofAddr, Handler: pprofMux(), ReadHeaderTimeout: 5 * time.Second}
		defer prof.Close()
		go func() {
			if err := prof.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
				log.Warn("pprof server stopped", "err", err)
			}
		}()
	}
	srv := api.HTTPServer(cfg.HTTPAddr)
	// Bound here, so that the URL logged has the port in use (HTTP_ADDR
	// may say :0).
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("serve %s: %w", cfg.HTTPAddr, err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logListening(log, cfg.HTTPAddr, ln.Addr())
	log.Info("listening", "addr", cfg.HTTPAddr, "url", openURL(cfg.HTTPAddr, ln.Addr()), "version", version, "sale_duration", cfg.SaleDuration.String(),
		"sale_units", cfg.SaleUnits, "sale_items", cfg.SaleItems, "per_user_limit", cfg.PerUserLimit, "hold_ttl", cfg.HoldTTL.String(),
		"db_max_conns", cfg.DBMaxConns, "db_read_max_conns", cfg.DBReadMaxConns, "attempts_retention", cfg.AttemptsRetention.String(),
		"auth", apiOpts.Auth != nil, "rate_limit_user", cfg.RateLimitUser, "rate_limit_ip", cfg.RateLimitIP)

	var runErr error
	select {
	case err := <-serveErr:
		runErr = fmt.Errorf("serve %s: %w", cfg.HTTPAddr, err)
	case <-ctx.Done():
		stop() // from here a second signal ends the process at once
		log.Info("shutting down: finishing in-flight requests")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownPeriod)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			runErr = fmt.Errorf("shutdown: %w", err)
		}
	}
	// The scheduler ends with ctx; wait for it before the pool closes.
	stop()
	<-schedulerDone
	// Deliveries in flight get what is left of the shutdown period; one cut
	// short is retried by another server (River rescues it).
	eventsCtx, cancelEvents := context.WithTimeout(context.Background(), cfg.ShutdownPeriod)
	stopEvents(eventsCtx)
	cancelEvents()
	if runErr == nil {
		log.Info("stopped")
	}
	return runErr
}

// saleSettings are the sale rules from the server's settings: `server
// sale` applies a definition with the same defaults and edit lead as the
// servers.
func saleSettings(cfg config.Config) sale.Settings {
	return sale.Settings{
		Duration: cfg.SaleDuration, Units: cfg.SaleUnits, Items: cfg.SaleItems,
		PerUserLimit: cfg.PerUserLimit, HoldTTL: cfg.HoldTTL, IdempotencyKeyTTL: cfg.IdempotencyKeyTTL,
		AttemptsRetention: cfg.AttemptsRetention, NoGeneratedSales: !cfg.SaleAutogenerate, EditLead: cfg.SaleEditLead,
	}
}

// migrate applies pending migrations through the service's pool, or
// through a pool of their own on DATABASE_MIGRATION_URL when one is set.
func migrate(ctx context.Context, cfg config.Config, pool *pgxpool.Pool) error {
	if cfg.DatabaseMigrationURL == "" {
		return database.Migrate(ctx, pool)
	}
	direct, err := database.Open(ctx, cfg.DatabaseMigrationURL, 2, cfg.DBTimeout)
	if err != nil {
		return fmt.Errorf("DATABASE_MIGRATION_URL: %w", err)
	}
	defer direct.Close()
	return database.Migrate(ctx, direct)
}

func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
