package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/db"
)

// A batch is one READ COMMITTED transaction whose statements are generated
// queries sent as one pgx pipeline: BEGIN, the statements and COMMIT reach
// PostgreSQL in one write, so a batch costs about one round trip and one
// commit.
//
// sqlc cannot put different queries into one pgx.Batch, so each statement
// is a call of a generated method on a db.DBTX, made twice: first on a
// DBTX that only queues the query's SQL and arguments, then, once the
// batch is sent, on one that hands the method the query's own result to
// scan with its generated code.
//
// A stmt is one such call. It stores what it scans in variables of the
// caller, which hold the results once the batch has committed; on the
// queueing pass it gets zero values and must not act on them. The
// statements of a batch are a list fixed before anything is sent, so no
// statement can depend on another's result: what would need to is one
// statement (CTEs), as the queries are written.
type stmt func(tx db.DBTX) error

// commitGrace is how long a batch may run past its earliest caller's
// deadline to report what PostgreSQL really did: at the deadline a cancel
// request goes out, and a statement it cancels rolls the transaction back.
// A COMMIT already executing finishes, and is answered only when nothing
// was cut short: a cancel that hit its wait for a synchronous standby
// leaves it committed on this server alone (see commitWarnings). Half of
// the database timeout, and never so short that a healthy commit cannot
// make it.
func commitGrace(timeout time.Duration) time.Duration {
	return max(timeout/2, 100*time.Millisecond)
}

// inTx runs stmts as one pipelined READ COMMITTED transaction on a
// connection of the write pool, until deadline (plus a grace to learn the
// outcome of a COMMIT already sent). When the transaction failed before
// COMMIT took effect because its connection broke (PostgreSQL killed the
// backend, the connection went stale), it is retried once on another
// connection, so a single lost connection costs its callers nothing.
//
// A server that no longer takes writes (a demoted or fenced primary, a
// standby) serves none of the pool's connections: they are all dropped, so
// that the next ones are dialed to whichever host takes writes now
// (target_session_attrs=read-write).
func (s *Store) inTx(deadline time.Time, what string, stmts ...stmt) error {
	err := inTxOnce(s.pool, deadline, s.grace, stmts)
	if notWritable(err) {
		s.pool.Reset()
	}
	if errors.Is(err, errNotStored) && brokenConnection(err) && time.Now().Before(deadline) {
		err = inTxOnce(s.pool, deadline, s.grace, stmts)
	}
	return wrap(err, what)
}

func inTxOnce(pool *pgxpool.Pool, deadline time.Time, grace time.Duration, stmts []stmt) error {
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
	queue := queueDBTX{b}
	for _, st := range stmts {
		if err := st(queue); err != nil {
			return fmt.Errorf("%w: queue batch: %w", errNotStored, err)
		}
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
		results := resultsDBTX{br}
		for _, st := range stmts {
			if err = st(results); err != nil {
				break
			}
		}
	}
	committed := false
	var inDoubt error
	if err == nil {
		stage = "COMMIT"
		warned := commitWarnings(conn.Conn().PgConn())
		var tag pgconn.CommandTag
		tag, err = br.Exec()
		// PostgreSQL answers COMMIT only once the commit is durable (on
		// the synchronous standby too, when one is named); a transaction
		// that had failed would answer ROLLBACK.
		committed = err == nil && tag.String() == "COMMIT"
		if err == nil && !committed {
			err = fmt.Errorf("COMMIT answered %q", tag.String())
		}
		inDoubt = warnedSince(conn.Conn().PgConn(), warned)
	}
	closeErr := br.Close()
	cancelSent := !stopCanceller()
	if cancelSent {
		<-cancelled
	}
	if committed && inDoubt != nil {
		// Committed here, maybe not on the standby a failover would
		// promote: no answer of this batch may be given as true.
		return fmt.Errorf("%w: %s: %w", ErrOutcomeUnknown, stage, inDoubt)
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

// queueDBTX queues every query on a batch instead of running it. The
// generated methods then see no rows and return zero values, which a stmt
// must ignore on this pass.
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
