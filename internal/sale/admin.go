package sale

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flashsale/flashsale/internal/sale/store"
)

// The admin actions' errors, mapped to status codes with the others.
var (
	// ErrWindowTaken: a definition's window overlaps a sale that stays (a
	// defined one, or a generated one that starts within the edit lead).
	ErrWindowTaken = errors.New("the sale's window overlaps another sale")
	// ErrSaleStarted: a sale that has started, or starts within the edit
	// lead, cannot be replaced or deleted.
	ErrSaleStarted = errors.New("the sale has started or starts too soon to be changed")
	// ErrSaleNotRunning: pause, resume and end act on a running sale.
	ErrSaleNotRunning = errors.New("the sale is not running: it has not started or has ended")
	// ErrSalePaused is a checkout's answer while its sale is paused.
	ErrSalePaused = errors.New("the sale is paused; try again later")
)

// Applied says what applying a definition did: created, replaced or
// unchanged.
type Applied = store.Applied

// What ApplySale can do.
const (
	Created   = store.Created
	Replaced  = store.Replaced
	Unchanged = store.Unchanged
)

// Action is one kind of admin action (admin_actions.action).
type Action = store.Action

// The controls of a running sale.
const (
	Pause  = store.ActionPause
	Resume = store.ActionResume
	End    = store.ActionEnd
)

// AuditEntry is one recorded admin action.
type AuditEntry = store.AuditEntry

// EditLead is how far ahead of its start a sale can still be changed.
func (s *Service) EditLead() time.Duration { return s.settings.EditLead }

// edit is an admin change by actor, bounded so that it commits before any
// sale it may change starts (see Settings.EditLead).
func (s *Service) edit(actor string) store.Edit {
	return store.Edit{Actor: actor, Lead: s.settings.EditLead, Deadline: time.Now().Add(s.settings.EditLead / 2)}
}

// DefineSale creates a sale from d, replacing the generated sales it
// overlaps that have not started.
func (s *Service) DefineSale(ctx context.Context, actor string, d Definition) (Sale, error) {
	p, err := s.plan(ctx, d)
	if err != nil {
		return Sale{}, err
	}
	made, err := s.store.SaleDefine(s.edit(actor), p.sale, p.items)
	if err != nil {
		return Sale{}, adminError(err)
	}
	s.log.Info("sale defined", "sale_id", made.ID, "by", actor, "starts_at", made.StartsAt, "ends_at", made.EndsAt,
		"units", made.UnitsTotal, "items", made.Items)
	s.analyzeSoon()
	return made, nil
}

// ReplaceSale gives sale id a new definition, while it has not started.
func (s *Service) ReplaceSale(ctx context.Context, actor string, id int64, d Definition) (Sale, error) {
	p, err := s.plan(ctx, d)
	if err != nil {
		return Sale{}, err
	}
	made, err := s.store.SaleReplace(s.edit(actor), id, p.sale, p.items)
	if err != nil {
		return Sale{}, adminError(err)
	}
	s.log.Info("sale replaced", "sale_id", id, "by", actor)
	s.analyzeSoon()
	return made, nil
}

// ApplySale makes the sale starting at d.StartsAt be d: it creates it,
// replaces a defined sale with that start whose definition differs, or
// does nothing when the definition is the same (applying a file twice
// changes nothing).
func (s *Service) ApplySale(ctx context.Context, actor string, d Definition) (Sale, Applied, error) {
	// The start's lead is not checked up front: a file applied again once
	// its sale runs is unchanged, not too late.
	p, err := s.check(d, time.Time{})
	if err != nil {
		return Sale{}, "", err
	}
	made, applied, err := s.store.SaleApply(s.edit(actor), p.sale, p.items)
	if errors.Is(err, store.ErrNotEditable) {
		if _, early := s.plan(ctx, d); errors.Is(early, ErrInvalidDefinition) {
			return Sale{}, "", early // the start is too soon: say so at its field
		}
	}
	if err != nil {
		return Sale{}, "", adminError(err)
	}
	if applied != Unchanged {
		s.log.Info("sale applied", "sale_id", made.ID, "by", actor, "applied", applied)
		s.analyzeSoon()
	}
	return made, applied, nil
}

// DeleteSale deletes sale id, while it has not started.
func (s *Service) DeleteSale(_ context.Context, actor string, id int64) error {
	if err := s.store.SaleDelete(s.edit(actor), id); err != nil {
		return adminError(err)
	}
	s.log.Info("sale deleted", "sale_id", id, "by", actor)
	return nil
}

// ControlSale pauses, resumes or ends a running sale. changed is false
// when it was already so (nothing is recorded then).
func (s *Service) ControlSale(_ context.Context, actor string, id int64, action Action) (_ Sale, changed bool, _ error) {
	e := s.edit(actor)
	e.Deadline = time.Now().Add(s.timeout)
	sale, changed, err := s.store.SaleControl(e, id, action)
	if err != nil {
		return Sale{}, false, adminError(err)
	}
	if changed {
		s.log.Info("sale "+string(action), "sale_id", id, "by", actor)
	}
	return sale, changed, nil
}

// SaleWithItems returns a sale, its live counts and all its items.
func (s *Service) SaleWithItems(ctx context.Context, id int64) (Summary, []Item, error) {
	sum, err := s.Summary(ctx, id)
	if err != nil {
		return Summary{}, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	items, err := s.store.SaleItems(ctx, id)
	if err != nil {
		return Summary{}, nil, unavailable(err)
	}
	return sum, items, nil
}

// MaxListedSales bounds one page of ListSales.
const MaxListedSales = 500

// ListSales returns up to limit sales that end after since, in order.
func (s *Service) ListSales(ctx context.Context, since time.Time, limit int) ([]Summary, error) {
	if limit < 1 || limit > MaxListedSales {
		return nil, invalid(fmt.Sprintf("limit must be from 1 to %d", MaxListedSales))
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	out, err := s.store.SalesList(ctx, since, int32(limit))
	return out, unavailable(err)
}

// AuditTrail returns the admin actions on sale id, oldest first.
func (s *Service) AuditTrail(ctx context.Context, id int64) ([]AuditEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	out, err := s.store.AuditTrail(ctx, id)
	return out, unavailable(err)
}

// plan checks d against the rules and the database's clock.
func (s *Service) plan(ctx context.Context, d Definition) (plan, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	now, err := s.store.Now(ctx)
	if err != nil {
		return plan{}, unavailable(err)
	}
	return s.check(d, now)
}

// analyzeSoon gives the planner statistics that include a new sale's
// units, as EnsureSale does, outside the defining transaction.
func (s *Service) analyzeSoon() {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout+saleCreateTimeout)
	defer cancel()
	if err := s.store.Analyze(ctx); err != nil {
		s.log.Warn("analyze after defining a sale", "err", err)
	}
}

func adminError(err error) error {
	switch {
	case errors.Is(err, store.ErrOverlap):
		return fmt.Errorf("%w: %w", ErrWindowTaken, err)
	case errors.Is(err, store.ErrNotEditable):
		return fmt.Errorf("%w: %w", ErrSaleStarted, err)
	case errors.Is(err, store.ErrNotRunning):
		return fmt.Errorf("%w: %w", ErrSaleNotRunning, err)
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrSaleNotFound, err)
	}
	return unavailable(err)
}

// Status names where a sale stands at now: scheduled, running, paused or
// ended (the admin API's and `server sale list`'s words).
func Status(s Sale, now time.Time) string {
	switch {
	case now.Before(s.StartsAt):
		return "scheduled"
	case !now.Before(s.EndsAt):
		return "ended"
	case !s.PausedAt.IsZero():
		return "paused"
	}
	return "running"
}
