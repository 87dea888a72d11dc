package sale

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/db"
)

// This file owns the transactions of checkout and purchase batches. A batch
// is one READ COMMITTED transaction whose statements are named sqlc queries,
// sent as one pgx pipeline: BEGIN, the queries and COMMIT reach PostgreSQL
// in one write, so a batch costs about one round trip and one commit.
//
// sqlc cannot put different queries into one pgx.Batch, so the body of a
// transaction is a function of a db.DBTX that runs twice: first against
// queueDBTX, which queues each generated query's SQL and arguments and
// returns nothing, then, once the batch is sent, against resultsDBTX, which
// hands each generated method the next result of the batch to scan with its
// own generated code. A body must therefore call the same queries in the
// same order whatever they return; it cannot branch on a result.

// Errors of a batch transaction that decide how its callers are answered.
var (
	// errNotStored: PostgreSQL rolled the transaction back (an error came
	// back before COMMIT's result, so COMMIT was skipped) or never got it.
	errNotStored = errors.New("batch rolled back, nothing stored")
)

// commitGrace is how long a batch may run past its earliest caller's
// deadline to report what PostgreSQL really did: at the deadline a cancel
// request goes out, and a statement it cancels rolls the transaction back;
// a COMMIT already executing finishes and is answered. Half of DB_TIMEOUT,
// and never so short that a healthy commit cannot make it.
func commitGrace(timeout time.Duration) time.Duration {
	return max(timeout/2, 100*time.Millisecond)
}

// inTx runs body as one pipelined READ COMMITTED transaction on a
// connection of pool, until deadline (plus a grace to learn the outcome of
// a COMMIT already sent). When the transaction failed before COMMIT took
// effect because its connection broke (PostgreSQL killed the backend, the
// connection went stale), it is retried once on another connection, so a
// single lost connection costs its callers nothing.
func inTx(pool *pgxpool.Pool, deadline time.Time, grace time.Duration, body func(db.DBTX) error) error {
	err := inTxOnce(pool, deadline, grace, body)
	if errors.Is(err, errNotStored) && brokenConnection(err) && time.Now().Before(deadline) {
		err = inTxOnce(pool, deadline, grace, body)
	}
	return err
}

func inTxOnce(pool *pgxpool.Pool, deadline time.Time, grace time.Duration, body func(db.DBTX) error) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("%w: acquire connection: %w", errNotStored, err)
	}
	keep := false
	defer func() {
		if !keep {
			// A connection in doubt (broken, cancelled, mid-transaction) is
			// closed, never handed to the next batch.
			closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = conn.Conn().Close(closeCtx)
			cancel()
		}
		conn.Release()
	}()

	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err := body(queueDBTX{b}); err != nil {
		return fmt.Errorf("%w: queue batch: %w", errNotStored, err)
	}
	b.Queue("COMMIT")

	// From here the whole transaction is on its way. The caller's deadline
	// only cancels the statement running at that moment; reading its
	// results is bounded by deadline+grace.
	readCtx, cancelRead := context.WithDeadline(context.Background(), deadline.Add(grace))
	defer cancelRead()
	cancelled := make(chan struct{})
	stopCanceller := context.AfterFunc(ctx, func() {
		defer close(cancelled)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			_ = conn.Conn().PgConn().CancelRequest(readCtx)
		}
	})

	br := conn.SendBatch(readCtx, b)
	stage := "BEGIN"
	_, err = br.Exec()
	if err == nil {
		stage = "statements"
		err = body(resultsDBTX{br})
	}
	committed := false
	if err == nil {
		stage = "COMMIT"
		var tag pgconn.CommandTag
		tag, err = br.Exec()
		// PostgreSQL answers COMMIT only once the commit is durable; a
		// transaction that had failed would answer ROLLBACK.
		committed = err == nil && tag.String() == "COMMIT"
		if err == nil && !committed {
			err = fmt.Errorf("COMMIT answered %q", tag.String())
		}
	}
	closeErr := br.Close()
	cancelSent := !stopCanceller()
	if cancelSent {
		<-cancelled
	}
	if committed {
		// Stored, in time or within the grace, whatever happens to the
		// connection next. One a late cancel request could still hit, or
		// left in any doubt, is not reused.
		keep = !cancelSent && closeErr == nil && conn.Conn().PgConn().TxStatus() == 'I'
		return nil
	}
	if err == nil {
		err = closeErr
	}
	return classify(stage, err)
}

// classify tells a transaction that surely did not commit from one whose
// outcome is unknown. PostgreSQL skips the rest of a pipeline after an
// error, so an error it reported for a statement before COMMIT means
// nothing was stored, and so does one it reported for COMMIT itself, unless
// it says the connection is going away (the commit may have happened just
// before: with synchronous replication PostgreSQL even says so). A failure
// pgx reports as safe to retry means nothing was sent. A connection that
// broke without an answer leaves the outcome unknown.
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

// brokenConnection reports whether err came from the connection rather than
// from the statements: only such a failure is worth a retry elsewhere.
func brokenConnection(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return goingAway(pgErr)
	}
	return !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && unreachable(err)
}

// queueDBTX queues every query on a batch instead of running it. The
// generated methods then see no rows and return zero values, which the
// body must ignore on this pass.
type queueDBTX struct{ b *pgx.Batch }

func (q queueDBTX) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	q.b.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

func (q queueDBTX) Query(_ context.Context, sql string, args ...any) (pgx.Rows, error) {
	q.b.Queue(sql, args...)
	return noRows{}, nil
}

func (q queueDBTX) QueryRow(_ context.Context, sql string, args ...any) pgx.Row {
	q.b.Queue(sql, args...)
	return noRows{}
}

// resultsDBTX hands the generated methods the batch's results in order;
// the SQL and arguments were already sent by queueDBTX.
type resultsDBTX struct{ br pgx.BatchResults }

func (r resultsDBTX) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return r.br.Exec()
}

func (r resultsDBTX) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return r.br.Query()
}

func (r resultsDBTX) QueryRow(context.Context, string, ...any) pgx.Row {
	return r.br.QueryRow()
}

// noRows is the empty result of a query that was only queued.
type noRows struct{}

func (noRows) Close()                                       {}
func (noRows) Err() error                                   { return nil }
func (noRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (noRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (noRows) Next() bool                                   { return false }
func (noRows) Scan(...any) error                            { return nil }
func (noRows) Values() ([]any, error)                       { return nil, nil }
func (noRows) RawValues() [][]byte                          { return nil }
func (noRows) Conn() *pgx.Conn                              { return nil }
func (noRows) TypeMap() *pgtype.Map                         { return nil }
