package database

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A pool dials a new connection whenever a request finds none idle, so
// while the database is away (a failover, a restart) every failed request
// used to dial again: hundreds of dials a second at the server coming back.
// dialGate, installed on each pool by Open, bounds that: at most
// maxDialing dials at a time while connecting works, and after a failed
// one, no dial until a backoff has passed (doubling from minDialBackoff to
// maxDialBackoff), then one at a time until one succeeds. A request that
// would dial meanwhile fails at once with the last dial's error, which the
// store reads as unavailable (503). It only paces connecting and decides
// nothing about a sale.
type dialGate struct {
	mu       sync.Mutex
	dialing  int // dials under way
	failures int // consecutive failed dials
	retryAt  time.Time
	lastErr  error
	// changed is closed, and replaced, whenever a dial ends: a request
	// waiting for its turn to dial then looks again.
	changed chan struct{}
	// readOnly holds the connections a write was refused on (*pgx.Conn).
	readOnly sync.Map
}

const (
	maxDialing     = 4
	minDialBackoff = 50 * time.Millisecond
	maxDialBackoff = 500 * time.Millisecond
)

// errDialBackoff: the pool does not dial now because its last dial failed.
var errDialBackoff = errors.New("not connecting to the database now: its last connection attempt failed")

func newDialGate() *dialGate { return &dialGate{changed: make(chan struct{})} }

// beforeConnect is the pool's BeforeConnect: it returns once this dial may
// go ahead, or an error that fails it without dialing.
func (g *dialGate) beforeConnect(ctx context.Context, _ *pgx.ConnConfig) error {
	for {
		g.mu.Lock()
		switch {
		case g.failures > 0 && (g.dialing > 0 || time.Now().Before(g.retryAt)):
			err := fmt.Errorf("%w (next attempt after %s): %w",
				errDialBackoff, g.retryAt.Format(time.RFC3339Nano), g.lastErr)
			g.mu.Unlock()
			return err
		case g.dialing < maxDialing:
			g.dialing++
			g.mu.Unlock()
			return nil
		}
		changed := g.changed
		g.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for a turn to connect: %w", ctx.Err())
		}
	}
}

// TraceConnectStart and TraceConnectEnd make the gate the pool's
// pgx.ConnectTracer: every dial that beforeConnect let through ends here.
func (g *dialGate) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	return ctx
}

func (g *dialGate) TraceConnectEnd(_ context.Context, data pgx.TraceConnectEndData) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dialing--
	if data.Err == nil {
		g.failures, g.lastErr = 0, nil
	} else {
		g.failures++
		g.lastErr = data.Err
		g.retryAt = time.Now().Add(min(minDialBackoff<<min(g.failures-1, 10), maxDialBackoff))
	}
	close(g.changed)
	g.changed = make(chan struct{})
}

// A pgx.ConnConfig's Tracer must be a QueryTracer. The gate watches the
// queries for one error: a server that no longer takes writes (25006, a
// primary demoted by a failover or a standby) still answers, so nothing
// else closes its connections, and a pool whose user does not reset it
// itself (River's: internal/webhook) would fail on them for as long as
// they live. Such a connection is destroyed when released (afterRelease),
// and the next one is dialed to whichever host takes writes now
// (target_session_attrs=read-write).
func (g *dialGate) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (g *dialGate) TraceQueryEnd(_ context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	var pgErr *pgconn.PgError
	if errors.As(data.Err, &pgErr) && pgErr.Code == "25006" { // read_only_sql_transaction
		g.readOnly.Store(conn, true)
	}
}

// afterRelease is the pool's AfterRelease: false destroys the connection.
func (g *dialGate) afterRelease(conn *pgx.Conn) bool {
	_, readOnly := g.readOnly.LoadAndDelete(conn)
	return !readOnly
}
