package main

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/httpapi"
	"github.com/flashsale/flashsale/internal/metrics"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/webhook"
)

// riverConns is River's own pool: its listener holds one connection, the
// publisher one, the deliveries' reads and River's fetches and completions
// the rest.
const riverConns = 5

// startEvents starts publishing events and delivering webhooks, with River
// on pool; the returned stop lets deliveries in flight finish (until its
// context ends).
func startEvents(ctx context.Context, cfg config.Config, pool *pgxpool.Pool, sales *sale.Service, m *metrics.Metrics, log *slog.Logger) (*webhook.Events, func(context.Context), error) {
	events, err := webhook.New(pool, sales, webhook.Config{
		URLs: cfg.WebhookURLs, Secrets: cfg.WebhookSecrets, Timeout: cfg.WebhookTimeout, RetryFor: cfg.WebhookRetryFor,
		Workers: cfg.WebhookConcurrency, Rate: cfg.WebhookRate, PollOnly: cfg.DBPooler == string(database.PoolerTransaction),
		Body: httpapi.EventBody, UserAgent: "flashsale-webhooks/" + version, Observer: m.Webhooks(),
	}, log)
	if err == nil {
		err = events.Start(ctx)
	}
	if err != nil {
		return nil, nil, err
	}
	m.WatchEvents(events.Backlog)
	return events, func(ctx context.Context) {
		if err := events.Stop(ctx); err != nil {
			log.Warn("webhooks stopped before their deliveries finished", "err", err)
		}
	}, nil
}
