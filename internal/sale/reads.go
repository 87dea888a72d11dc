package sale

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/sale/store"
)

// The reads decide nothing and go to the read pool (WithReadPool).

// Current returns the sale open now by the database's clock.
func (s *Service) Current(ctx context.Context) (Sale, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	sale, err := s.store.CurrentSale(ctx)
	return sale, notFound(err, ErrNoActiveSale)
}

// Ready reports why this instance cannot serve, or nil: the database must
// answer with every migration applied, the write pool's server must take
// writes (during a failover it may be a standby not yet promoted, or the
// old primary), and, while sales are generated, a sale must be open (with
// only defined sales, the gaps between them are normal).
func (s *Service) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := database.Ready(ctx, s.store.ReadPool()); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := s.store.Writable(ctx); err != nil {
		return err
	}
	if s.settings.NoGeneratedSales {
		return nil
	}
	_, err := s.Current(ctx)
	return err
}

// Summary returns sale id with its live counts.
func (s *Service) Summary(ctx context.Context, id int64) (Summary, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	sum, err := s.store.SaleSummary(ctx, id)
	return sum, notFound(err, ErrSaleNotFound)
}

// Items lists up to limit items of a sale with ids greater than after.
func (s *Service) Items(ctx context.Context, saleID int64, after, limit int32) ([]ItemStock, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	items, err := s.store.Items(ctx, saleID, after, limit)
	return items, unavailable(err)
}

// AvailableItems lists up to limit items of a sale with ids greater than
// after that have a free unit now.
func (s *Service) AvailableItems(ctx context.Context, saleID int64, after, limit int32) ([]ItemStock, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	items, err := s.store.AvailableItems(ctx, saleID, after, limit)
	return items, unavailable(err)
}

// ItemCounts returns the free and held units of every item of a sale that
// has any, in item order: an item missing has neither.
func (s *Service) ItemCounts(ctx context.Context, saleID int64) ([]ItemCount, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	counts, err := s.store.ItemCounts(ctx, saleID)
	return counts, unavailable(err)
}

// NextSaleStart returns when the first sale starting at or after t begins,
// and false while none exists yet (the scheduler makes the next generated
// sale ahead of its start; a shop may define one or not).
func (s *Service) NextSaleStart(ctx context.Context, t time.Time) (time.Time, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start, err := s.store.NextSaleStart(ctx, t)
	if errors.Is(err, store.ErrNotFound) {
		return time.Time{}, false, nil
	}
	return start, err == nil, unavailable(err)
}

// Item returns one item of a sale.
func (s *Service) Item(ctx context.Context, saleID int64, itemID int32) (Item, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	item, err := s.store.Item(ctx, saleID, itemID)
	return item, notFound(err, ErrItemNotFound)
}

// HoldHistory is store.HoldHistory: expired holds back in the pool and the
// time of the last sale of a unit.
type HoldHistory = store.HoldHistory

// HoldHistory reads the units of sale id for the metrics.
func (s *Service) HoldHistory(ctx context.Context, id int64) (HoldHistory, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	h, err := s.store.UnitsHoldHistory(ctx, id)
	return h, unavailable(err)
}
