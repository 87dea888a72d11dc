// Command httpceiling serves the API's HTTP stack with no database behind
// it (httpapi.NewSoldOut): every well-formed POST /checkout is answered as a
// sold-out sale answers it, through the same Echo application, middleware,
// rate limits, error handler, JSON encoder and request log as cmd/server.
// `make bench` storms it with the load generator: its checkouts per second
// are what HTTP alone allows on this machine, the HTTP ceiling.
//
// It reads the server's settings from the environment (internal/config):
// HTTP_ADDR, LOG_LEVEL, the rate limits, TRUSTED_PROXIES, CORS and auth act
// as they do on the server; the database settings are read and ignored.
// It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/httpapi"
	"github.com/flashsale/flashsale/internal/logging"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "httpceiling:", err)
		os.Exit(1)
	}
}

func run() error {
	config.TuneGC() // as the server does: collections are part of a request's cost
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	// The server's logger, buffered the same way: the request log is part
	// of what a checkout costs.
	log, closeLog, err := logging.Open(cfg.LogLevel)
	if err != nil {
		return err
	}
	defer closeLog()
	opts, err := httpapi.ConfigOptions(cfg, "httpceiling", log)
	if err != nil {
		return err
	}
	api := httpapi.NewSoldOut(opts)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv := api.HTTPServer(cfg.HTTPAddr)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ListenAndServe() }()
	log.Info("listening", "addr", cfg.HTTPAddr, "rate_limit_user", cfg.RateLimitUser, "rate_limit_ip", cfg.RateLimitIP)
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve %s: %w", cfg.HTTPAddr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownPeriod)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
