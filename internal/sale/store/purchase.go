package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/flashsale/flashsale/db"
)

// Code is a checkout code with the sale it names (package sale parses
// it), so that its lookups read that sale's partition of checkout_attempts
// only. A code that names no sale has Sale 0 and is found nowhere.
type Code struct {
	Sale int64
	Code string
}

// PurchaseResult is what one purchase of a batch came to; Purchase is set
// when it is Purchased (a repeat of a code answers the first purchase).
type PurchaseResult struct {
	Outcome  Outcome
	Purchase Purchase
}

// PurchasesSell sells the units held under codes in one transaction: it
// locks them, takes their holders' advisory locks, sells and reads every
// code's purchase or why there is none. It returns one result per code, in
// order. When one purchase would take its buyer past the cap, PostgreSQL
// refuses the whole batch and the error is ErrOverLimit.
func (s *Store) PurchasesSell(deadline time.Time, codes []Code) ([]PurchaseResult, error) {
	ctx := context.Background() // the deadline is inTx's
	texts := make([]string, len(codes))
	for i, c := range codes {
		texts[i] = c.Code
	}
	groups := bySale(codes)
	stmts := []stmt{
		waitForStandby, // a repeated purchase writes nothing (syncrep.go)
		func(tx db.DBTX) (err error) { _, err = s.q.UnitsLockHeld(ctx, tx, texts); return err },
		func(tx db.DBTX) (err error) { _, err = s.q.UserLocksTakeForCodes(ctx, tx, texts); return err },
		func(tx db.DBTX) (err error) { _, err = s.q.UnitsSell(ctx, tx, texts); return err },
	}
	read := make([][]db.PurchasesGetByCodesRow, len(groups))
	for i, g := range groups {
		arg := db.PurchasesGetByCodesParams{SaleID: g.sale, Codes: g.codes}
		stmts = append(stmts, func(tx db.DBTX) (err error) {
			read[i], err = s.q.PurchasesGetByCodes(ctx, tx, arg)
			return err
		})
	}
	if err := s.inTx(deadline, "sell units", stmts...); err != nil {
		return nil, err
	}
	out := make([]PurchaseResult, len(codes))
	for i, g := range groups {
		rows, err := inOrder(read[i], len(g.codes), func(r db.PurchasesGetByCodesRow) int32 { return r.Ord })
		if err != nil {
			return nil, fmt.Errorf("purchases of sale %d: %w", g.sale, err)
		}
		for k, r := range rows {
			res, err := purchaseResult(r, g.codes[k])
			if err != nil {
				return nil, err
			}
			out[g.at[k]] = res
		}
	}
	return out, nil
}

func purchaseResult(r db.PurchasesGetByCodesRow, code string) (PurchaseResult, error) {
	res := PurchaseResult{Outcome: Outcome(r.Outcome)}
	if res.Outcome != Purchased {
		return res, nil
	}
	if r.PurchaseID == nil || r.SaleID == nil || r.UserID == nil || r.ItemID == nil || r.ItemName == nil ||
		r.PriceCents == nil || r.PurchasedAt == nil || r.UserPurchases == nil {
		return res, fmt.Errorf("purchased row without its purchase: %+v", r)
	}
	res.Purchase = Purchase{
		ID: *r.PurchaseID, SaleID: *r.SaleID, UserID: *r.UserID, Code: code,
		Item: Item{
			SaleID: *r.SaleID, ID: *r.ItemID, SKU: deref(r.Sku), Name: *r.ItemName, Description: deref(r.Description),
			PriceCents: *r.PriceCents, Currency: deref(r.Currency), ImageURL: deref(r.ImageUrl),
		},
		PurchasedAt: *r.PurchasedAt, UserPurchases: int64(*r.UserPurchases),
	}
	return res, nil
}

// saleCodes are the codes of a batch that name one sale, and their
// indexes in the batch.
type saleCodes struct {
	sale  int64
	codes []string
	at    []int
}

// bySale groups a batch's codes by the sale they name, in order of first
// appearance: one PurchasesGetByCodes per sale reads one partition of
// checkout_attempts. A batch nearly always holds one sale's codes (two
// around a sale's end).
func bySale(codes []Code) []saleCodes {
	var groups []saleCodes
	for i, c := range codes {
		k := slices.IndexFunc(groups, func(g saleCodes) bool { return g.sale == c.Sale })
		if k < 0 {
			groups, k = append(groups, saleCodes{sale: c.Sale}), len(groups)
		}
		groups[k].codes, groups[k].at = append(groups[k].codes, c.Code), append(groups[k].at, i)
	}
	return groups
}

// CodeHolder returns the user code was issued to, or ErrNotFound. A code's
// attempt row never changes, so this may be read before the purchase's
// transaction.
func (s *Store) CodeHolder(ctx context.Context, code Code) (string, error) {
	holder, err := s.q.CheckoutHolderByCode(ctx, s.pool, db.CheckoutHolderByCodeParams{SaleID: code.Sale, Code: code.Code})
	return holder, wrap(err, "look up the code's holder")
}

// PurchasesByUser lists what userID bought in sale saleID, or ErrNotFound
// when there is no such sale: an empty list then would read as "bought
// nothing" in a sale that never was.
func (s *Store) PurchasesByUser(ctx context.Context, saleID int64, userID string) ([]Purchase, error) {
	rows, err := s.q.PurchasesListByUser(ctx, s.read, db.PurchasesListByUserParams{SaleID: saleID, UserID: userID})
	if err != nil {
		return nil, wrap(err, "list purchases")
	}
	if len(rows) == 0 {
		// A purchase needs its sale (a foreign key), so only an empty
		// list needs this second look-up.
		if _, err := s.q.SaleGetByID(ctx, s.read, saleID); err != nil {
			return nil, wrap(err, "get sale")
		}
	}
	out := make([]Purchase, len(rows))
	for i, r := range rows {
		out[i] = Purchase{
			ID: r.ID, SaleID: r.SaleID, UserID: r.UserID, Code: r.Code, PurchasedAt: r.PurchasedAt,
			Item: Item{
				SaleID: r.SaleID, ID: r.ItemID, SKU: r.Sku, Name: r.ItemName, Description: r.Description,
				PriceCents: r.PriceCents, Currency: r.Currency, ImageURL: deref(r.ImageUrl),
			},
			UserPurchases: int64(len(rows)),
		}
	}
	return out, nil
}
