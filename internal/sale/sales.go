package sale

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flashsale/flashsale/internal/sale/store"
)

// WindowStart is the start of the window of length d that contains t:
// windows are aligned to their duration (a 1h sale runs HH:00 to HH+1:00 UTC).
func WindowStart(t time.Time, d time.Duration) time.Time {
	return t.UTC().Truncate(d)
}

// EnsureSales makes sure the sale containing now and the one after it exist.
func (s *Service) EnsureSales(ctx context.Context, now time.Time) error {
	if s.settings.NoGeneratedSales {
		return nil
	}
	start := WindowStart(now, s.settings.Duration)
	for _, st := range []time.Time{start, start.Add(s.settings.Duration)} {
		_, err := s.EnsureSale(ctx, st)
		if errors.Is(err, ErrSaleOverlap) {
			// The sales that exist stand; this window is skipped.
			s.log.Error("sale window not created", "err", err)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ErrSaleOverlap: a window of the configured length would overlap a sale
// created earlier, with another SALE_DURATION (sales_no_overlap).
var ErrSaleOverlap = errors.New("the sale window overlaps an existing sale; was SALE_DURATION changed? " +
	"Existing sales are kept; windows of the new length that overlap them are skipped")

// saleCreateTimeout bounds making a sale beyond the usual database timeout:
// 10,000 units take well under a second.
const saleCreateTimeout = 30 * time.Second

// EnsureSale creates the sale starting at start, with its items and all its
// units, in one transaction, unless it exists. Safe to call from many servers
// at once: the unique start makes exactly one of them create it.
func (s *Service) EnsureSale(ctx context.Context, start time.Time) (created bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout+saleCreateTimeout)
	defer cancel()
	// The common case (it exists) costs one indexed read. Ids are not
	// consecutive: servers racing to create a sale each draw an identity
	// value, and only the winner's row stays.
	_, err = s.store.SaleByStart(ctx, start)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return false, unavailable(err)
	}
	made, created, err := s.store.SaleCreate(ctx, Sale{
		StartsAt:     start,
		EndsAt:       start.Add(s.settings.Duration),
		UnitsTotal:   int32(s.settings.Units),
		Items:        int32(s.settings.Items),
		PerUserLimit: int32(s.settings.PerUserLimit),
		HoldTTL:      s.settings.HoldTTL,
	})
	switch {
	case errors.Is(err, store.ErrOverlap):
		return false, fmt.Errorf("%w (window %s to %s)", ErrSaleOverlap,
			start.Format(time.RFC3339), start.Add(s.settings.Duration).Format(time.RFC3339))
	case err != nil:
		return false, unavailable(err)
	case !created:
		return false, nil // another server created it first
	}
	s.log.Info("sale created", "sale_id", made.ID, "starts_at", made.StartsAt, "ends_at", made.EndsAt,
		"units", made.UnitsTotal, "items", made.Items)
	// Outside the creating transaction, so its lock does not hold up that
	// commit.
	return true, s.store.Analyze(ctx)
}

// WaitForCurrentSale makes sure the current and the next sale exist,
// retrying every second until it succeeds or ctx ends, then that the
// planner has statistics. A server calls it before it takes requests: a
// checkout answered before the sale's units are in would be refused with
// no_active_sale while a sale window is open, and one planned without
// statistics walks the whole sale's free units.
func (s *Service) WaitForCurrentSale(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		err := s.ensureSalesNow(ctx)
		if err == nil {
			// The tables may lack statistics even when no sale was just
			// created: a restored database, or a sale whose server stopped
			// before analyzing it.
			if err := s.store.Analyze(ctx); err != nil {
				s.log.Warn("analyze at start-up", "err", err)
			}
			return nil
		}
		s.log.Warn("ensure sales before serving", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the current sale: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// ensureSalesNow is EnsureSales by the database's clock, the one every
// server and the queries agree on.
func (s *Service) ensureSalesNow(ctx context.Context) error {
	qctx, cancel := context.WithTimeout(ctx, s.timeout)
	now, err := s.store.Now(qctx)
	cancel()
	if err != nil {
		return err
	}
	return s.EnsureSales(ctx, now)
}
