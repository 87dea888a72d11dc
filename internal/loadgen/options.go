package loadgen

import (
	"context"
	"io"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen/phase"
)

// Options shape the load; the zero value of each field takes its default.
type Options struct {
	Users            int           // herd users (default 20,000)
	Concurrency      int           // herd clients (default 256)
	StormConcurrency int           // storm clients (default 128)
	StormDuration    time.Duration // default 20s
	HerdTimeout      time.Duration // the herd gives up after this (default 3m)
	RequestTimeout   time.Duration // per HTTP request (default 30s)
	Pick             string        // phase.PickRandom (default) or phase.PickUntaken
	// HotClients more storm clients send checkouts as one user.
	HotClients int

	// ReadCurrent and ReadItems clients loop on GET /sales/current and
	// GET /sales/current/items?limit=1000 during a second storm, the reads
	// phase, when Reads is set (RunService only).
	Reads       bool
	ReadCurrent int
	ReadItems   int
	// ReadInterval is each reader's pause between an answer and its next
	// request; 0 loops without pause.
	ReadInterval time.Duration

	// Baseline runs herd and storm straight at PostgreSQL as well.
	Baseline bool
	// BaselineConns sizes the baseline's pgxpool (default 4, the
	// server's DB_MAX_CONNS default).
	BaselineConns int
	// NewBaselineDB returns a fresh, empty database for the baseline and a
	// function that drops it.
	NewBaselineDB func(ctx context.Context) (url string, drop func(context.Context) error, err error)

	// Pooler: a PgBouncer stands between the servers and PostgreSQL; its
	// CPU is measured too.
	Pooler bool

	// WebhookWait bounds the wait, after the last phase, for the purchase
	// events the webhook receiver still misses (default 2m; with a
	// Target's Webhooks only).
	WebhookWait time.Duration

	// Log receives progress lines; nil discards them.
	Log io.Writer
}

func (o *Options) setDefaults() {
	if o.Users <= 0 {
		o.Users = 20000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 256
	}
	if o.StormConcurrency <= 0 {
		o.StormConcurrency = 128
	}
	if o.StormDuration <= 0 {
		o.StormDuration = 20 * time.Second
	}
	if o.HerdTimeout <= 0 {
		o.HerdTimeout = 3 * time.Minute
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.Pick == "" {
		o.Pick = phase.PickRandom
	}
	if o.BaselineConns <= 0 {
		o.BaselineConns = 4
	}
	if o.WebhookWait <= 0 {
		o.WebhookWait = 2 * time.Minute
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}
