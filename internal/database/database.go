// Package database opens the connection pool and applies the migrations.
package database

import (
	"context"
	"errors"
	"fmt"
	"hash/crc64"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/flashsale/flashsale/internal/sale/store"
	"github.com/flashsale/flashsale/migrations"
)

// Pooler names what stands between the server and PostgreSQL.
type Pooler string

const (
	// PoolerNone: the server's connections are PostgreSQL sessions of its
	// own (directly, or through a pooler in session mode).
	PoolerNone Pooler = "none"
	// PoolerTransaction: a pooler that lends a PostgreSQL session for one
	// transaction at a time (PgBouncer pool_mode=transaction), so nothing
	// may outlive a transaction: no named prepared statements, no startup
	// parameters the pooler does not know, no session advisory locks.
	PoolerTransaction Pooler = "transaction"
)

// Poolers lists the values DB_POOLER accepts.
var Poolers = []Pooler{PoolerNone, PoolerTransaction}

// Option changes how Open connects.
type Option func(*options)

type options struct{ pooler Pooler }

// Behind says what stands between the pool and PostgreSQL; without it,
// Open assumes PoolerNone.
func Behind(p Pooler) Option { return func(o *options) { o.pooler = p } }

// Open creates a pool of at most maxConns connections. Connecting is bounded
// by connectTimeout so that a vanished database shows up as a fast error
// rather than a hang.
func Open(ctx context.Context, url string, maxConns int32, connectTimeout time.Duration, opts ...Option) (*pgxpool.Pool, error) {
	o := options{pooler: PoolerNone}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	cfg.MaxConns = maxConns
	cfg.ConnConfig.ConnectTimeout = connectTimeout
	switch o.pooler {
	case PoolerNone:
		// A batch whose answer the service stopped waiting for closes its
		// connection; PostgreSQL then notices within a second, even in a
		// lock wait, and rolls the transaction back instead of committing
		// it later.
		cfg.ConnConfig.RuntimeParams["client_connection_check_interval"] = "1s"
	case PoolerTransaction:
		// PgBouncer refuses startup parameters it does not track, so
		// client_connection_check_interval is the pooler's connect_query.
		// Named prepared statements do not survive a transaction pooler
		// (1.18 cannot track them): cache-describe sends each statement
		// unnamed, still in one round trip with values typed by PostgreSQL.
		// The modes compared: docs/operating.md, under PgBouncer. A mode
		// named in the URL (default_query_exec_mode) wins, for a pooler
		// that tracks prepared statements.
		if !strings.Contains(url, "default_query_exec_mode") {
			cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
		}
	default:
		return nil, fmt.Errorf("unknown pooler %q (want one of %v)", o.pooler, Poolers)
	}
	// Broken connections are found and replaced between requests, not by them.
	cfg.HealthCheckPeriod = 5 * time.Second
	// A batch must see the warning of a COMMIT whose wait for the
	// synchronous standby was cut short (store/syncrep.go).
	store.WatchCommits(&cfg.ConnConfig.Config)
	// Connecting is paced while the database is away (dialgate.go).
	if cfg.ConnConfig.Tracer != nil {
		return nil, errors.New("database.Open: the connection config already has a tracer")
	}
	gate := newDialGate()
	cfg.BeforeConnect = gate.beforeConnect
	cfg.ConnConfig.Tracer = gate
	cfg.AfterRelease = gate.afterRelease
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	return pool, nil
}

// CheckServer refuses a database the service cannot run on correctly:
// only UTF-8 stores every user id the API accepts, and a batch holding one
// that the encoding cannot store would fail for every request in it.
func CheckServer(ctx context.Context, pool *pgxpool.Pool) error {
	enc, err := store.ServerEncoding(ctx, pool)
	if err != nil {
		return err
	}
	if enc != "UTF8" {
		return fmt.Errorf("the database's encoding is %s; flashsale needs UTF8 (CREATE DATABASE ... ENCODING 'UTF8')", enc)
	}
	return nil
}

// Migrate applies every pending migration. Several servers may start at once:
// goose's session locker (a PostgreSQL advisory lock) lets one migrate while
// the others wait. That lock lives as long as a PostgreSQL session, so pool
// must not go through a transaction pooler: give such servers a direct
// connection for this (DATABASE_MIGRATION_URL), and keep the one lock for
// every migrator (a table lock beside it would not exclude a server or
// operator taking the advisory lock).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := Up(ctx, pool)
	return err
}

// Pending reports whether migrations remain to apply (used by readiness).
func Pending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	p, closeDB, err := provider(pool)
	if err != nil {
		return false, err
	}
	defer closeDB()
	pending, err := p.HasPending(ctx)
	if err != nil {
		return false, fmt.Errorf("check migrations: %w", err)
	}
	return pending, nil
}

// lockID is fixed per project so that every server contends for one lock.
var lockID = int64(crc64.Checksum([]byte("flashsale migrations"), crc64.MakeTable(crc64.ECMA)) >> 1)

func provider(pool *pgxpool.Pool) (*goose.Provider, func(), error) {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID), lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, nil, fmt.Errorf("create migration locker: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS, goose.WithSessionLocker(locker),
		goose.WithGoMigrations(migrations.Go()...))
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("create migration provider: %w", err), sqlDB.Close())
	}
	return p, func() { _ = sqlDB.Close() }, nil
}

// Ready reports why the database cannot serve yet, or nil: it must answer
// and have every migration applied.
func Ready(ctx context.Context, pool *pgxpool.Pool) error {
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	pending, err := Pending(ctx, pool)
	if err != nil {
		return err
	}
	if pending {
		return errors.New("migrations pending")
	}
	return nil
}

// ReplaceDatabase returns connURL naming database name instead of old, for
// URL and keyword/value connection strings alike (tests and the benchmark
// create databases beside the one they were given).
func ReplaceDatabase(connURL, old, name string) string {
	if u, err := url.Parse(connURL); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		return u.String()
	}
	if old != "" && strings.Contains(connURL, "dbname="+old) {
		return strings.Replace(connURL, "dbname="+old, "dbname="+name, 1)
	}
	return connURL + " dbname=" + name
}
