package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

// The errors a caller can act on; any other error is a bug or a broken
// rule. Each is wrapped with what was being done.
var (
	// ErrNotFound: the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: the database cannot be reached right now, or the
	// deadline passed first. Of a checkout or purchase batch it means
	// nothing was stored, unless it is ErrOutcomeUnknown.
	ErrUnavailable = errors.New("database unavailable")
	// ErrOutcomeUnknown is an ErrUnavailable whose transaction may have
	// committed: the connection broke after COMMIT was sent and before its
	// answer came back, or COMMIT's wait for the synchronous standby was
	// cut short (syncrep.go).
	ErrOutcomeUnknown = fmt.Errorf("%w: the outcome of COMMIT is unknown; the request may have been stored", ErrUnavailable)
	// ErrOverLimit: PostgreSQL refused a purchase past its buyer's cap
	// (buyers_within_limit); the whole batch was rolled back.
	ErrOverLimit = errors.New("a purchase would take its buyer past the per-user limit")
	// ErrOverlap: a new sale's window overlaps an existing sale (sales_no_overlap).
	ErrOverlap = errors.New("the sale window overlaps an existing sale")
)

// errNotStored: PostgreSQL rolled the batch's transaction back (an error
// came back before COMMIT's result, so COMMIT was skipped) or never got it.
var errNotStored = errors.New("batch rolled back, nothing stored")

// wrap adds what was being done to err and marks the errors callers act
// on: a missing row as ErrNotFound, an unreachable database as
// ErrUnavailable, the constraints that state a rule as theirs.
func wrap(err error, what string) error {
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	case errors.As(err, &pgErr) && pgErr.Code == "23514" && pgErr.ConstraintName == "buyers_within_limit":
		return fmt.Errorf("%s: %w: %w", what, ErrOverLimit, err)
	case errors.As(err, &pgErr) && pgErr.ConstraintName == "sales_no_overlap":
		return fmt.Errorf("%s: %w: %w", what, ErrOverlap, err)
	case unreachable(err):
		return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// unreachable reports errors that say the database cannot serve right now,
// rather than that a statement is wrong.
func unreachable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// connection exceptions, insufficient resources (too many
		// connections), operator intervention (shutdown, recovery), and a
		// server that takes no writes (a standby, a demoted primary): the
		// failover is not over, or the pool has yet to find the new primary.
		switch pgErr.Code[:2] {
		case "08", "53", "57":
			return true
		}
		return notWritable(pgErr)
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, puddle.ErrClosedPool)
}

// classify tells a batch that surely did not commit from one whose outcome
// is unknown. PostgreSQL skips the rest of a pipeline after an error, so an
// error it reported for a statement before COMMIT means nothing was stored,
// and so does one it reported for COMMIT itself, unless it says the
// connection is going away (the commit may have happened just before: with
// synchronous replication PostgreSQL even says so). A failure pgx reports
// as safe to retry means nothing was sent. A connection that broke without
// an answer leaves the outcome unknown.
func classify(stage string, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && stage == "COMMIT" && goingAway(pgErr):
	case errors.As(err, &pgErr) || pgconn.SafeToRetry(err):
		return fmt.Errorf("%w: %s: %w", errNotStored, stage, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrOutcomeUnknown, stage, err)
}

// goingAway reports errors that end the connection: connection exceptions
// (08) and operator intervention (57: terminated, shutting down).
func goingAway(pgErr *pgconn.PgError) bool {
	return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57") && pgErr.Code != "57014"
}

// notWritable reports a server refusing to write: read_only_sql_transaction
// (25006), what a hot standby, a demoted primary or one made read-only
// (default_transaction_read_only) answers, so its connections are no use to
// the write pool.
func notWritable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "25006"
}

// brokenConnection reports whether err came from the connection rather than
// from the statements: only such a failure is worth a retry elsewhere.
func brokenConnection(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return goingAway(pgErr) || notWritable(pgErr)
	}
	return !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && unreachable(err)
}
