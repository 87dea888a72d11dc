package loadgen

// TEMPORARY STUB, delete on merge: the real internal/loadgen/pgbouncer.go
// comes from the pooler branch with exactly these signatures.

import (
	"context"
	"errors"
	"io"
)

// PgBouncer is a running PgBouncer in front of one database.
type PgBouncer struct {
	URL string // clients' URL to the same database through pgbouncer
}

// StartPgBouncer is not built on this branch.
func StartPgBouncer(ctx context.Context, dbURL string, poolSize int, log io.Writer) (*PgBouncer, error) {
	return nil, errors.New("pgbouncer: not built on this branch (stub)")
}

// ServerEnv is the extra KEY=VALUE the server needs behind the pooler.
func (p *PgBouncer) ServerEnv() []string { return nil }

// Stop stops PgBouncer.
func (p *PgBouncer) Stop() error { return nil }
