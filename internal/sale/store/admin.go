package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/db"
)

// Admin edits are rare and branch on what they read (does the sale exist,
// has it started), so each is an ordinary interactive transaction, unlike
// the pipelined batches of checkouts and purchases (tx.go). Every one
// takes SaleCreationLock first and records itself in admin_actions last.

// ErrNotEditable: the sale has started, or starts too soon to be changed.
var ErrNotEditable = errors.New("the sale has started or starts too soon to change")

// ErrNotRunning: pause, resume and end act on a sale that has started and
// not ended.
var ErrNotRunning = errors.New("the sale is not running")

// Action is one kind of admin action, as admin_actions names it.
type Action string

// The actions; admin_actions_action_valid lists the same.
const (
	ActionCreate  Action = "create"
	ActionReplace Action = "replace"
	ActionDelete  Action = "delete"
	ActionPause   Action = "pause"
	ActionResume  Action = "resume"
	ActionEnd     Action = "end"
)

// Edit is who makes an admin change and the bounds it runs under.
type Edit struct {
	Actor string
	// Lead: the sale's start must be more than this ahead of the
	// database's clock when the edit defines, replaces or deletes it.
	Lead time.Duration
	// Deadline bounds the transaction; shorter than Lead.
	Deadline time.Time
}

// AuditEntry is one row of admin_actions.
type AuditEntry struct {
	ID     int64
	At     time.Time
	Actor  string
	Action Action
	SaleID int64
	Before []byte // JSON, nil for a create
	After  []byte // JSON, nil for a delete
}

func (s *Store) adminTx(e Edit, what string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, cancel := context.WithDeadline(context.Background(), e.Deadline)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.q.SaleCreationLock(ctx, tx); err != nil {
			return fmt.Errorf("take the sale creation lock: %w", err)
		}
		return fn(ctx, tx)
	})
	if errors.Is(err, ErrNotEditable) || errors.Is(err, ErrNotRunning) || errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return wrap(err, what)
}

func (s *Store) record(ctx context.Context, tx pgx.Tx, e Edit, action Action, saleID int64, before []byte) error {
	_, err := s.q.AdminActionRecord(ctx, tx, db.AdminActionRecordParams{
		Actor: e.Actor, Action: string(action), SaleID: saleID, Before: before,
		WithItems: action == ActionCreate || action == ActionReplace || action == ActionDelete,
	})
	if err != nil {
		return fmt.Errorf("record %s of sale %d: %w", action, saleID, err)
	}
	return nil
}

// SaleDefine creates a sale from a definition (sale's ID is ignored), with
// its attempts' partition, items and units, after deleting the generated
// sales its window overlaps that have not started. A window overlapping
// any other sale is ErrOverlap; a start not more than e.Lead ahead is
// ErrNotEditable.
func (s *Store) SaleDefine(e Edit, sale Sale, items []Item) (made Sale, _ error) {
	err := s.adminTx(e, "define sale", func(ctx context.Context, tx pgx.Tx) (err error) {
		made, err = s.define(ctx, tx, e, sale, items)
		return err
	})
	return made, err
}

// SaleReplace gives sale id a new definition (window, rules, items and
// units), unless it has started or starts within e.Lead (ErrNotEditable).
func (s *Store) SaleReplace(e Edit, id int64, sale Sale, items []Item) (made Sale, _ error) {
	err := s.adminTx(e, fmt.Sprintf("replace sale %d", id), func(ctx context.Context, tx pgx.Tx) (err error) {
		made, err = s.replace(ctx, tx, e, id, sale, items)
		return err
	})
	return made, err
}

// Applied says what SaleApply did.
type Applied string

// What SaleApply can do.
const (
	Created   Applied = "created"
	Replaced  Applied = "replaced"
	Unchanged Applied = "unchanged"
)

// SaleApply makes the sale starting at sale.StartsAt be this definition:
// it creates it, replaces a defined sale with that start whose digest
// differs, or changes nothing when the digest is the same. Under the
// creation lock, so servers applying one file at once make one sale.
func (s *Store) SaleApply(e Edit, sale Sale, items []Item) (made Sale, applied Applied, _ error) {
	err := s.adminTx(e, "apply sale", func(ctx context.Context, tx pgx.Tx) error {
		row, err := s.q.SaleGetByStart(ctx, tx, sale.StartsAt)
		switch {
		case errors.Is(err, pgx.ErrNoRows) || err == nil && row.DefinedBy == nil:
			made, applied = Sale{}, Created
			made, err = s.define(ctx, tx, e, sale, items)
			return err
		case err != nil:
			return fmt.Errorf("look up the sale starting then: %w", err)
		case deref(row.DefinitionSha256) == sale.DefinitionSHA256:
			made, applied = saleFromRow(row), Unchanged
			return nil
		}
		applied = Replaced
		made, err = s.replace(ctx, tx, e, row.ID, sale, items)
		return err
	})
	return made, applied, err
}

func (s *Store) define(ctx context.Context, tx pgx.Tx, e Edit, sale Sale, items []Item) (Sale, error) {
	if err := s.dropGeneratedOverlapping(ctx, tx, e, sale, 0); err != nil {
		return Sale{}, err
	}
	row, err := s.q.SaleInsertDefined(ctx, tx, db.SaleInsertDefinedParams{
		StartsAt: sale.StartsAt, EndsAt: sale.EndsAt, UnitsTotal: sale.UnitsTotal, Items: sale.Items,
		PerUserLimit: sale.PerUserLimit, HoldTTL: sale.HoldTTL, DefinedBy: e.Actor,
		DefinitionSha256: sale.DefinitionSHA256, Lead: e.Lead,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Sale{}, ErrNotEditable
	}
	if err != nil {
		return Sale{}, fmt.Errorf("insert sale: %w", err)
	}
	if _, err := s.q.CheckoutAttemptsPartitionCreate(ctx, tx, row.ID); err != nil {
		return Sale{}, fmt.Errorf("create the attempts partition of sale %d: %w", row.ID, err)
	}
	if err := s.insertItems(ctx, tx, row.ID, items); err != nil {
		return Sale{}, err
	}
	return saleFromRow(row), s.record(ctx, tx, e, ActionCreate, row.ID, nil)
}

func (s *Store) replace(ctx context.Context, tx pgx.Tx, e Edit, id int64, sale Sale, items []Item) (Sale, error) {
	before, err := s.lockForEdit(ctx, tx, e, id)
	if err != nil {
		return Sale{}, err
	}
	if err := s.dropGeneratedOverlapping(ctx, tx, e, sale, id); err != nil {
		return Sale{}, err
	}
	row, err := s.q.SaleUpdateDefinition(ctx, tx, db.SaleUpdateDefinitionParams{
		ID: id, StartsAt: sale.StartsAt, EndsAt: sale.EndsAt, UnitsTotal: sale.UnitsTotal, Items: sale.Items,
		PerUserLimit: sale.PerUserLimit, HoldTTL: sale.HoldTTL, DefinedBy: e.Actor,
		DefinitionSha256: sale.DefinitionSHA256, Lead: e.Lead,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Sale{}, ErrNotEditable // the new start is too soon
	}
	if err != nil {
		return Sale{}, fmt.Errorf("update sale: %w", err)
	}
	if err := s.q.ItemsDeleteForSale(ctx, tx, id); err != nil {
		return Sale{}, fmt.Errorf("delete the items of sale %d: %w", id, err)
	}
	if err := s.insertItems(ctx, tx, id, items); err != nil {
		return Sale{}, err
	}
	return saleFromRow(row), s.record(ctx, tx, e, ActionReplace, id, before)
}

// SaleDelete deletes sale id with its items, units and attempts'
// partition, unless it has started or starts within e.Lead.
func (s *Store) SaleDelete(e Edit, id int64) error {
	return s.adminTx(e, fmt.Sprintf("delete sale %d", id), func(ctx context.Context, tx pgx.Tx) error {
		before, err := s.lockForEdit(ctx, tx, e, id)
		if err != nil {
			return err
		}
		if err := s.q.LockTimeoutSetLocal(ctx, tx, partitionLockTimeout.String()); err != nil {
			return fmt.Errorf("set lock_timeout: %w", err)
		}
		if _, err := s.q.SaleDelete(ctx, tx, db.SaleDeleteParams{ID: id, Lead: e.Lead}); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotEditable
			}
			return fmt.Errorf("delete sale: %w", err)
		}
		return s.record(ctx, tx, e, ActionDelete, id, before)
	})
}

// partitionLockTimeout bounds the wait for the lock that dropping an
// attempts partition takes on checkout_attempts: every checkout queues
// behind it meanwhile. Past it the edit fails (503) and can be retried.
const partitionLockTimeout = 200 * time.Millisecond

// lockForEdit locks sale id's row and returns its document, or
// ErrNotFound, or ErrNotEditable when it starts within e.Lead.
func (s *Store) lockForEdit(ctx context.Context, tx pgx.Tx, e Edit, id int64) ([]byte, error) {
	row, err := s.q.SaleGetForEdit(ctx, tx, db.SaleGetForEditParams{ID: id, Lead: e.Lead})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("lock sale %d: %w", id, err)
	}
	if !row.Editable {
		return nil, ErrNotEditable
	}
	doc, err := s.q.SaleDocumentGet(ctx, tx, id)
	if err != nil {
		return nil, fmt.Errorf("read sale %d: %w", id, err)
	}
	return doc, nil
}

func (s *Store) dropGeneratedOverlapping(ctx context.Context, tx pgx.Tx, e Edit, sale Sale, keep int64) error {
	if err := s.q.LockTimeoutSetLocal(ctx, tx, partitionLockTimeout.String()); err != nil {
		return fmt.Errorf("set lock_timeout: %w", err)
	}
	_, err := s.q.SalesDeleteGeneratedOverlapping(ctx, tx, db.SalesDeleteGeneratedOverlappingParams{
		Lead: e.Lead, StartsAt: sale.StartsAt, EndsAt: sale.EndsAt, KeepID: keep,
	})
	if err != nil {
		return fmt.Errorf("delete the generated sales the window overlaps: %w", err)
	}
	// The rest of the transaction waits for its locks as usual.
	if err := s.q.LockTimeoutSetLocal(ctx, tx, "0"); err != nil {
		return fmt.Errorf("reset lock_timeout: %w", err)
	}
	return nil
}

func (s *Store) insertItems(ctx context.Context, tx pgx.Tx, saleID int64, items []Item) error {
	arg := db.ItemsInsertDefinedParams{SaleID: saleID}
	for _, it := range items {
		arg.Skus = append(arg.Skus, it.SKU)
		arg.Names = append(arg.Names, it.Name)
		arg.Descriptions = append(arg.Descriptions, it.Description)
		arg.PricesCents = append(arg.PricesCents, it.PriceCents)
		arg.Currencies = append(arg.Currencies, it.Currency)
		arg.Units = append(arg.Units, it.Units)
		arg.ImageUrls = append(arg.ImageUrls, it.ImageURL)
	}
	if err := s.q.ItemsInsertDefined(ctx, tx, arg); err != nil {
		return fmt.Errorf("insert the items of sale %d: %w", saleID, err)
	}
	if err := s.q.UnitsInsertForSale(ctx, tx, saleID); err != nil {
		return fmt.Errorf("insert the units of sale %d: %w", saleID, err)
	}
	return nil
}

// SaleControl pauses, resumes or ends sale id and records it. changed is
// false when there was nothing to do (pausing a paused sale): nothing is
// recorded then. A sale that has not started or has ended is ErrNotRunning.
func (s *Store) SaleControl(e Edit, id int64, action Action) (_ Sale, changed bool, _ error) {
	var out Sale
	err := s.adminTx(e, fmt.Sprintf("%s sale %d", action, id), func(ctx context.Context, tx pgx.Tx) error {
		cur, err := s.q.SaleGetForEdit(ctx, tx, db.SaleGetForEditParams{ID: id, Lead: e.Lead})
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock sale: %w", err)
		}
		out = saleFromRow(cur.Sale)
		if cur.Sale.StartsAt.After(cur.DbNow) || !cur.Sale.EndsAt.After(cur.DbNow) {
			return ErrNotRunning
		}
		// Controls change the sale's row, never its items.
		before, err := s.q.SaleHeaderGet(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("read sale: %w", err)
		}
		var row db.Sale
		switch action {
		case ActionPause:
			row, err = s.q.SalePause(ctx, tx, id)
		case ActionResume:
			row, err = s.q.SaleResume(ctx, tx, id)
		case ActionEnd:
			row, err = s.q.SaleEnd(ctx, tx, id)
		default:
			return fmt.Errorf("no such control: %q", action)
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // already paused, or not paused
		}
		if err != nil {
			return err
		}
		out, changed = saleFromRow(row), true
		// A sale's end is published from its ends_at, whoever ended it
		// (queries/events.sql); a pause and a resume are events of their own.
		if event, ok := controlEvents[action]; ok {
			if err := s.q.EventOutboxAdd(ctx, tx, db.EventOutboxAddParams{Type: event, SaleID: id}); err != nil {
				return fmt.Errorf("record the %s event: %w", event, err)
			}
		}
		return s.record(ctx, tx, e, action, id, before)
	})
	if err != nil {
		return Sale{}, false, err
	}
	return out, changed, nil
}

// SaleGet returns sale id, or ErrNotFound.
func (s *Store) SaleGet(ctx context.Context, id int64) (Sale, error) {
	row, err := s.q.SaleGetByID(ctx, s.read, id)
	if err != nil {
		return Sale{}, wrap(err, "get sale")
	}
	return saleFromRow(row), nil
}

// SaleItems returns every item of sale id with its units, in id order.
func (s *Store) SaleItems(ctx context.Context, id int64) ([]Item, error) {
	rows, err := s.q.ItemsListForSale(ctx, s.read, id)
	if err != nil {
		return nil, wrap(err, "list the items of the sale")
	}
	out := make([]Item, len(rows))
	for i, r := range rows {
		out[i] = itemFromRow(r)
	}
	return out, nil
}

// SalesList returns up to limit sales that end after since, in order, with
// their live counts.
func (s *Store) SalesList(ctx context.Context, since time.Time, limit int32) ([]Summary, error) {
	rows, err := s.q.SalesList(ctx, s.read, db.SalesListParams{Since: since, MaxSales: limit})
	if err != nil {
		return nil, wrap(err, "list sales")
	}
	out := make([]Summary, len(rows))
	for i, r := range rows {
		out[i] = Summary{
			Sale:      saleFromRow(r.Sale),
			UnitsSold: r.UnitsSold, UnitsHeld: r.UnitsHeld, UnitsAvailable: r.UnitsAvailable, Buyers: r.Buyers,
			MaxUnitsPerUser: r.MaxUnitsPerUser,
		}
	}
	return out, nil
}

// AuditTrail returns the admin actions on sale id, oldest first.
func (s *Store) AuditTrail(ctx context.Context, id int64) ([]AuditEntry, error) {
	rows, err := s.q.AdminActionsForSale(ctx, s.read, id)
	if err != nil {
		return nil, wrap(err, "read the audit trail")
	}
	out := make([]AuditEntry, len(rows))
	for i, r := range rows {
		out[i] = AuditEntry{ID: r.ID, At: r.At, Actor: r.Actor, Action: Action(r.Action), SaleID: r.SaleID,
			Before: r.Before, After: r.After}
	}
	return out, nil
}
