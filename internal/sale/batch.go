package sale

import (
	"context"
	"fmt"

	"github.com/flashsale/flashsale/db"
)

// maxBatch bounds how many checkouts share one transaction: enough to
// amortise the commit under a storm, small enough that a batch holds its
// per-user locks for a millisecond or two.
const maxBatch = 64

// checkoutRequest is one checkout waiting for its batch.
type checkoutRequest struct {
	userID string
	itemID int64
	code   string
	done   chan checkoutResult // buffered: the batcher never blocks on it
}

type checkoutResult struct {
	row db.CheckoutBatchRow
	err error
}

// The batchers group concurrent checkouts into one call of the database's
// checkout_batch function, so that under load many attempts share one round
// trip and one commit (group commit), while every reply still waits for the
// commit of its own attempt. Nothing is decided here: the batch is just a
// list handed to PostgreSQL. A batcher takes whatever has queued while the
// previous batches ran, so at low load a batch is a single request and adds
// no delay. There is one batcher per pool connection.
func (s *Service) startBatchers(n int) {
	for range n {
		s.batchers.Add(1)
		go func() {
			defer s.batchers.Done()
			batch := make([]*checkoutRequest, 0, maxBatch)
			for {
				select {
				case r := <-s.queue:
					batch = append(batch[:0], r)
				case <-s.stop:
					return
				}
			fill:
				for len(batch) < maxBatch {
					select {
					case r := <-s.queue:
						batch = append(batch, r)
					default:
						break fill
					}
				}
				s.flush(batch)
			}
		}()
	}
}

func (s *Service) flush(batch []*checkoutRequest) {
	users := make([]string, len(batch))
	items := make([]int64, len(batch))
	codes := make([]string, len(batch))
	for i, r := range batch {
		users[i], items[i], codes[i] = r.userID, r.itemID, r.code
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	rows, err := s.q.CheckoutBatch(ctx, s.pool, db.CheckoutBatchParams{UserIds: users, ItemIds: items, Codes: codes})
	cancel()
	if err == nil && len(rows) != len(batch) {
		err = fmt.Errorf("checkout_batch answered %d of %d requests", len(rows), len(batch))
	}
	if err != nil {
		for _, r := range batch {
			r.done <- checkoutResult{err: err}
		}
		return
	}
	for _, row := range rows {
		batch[row.Ord-1].done <- checkoutResult{row: row}
	}
}

// checkoutBatched queues one checkout and waits for its batch to commit.
func (s *Service) checkoutBatched(ctx context.Context, userID string, itemID int64, code string) (db.CheckoutBatchRow, error) {
	r := &checkoutRequest{userID: userID, itemID: itemID, code: code, done: make(chan checkoutResult, 1)}
	select {
	case s.queue <- r:
	case <-ctx.Done():
		return db.CheckoutBatchRow{}, ctx.Err()
	}
	select {
	case res := <-r.done:
		return res.row, res.err
	case <-ctx.Done():
		return db.CheckoutBatchRow{}, ctx.Err()
	}
}

// Close stops the batchers. Call it after the HTTP server has stopped, so
// no checkout is waiting for one.
func (s *Service) Close() {
	s.closeOnce.Do(func() { close(s.stop) })
	s.batchers.Wait()
}
