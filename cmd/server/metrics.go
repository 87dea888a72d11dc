package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/flashsale/flashsale/internal/metrics"
)

// serveMetrics serves /metrics on its own listener, so it is never exposed
// with the API. The address is bound here, before the server takes
// requests: a METRICS_ADDR that cannot be had stops the start, since the
// operator who set it expects to be scraped.
func serveMetrics(m *metrics.Metrics, addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("METRICS_ADDR: %w", err)
	}
	srv := m.Server(addr)
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}
