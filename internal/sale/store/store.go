// Package store is the one door to the generated queries (package db): it
// runs them on the service's pools, owns the pipelined transaction of a
// batch (tx.go), tells PostgreSQL's errors apart (errors.go), and hands the
// rest of the code plain Go types. Nothing above it sees a db or pgconn
// type. It decides nothing: the rules are in the SQL (queries/) and in the
// schema's constraints, and which query to send is package sale's call.
package store

import (
	"cmp"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/db"
)

// Store runs the queries of one service.
type Store struct {
	q *db.Queries
	// pool serves checkouts, purchases, sale creation and maintenance.
	pool *pgxpool.Pool
	// read serves the reads that decide nothing (sales, items, counts, a
	// user's purchases, readiness), so that however many clients read, the
	// batches never wait for a connection behind them.
	read *pgxpool.Pool
	// events serves the publisher's transaction and the deliveries' reads
	// of events (River's own pool in cmd/server), so that neither takes a
	// connection from the batches or the API's reads.
	events *pgxpool.Pool
	// grace is how long a batch may run past its deadline to learn what
	// its COMMIT did (see commitGrace).
	grace time.Duration
}

// New returns a Store on pool, with reads on read and the events' work on
// events (each pool when nil). timeout is the bound on each database call,
// from which a batch's commit grace is derived.
func New(pool, read, events *pgxpool.Pool, timeout time.Duration) *Store {
	return &Store{q: db.New(), pool: pool, read: cmp.Or(read, pool), events: cmp.Or(events, pool), grace: commitGrace(timeout)}
}

// Conns is how many connections the write pool may open: one batch worker
// per connection keeps every connection busy under load.
func (s *Store) Conns() int { return int(s.pool.Config().MaxConns) }

// ReadPool is the pool of the reads, for readiness checks.
func (s *Store) ReadPool() *pgxpool.Pool { return s.read }
