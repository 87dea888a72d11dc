package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/db"
)

// SaleByStart returns the sale starting at start, or ErrNotFound.
func (s *Store) SaleByStart(ctx context.Context, start time.Time) (Sale, error) {
	row, err := s.q.SaleGetByStart(ctx, s.pool, start)
	if err != nil {
		return Sale{}, wrap(err, "look up sale")
	}
	return saleFromRow(row), nil
}

// SaleCreate creates sale (its ID is ignored) with its partition of
// checkout_attempts, its items and all its units, in one transaction, and
// returns it with created set. When another server created a sale with
// the same start first, it returns created false and nothing else; a
// window overlapping another sale is ErrOverlap.
func (s *Store) SaleCreate(ctx context.Context, sale Sale) (_ Sale, created bool, _ error) {
	var made Sale
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.q.SaleCreationLock(ctx, tx); err != nil {
			return fmt.Errorf("take the sale creation lock: %w", err)
		}
		row, err := s.q.SaleInsert(ctx, tx, db.SaleInsertParams{
			StartsAt: sale.StartsAt, EndsAt: sale.EndsAt, UnitsTotal: sale.UnitsTotal, Items: sale.Items,
			PerUserLimit: sale.PerUserLimit, HoldTTL: sale.HoldTTL,
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // another server created it first
		}
		if err != nil {
			return fmt.Errorf("insert sale: %w", err)
		}
		// In the sale's transaction: no checkout sees the sale before its
		// partition. Attaching it lets checkouts of the current sale go on
		// (see migrations/00005); the sale is made ahead of its window.
		if _, err := s.q.CheckoutAttemptsPartitionCreate(ctx, tx, row.ID); err != nil {
			return fmt.Errorf("create the attempts partition of sale %d: %w", row.ID, err)
		}
		if err := s.q.ItemsInsertForSale(ctx, tx, row.ID); err != nil {
			return fmt.Errorf("insert items of sale %d: %w", row.ID, err)
		}
		if err := s.q.UnitsInsertForSale(ctx, tx, row.ID); err != nil {
			return fmt.Errorf("insert units of sale %d: %w", row.ID, err)
		}
		made, created = saleFromRow(row), true
		return nil
	})
	if err != nil {
		return Sale{}, false, wrap(err, "create sale starting "+sale.StartsAt.Format(time.RFC3339))
	}
	return made, created, nil
}

// Analyze gives the planner statistics that include the newest sale's
// units (see SaleTablesAnalyze).
func (s *Store) Analyze(ctx context.Context) error {
	return wrap(s.q.SaleTablesAnalyze(ctx, s.pool), "analyze sale tables")
}

// Now reads the database's clock, the one every server and the queries
// agree on.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	now, err := s.q.DatabaseNow(ctx, s.pool)
	return now, wrap(err, "read the database clock")
}

// CurrentSale returns the sale open now by the database's clock, or ErrNotFound.
func (s *Store) CurrentSale(ctx context.Context) (Sale, error) {
	r, err := s.q.SaleGetCurrent(ctx, s.read)
	if err != nil {
		return Sale{}, wrap(err, "current sale")
	}
	return saleFromRow(db.Sale(r)), nil // the view's columns are the table's
}

// SaleSummary returns sale id with its live counts, or ErrNotFound.
func (s *Store) SaleSummary(ctx context.Context, id int64) (Summary, error) {
	sale, err := s.q.SaleGetByID(ctx, s.read, id)
	if err != nil {
		return Summary{}, wrap(err, "get sale")
	}
	st, err := s.q.SaleStockGet(ctx, s.read, id)
	if err != nil {
		return Summary{}, wrap(err, "sale stock")
	}
	return Summary{
		Sale: saleFromRow(sale), UnitsSold: st.UnitsSold, UnitsHeld: st.UnitsHeld, UnitsAvailable: st.UnitsAvailable,
		Buyers: st.Buyers, MaxUnitsPerUser: st.MaxUnitsPerUser,
	}, nil
}

// Items lists up to limit items of a sale with ids greater than after.
func (s *Store) Items(ctx context.Context, saleID int64, after, limit int32) ([]ItemStock, error) {
	rows, err := s.q.ItemsListWithFreeUnits(ctx, s.read, db.ItemsListWithFreeUnitsParams{
		SaleID: saleID, AfterItemID: after, MaxItems: limit,
	})
	if err != nil {
		return nil, wrap(err, "list items")
	}
	out := make([]ItemStock, len(rows))
	for i, r := range rows {
		out[i] = itemStockFromRow(r)
	}
	return out, nil
}

// AvailableItems lists up to limit items of a sale with ids greater than
// after that have a free unit now.
func (s *Store) AvailableItems(ctx context.Context, saleID int64, after, limit int32) ([]ItemStock, error) {
	rows, err := s.q.ItemsListAvailableWithFreeUnits(ctx, s.read, db.ItemsListAvailableWithFreeUnitsParams{
		SaleID: saleID, AfterItemID: after, MaxItems: limit,
	})
	if err != nil {
		return nil, wrap(err, "list available items")
	}
	out := make([]ItemStock, len(rows))
	for i, r := range rows {
		out[i] = itemStockFromRow(db.ItemsListWithFreeUnitsRow(r)) // the two queries' columns are the same
	}
	return out, nil
}

func itemStockFromRow(r db.ItemsListWithFreeUnitsRow) ItemStock {
	return ItemStock{
		Item: Item{
			SaleID: r.SaleID, ID: r.ItemID, SKU: r.Sku, Name: r.Name, Description: r.Description,
			PriceCents: r.PriceCents, Currency: r.Currency, ImageURL: deref(r.ImageUrl),
		},
		FreeUnits: r.FreeUnits, HeldUnits: r.HeldUnits,
	}
}

// ItemCounts returns the free and held units of every item of a sale that
// has any, in item order; an item missing has neither.
func (s *Store) ItemCounts(ctx context.Context, saleID int64) ([]ItemCount, error) {
	rows, err := s.q.ItemCountsList(ctx, s.read, saleID)
	if err != nil {
		return nil, wrap(err, "count units by item")
	}
	out := make([]ItemCount, len(rows))
	for i, r := range rows {
		out[i] = ItemCount(r)
	}
	return out, nil
}

// NextSaleStart returns when the first sale starting at or after t
// begins, or ErrNotFound while there is none.
func (s *Store) NextSaleStart(ctx context.Context, t time.Time) (time.Time, error) {
	start, err := s.q.SaleNextStart(ctx, s.read, t)
	return start, wrap(err, "next sale's start")
}

// HoldHistory is what the metrics read of a sale's units besides its stock.
type HoldHistory struct {
	// ExpiredHolds are units whose hold expired without a purchase and
	// that no checkout has claimed again: back in the pool.
	ExpiredHolds int64
	// LastSold is when the last unit was sold; zero when none was.
	LastSold time.Time
}

// UnitsHoldHistory reads HoldHistory of sale saleID.
func (s *Store) UnitsHoldHistory(ctx context.Context, saleID int64) (HoldHistory, error) {
	r, err := s.q.UnitsHoldHistory(ctx, s.read, saleID)
	if err != nil {
		return HoldHistory{}, wrap(err, "read the units' hold history")
	}
	h := HoldHistory{ExpiredHolds: r.ExpiredHolds}
	if r.LastSoldEpoch > 0 {
		h.LastSold = time.Unix(0, int64(r.LastSoldEpoch*1e9))
	}
	return h, nil
}

// Item returns one item of a sale, or ErrNotFound.
func (s *Store) Item(ctx context.Context, saleID int64, itemID int32) (Item, error) {
	r, err := s.q.ItemGet(ctx, s.read, db.ItemGetParams{SaleID: saleID, ItemID: itemID})
	if err != nil {
		return Item{}, wrap(err, "get item")
	}
	return itemFromRow(r), nil
}

// ItemBySKU returns the item of a sale with the shop's sku, or ErrNotFound.
func (s *Store) ItemBySKU(ctx context.Context, saleID int64, sku string) (Item, error) {
	r, err := s.q.ItemGetBySku(ctx, s.read, db.ItemGetBySkuParams{SaleID: saleID, Sku: sku})
	if err != nil {
		return Item{}, wrap(err, "get item by sku")
	}
	return itemFromRow(r), nil
}

// IdempotencyKeysDeleteExpired deletes up to limit answers kept under
// expired idempotency keys and says how many it deleted.
func (s *Store) IdempotencyKeysDeleteExpired(ctx context.Context, limit int32) (int64, error) {
	n, err := s.q.IdempotencyKeysDeleteExpired(ctx, s.pool, limit)
	return n, wrap(err, "delete expired idempotency keys")
}

// AttemptsDropOld drops the checkout attempts of up to maxSales sales that
// ended, and whose last hold expired, more than retention ago, and returns
// their ids. It waits at most lockTimeout for its locks: dropping a
// partition locks checkout_attempts against every checkout meanwhile.
func (s *Store) AttemptsDropOld(ctx context.Context, retention time.Duration, maxSales int32, lockTimeout time.Duration) ([]int64, error) {
	var dropped []int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.q.LockTimeoutSetLocal(ctx, tx, lockTimeout.String()); err != nil {
			return fmt.Errorf("set lock_timeout: %w", err)
		}
		rows, err := s.q.CheckoutAttemptsDropOld(ctx, tx, db.CheckoutAttemptsDropOldParams{Retention: retention, MaxSales: maxSales})
		for _, r := range rows {
			dropped = append(dropped, r.ID)
		}
		return err
	})
	if err != nil {
		return nil, wrap(err, "drop old checkout attempts")
	}
	return dropped, nil
}

// ServerEncoding reads the database's server_encoding.
func ServerEncoding(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	enc, err := db.New().ServerEncodingGet(ctx, pool)
	return enc, wrap(err, "read server_encoding")
}
