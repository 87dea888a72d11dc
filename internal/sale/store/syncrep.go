package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flashsale/flashsale/db"
)

// Under synchronous replication (docs/operating.md, Failover) PostgreSQL
// answers COMMIT once the standby has the commit, so an answered batch
// survives the loss of the primary. One path breaks that: a cancel request
// reaching a COMMIT that waits for the standby ends the wait, and the
// commit, already done on the primary, is answered "COMMIT" after
// "WARNING: canceling wait for synchronous replication due to user
// request ... the transaction has already committed locally, but might
// not have been replicated to the standby". A batch sends that cancel at
// its deadline (tx.go).
//
// Two ways out were weighed. Never cancelling a running COMMIT cannot be
// done exactly: BEGIN, the statements and COMMIT go out in one pipeline,
// and the cancel request, sent on another connection, reaches whichever
// statement runs when it lands, which the client cannot know. Nor would it
// help while the standby stalls: a backend waiting for the standby holds
// its transaction's locks (the users' advisory locks, the claimed units)
// and ignores its client going away, so every batch, and every connection
// dialed to replace an abandoned one, would pile up behind it until the
// standby came back. So the cancel stays, which frees the backend and its
// locks at DB_TIMEOUT, and the warning, PostgreSQL's own statement that the
// commit may exist on the primary alone, turns the batch's answers into
// ErrOutcomeUnknown (503 "may have been stored") for every request of the
// batch. The same holds for any warning that arrives with COMMIT (an
// operator's pg_cancel_backend, a backend told to terminate while waiting):
// a COMMIT of this service raises no other, so matching on the severity
// alone is safe and does not depend on the server's lc_messages.
//
// A later transaction sees the rows of such a commit at once, on the
// primary. One that writes commits after it in the WAL, so when its own
// COMMIT is answered the standby has both. One that writes nothing (a
// replayed idempotency key, a repeated purchase) would not wait at all,
// and could answer from a commit the standby never got: waitForStandby
// makes such a batch's transaction write WAL, so its COMMIT waits. It is
// the first statement of the batches that may write nothing (checkouts
// that may all be replays, purchases that may all be repeats); the
// sold-out short way answers only requests whose attempt it inserts, so
// its COMMIT waits anyway and it goes without, sparing the storm a
// statement per batch.

// warningsKey keys, in a connection's CustomData, how many WARNING notices
// it has received.
const warningsKey = "flashsale.warnings"

// lastWarningKey keys the last of them, for the error that reports it.
const lastWarningKey = "flashsale.last_warning"

// WatchCommits makes connections made with cfg count the warnings their
// server sends, which a batch needs to tell a COMMIT cut short from a
// whole one (see above). Every pool that runs batches must be configured
// with it (database.Open does).
func WatchCommits(cfg *pgconn.Config) {
	next := cfg.OnNotice
	cfg.OnNotice = func(c *pgconn.PgConn, n *pgconn.Notice) {
		// Called on the goroutine reading the connection, which is the
		// batch's own while it reads its results.
		if n.SeverityUnlocalized == "WARNING" || n.SeverityUnlocalized == "" && n.Severity == "WARNING" {
			data := c.CustomData()
			count, _ := data[warningsKey].(int)
			data[warningsKey] = count + 1
			data[lastWarningKey] = n
		}
		if next != nil {
			next(c, n)
		}
	}
}

// commitWarnings is how many warnings c has received so far.
func commitWarnings(c *pgconn.PgConn) int {
	n, _ := c.CustomData()[warningsKey].(int)
	return n
}

// errCommitWarned: PostgreSQL warned while answering COMMIT.
var errCommitWarned = errors.New("PostgreSQL warned while committing; the commit may not be on the synchronous standby")

// warnedSince reports the warning c received after it had received
// before, or nil.
func warnedSince(c *pgconn.PgConn, before int) error {
	if commitWarnings(c) == before {
		return nil
	}
	if n, ok := c.CustomData()[lastWarningKey].(*pgconn.Notice); ok {
		return fmt.Errorf("%w: %s: %s", errCommitWarned, n.Message, n.Detail)
	}
	return errCommitWarned
}

// waitForStandby is the first statement of a batch that may write
// nothing (see above).
func waitForStandby(tx db.DBTX) error {
	return db.New().CommitWaitsForStandby(context.Background(), tx)
}
