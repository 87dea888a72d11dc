package sale

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flashsale/flashsale/db"
	"github.com/flashsale/flashsale/internal/database"
)

// Sale is one sale window and the settings it was created with. None of it
// changes after creation.
type Sale struct {
	ID           int64
	StartsAt     time.Time
	EndsAt       time.Time
	UnitsTotal   int32
	Items        int32
	PerUserLimit int32
	HoldTTL      time.Duration
}

// Summary is a sale with its live counts (the sale_stock view).
type Summary struct {
	Sale
	UnitsSold       int64
	UnitsHeld       int64
	UnitsAvailable  int64
	Buyers          int64
	MaxUnitsPerUser int64
}

func saleFromRow(r db.Sale) Sale {
	return Sale{
		ID: r.ID, StartsAt: r.StartsAt, EndsAt: r.EndsAt, UnitsTotal: r.UnitsTotal, Items: r.Items,
		PerUserLimit: r.PerUserLimit, HoldTTL: time.Duration(r.HoldTtl.Microseconds) * time.Microsecond,
	}
}

// WindowStart is the start of the window of length d that contains t:
// windows are aligned to their duration (a 1h sale runs HH:00 to HH+1:00 UTC).
func WindowStart(t time.Time, d time.Duration) time.Time {
	return t.UTC().Truncate(d)
}

// EnsureSales makes sure the sale containing now and the one after it exist.
func (s *Service) EnsureSales(ctx context.Context, now time.Time) error {
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

// EnsureSale creates the sale starting at start, with its items and all its
// units, in one transaction, unless it exists. Safe to call from many servers
// at once: the unique start makes exactly one of them create it.
func (s *Service) EnsureSale(ctx context.Context, start time.Time) (created bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout+30*time.Second) // 10,000 units take well under a second
	defer cancel()
	// The common case (it exists) costs one indexed read, and one catalog
	// lookup for its partition of checkout_attempts (made with it, unless a
	// server from before partitions made the sale). Ids are not
	// consecutive: servers racing to create a sale each draw an identity
	// value, and only the winner's row stays.
	if row, err := s.q.SaleGetByStart(ctx, s.pool, start); err == nil {
		if _, err := s.q.CheckoutAttemptsPartitionCreate(ctx, s.pool, row.ID); err != nil {
			return false, interpret(err, fmt.Sprintf("create the attempts partition of sale %d", row.ID), nil)
		}
		return false, nil
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return false, interpret(err, "look up sale", nil)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		row, err := s.q.SaleInsert(ctx, tx, db.SaleInsertParams{
			StartsAt:       start,
			EndsAt:         start.Add(s.settings.Duration),
			UnitsTotal:     int32(s.settings.Units),
			Items:          int32(s.settings.Items),
			PerUserLimit:   int32(s.settings.PerUserLimit),
			HoldTtlSeconds: s.settings.HoldTTL.Seconds(),
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // another server created it first
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.ConstraintName == "sales_no_overlap" {
			return fmt.Errorf("%w (window %s to %s)", ErrSaleOverlap,
				start.Format(time.RFC3339), start.Add(s.settings.Duration).Format(time.RFC3339))
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
		created = true
		s.log.Info("sale created", "sale_id", row.ID, "starts_at", row.StartsAt, "ends_at", row.EndsAt,
			"units", row.UnitsTotal, "items", row.Items)
		return nil
	})
	if errors.Is(err, ErrSaleOverlap) {
		return false, err
	}
	if err != nil {
		return false, interpret(err, "create sale starting "+start.Format(time.RFC3339), nil)
	}
	if created {
		if err := s.analyze(ctx); err != nil {
			return true, err
		}
	}
	return created, nil
}

// analyze gives the planner statistics that include the newest sale's
// units (see SaleTablesAnalyze). Outside the creating transaction, so its
// lock does not hold up that commit.
func (s *Service) analyze(ctx context.Context) error {
	if err := s.q.SaleTablesAnalyze(ctx, s.pool); err != nil {
		return interpret(err, "analyze sale tables", nil)
	}
	return nil
}

// RunScheduler keeps the current and the next sale in existence until ctx
// ends. It checks several times per window, so the next sale exists well
// before its boundary even if one check fails.
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
		n, err := s.q.IdempotencyKeysDeleteExpired(qctx, s.pool, keysPerDelete)
		cancel()
		if err != nil {
			return interpret(err, "delete expired idempotency keys", nil)
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
		var dropped []int64
		qctx, cancel := context.WithTimeout(ctx, s.timeout)
		err := pgx.BeginFunc(qctx, s.pool, func(tx pgx.Tx) error {
			if err := s.q.LockTimeoutSetLocal(qctx, tx, attemptsDropLockTimeout.String()); err != nil {
				return fmt.Errorf("set lock_timeout: %w", err)
			}
			rows, err := s.q.CheckoutAttemptsDropOld(qctx, tx, db.CheckoutAttemptsDropOldParams{
				RetentionSeconds: s.settings.AttemptsRetention.Seconds(), MaxSales: salesPerDrop,
			})
			for _, r := range rows {
				dropped = append(dropped, r.ID)
			}
			return err
		})
		cancel()
		if err != nil {
			return all, interpret(err, "drop old checkout attempts", nil)
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
			if err := s.analyze(ctx); err != nil {
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
	now, err := s.q.DatabaseNow(qctx, s.pool)
	cancel()
	if err != nil {
		return interpret(err, "read the database clock", nil)
	}
	return s.EnsureSales(ctx, now)
}

// Current returns the sale open now by the database's clock.
func (s *Service) Current(ctx context.Context) (Sale, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	row, err := s.q.SaleGetCurrent(ctx, s.read)
	if err != nil {
		return Sale{}, interpret(err, "current sale", ErrNoActiveSale)
	}
	return saleFromRow(row), nil
}

// Ready reports why this instance cannot serve, or nil: the database must
// answer with every migration applied, and a sale must be open.
func (s *Service) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := database.Ready(ctx, s.read); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	_, err := s.Current(ctx)
	return err
}

// Summary returns sale id with its live counts.
func (s *Service) Summary(ctx context.Context, id int64) (Summary, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	sale, err := s.q.SaleGetByID(ctx, s.read, id)
	if err != nil {
		return Summary{}, interpret(err, "get sale", ErrSaleNotFound)
	}
	st, err := s.q.SaleStockGet(ctx, s.read, id)
	if err != nil {
		return Summary{}, interpret(err, "sale stock", ErrSaleNotFound)
	}
	return Summary{
		Sale: saleFromRow(sale), UnitsSold: st.UnitsSold, UnitsHeld: st.UnitsHeld, UnitsAvailable: st.UnitsAvailable,
		Buyers: st.Buyers, MaxUnitsPerUser: st.MaxUnitsPerUser,
	}, nil
}

// ItemStock is an item with the number of its units free right now.
type ItemStock struct {
	Item
	FreeUnits int64
}

// Items lists up to limit items of a sale with ids greater than after.
func (s *Service) Items(ctx context.Context, saleID int64, after, limit int32) ([]ItemStock, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.q.ItemsListWithFreeUnits(ctx, s.read, db.ItemsListWithFreeUnitsParams{
		SaleID: saleID, AfterItemID: after, MaxItems: limit,
	})
	if err != nil {
		return nil, interpret(err, "list items", nil)
	}
	out := make([]ItemStock, len(rows))
	for i, r := range rows {
		out[i] = ItemStock{Item: Item{SaleID: r.SaleID, ID: r.ItemID, Name: r.Name, PriceCents: r.PriceCents}, FreeUnits: r.FreeUnits}
	}
	return out, nil
}

// Item returns one item of a sale.
func (s *Service) Item(ctx context.Context, saleID int64, itemID int32) (Item, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	r, err := s.q.ItemGet(ctx, s.read, db.ItemGetParams{SaleID: saleID, ItemID: itemID})
	if err != nil {
		return Item{}, interpret(err, "get item", ErrItemNotFound)
	}
	return Item{SaleID: r.SaleID, ID: r.ItemID, Name: r.Name, PriceCents: r.PriceCents}, nil
}
