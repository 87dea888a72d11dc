package sale

import (
	"context"
	"time"
)

// RunScheduler keeps the current and the next sale in existence, and does
// the database's upkeep (expired idempotency keys, old attempts), until ctx
// ends. It checks several times per window, so the next sale exists well
// before its boundary even if one check fails. Every server runs it: each
// step is safe to run from many at once.
func (s *Service) RunScheduler(ctx context.Context) {
	every := min(s.settings.Duration/4, 30*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.ensureSalesNow(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("ensure sales", "err", err)
		}
		if err := s.DeleteExpiredIdempotencyKeys(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("delete expired idempotency keys", "err", err)
		}
		if s.settings.AttemptsRetention > 0 {
			if _, err := s.DropOldAttempts(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("drop old checkout attempts", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// keysPerDelete bounds one delete of expired idempotency keys: a short
// transaction, however many expired since the last run.
const keysPerDelete = 5000

// DeleteExpiredIdempotencyKeys removes the answers kept under idempotency
// keys that have expired. Any server may run it at any time; SKIP LOCKED
// keeps two from deleting the same rows.
func (s *Service) DeleteExpiredIdempotencyKeys(ctx context.Context) error {
	for {
		qctx, cancel := context.WithTimeout(ctx, s.timeout)
		n, err := s.store.IdempotencyKeysDeleteExpired(qctx, keysPerDelete)
		cancel()
		if err != nil {
			return err
		}
		if n < keysPerDelete {
			return nil
		}
	}
}

// Dropping a sale's attempts locks checkout_attempts against every
// checkout for as long as it waits for the lock and then drops: the wait is
// bounded by attemptsDropLockTimeout (a run that gives up is retried by the
// next), and each transaction drops at most salesPerDrop sales.
const (
	attemptsDropLockTimeout = 50 * time.Millisecond
	salesPerDrop            = 10
)

// DropOldAttempts drops the checkout attempts of the sales that ended, and
// whose last hold expired, more than AttemptsRetention ago (one partition
// each), and returns their ids. It does nothing when the setting is zero.
// Any server may run it at any time: two never drop the same sale.
func (s *Service) DropOldAttempts(ctx context.Context) ([]int64, error) {
	if s.settings.AttemptsRetention <= 0 {
		return nil, nil
	}
	var all []int64
	for {
		qctx, cancel := context.WithTimeout(ctx, s.timeout)
		dropped, err := s.store.AttemptsDropOld(qctx, s.settings.AttemptsRetention, salesPerDrop, attemptsDropLockTimeout)
		cancel()
		if err != nil {
			return all, err
		}
		if len(dropped) > 0 {
			s.log.Info("checkout attempts dropped", "sale_ids", dropped, "retention", s.settings.AttemptsRetention.String())
		}
		all = append(all, dropped...)
		if len(dropped) < salesPerDrop {
			return all, nil
		}
	}
}
