package store

import (
	"context"
	"fmt"
	"time"

	"github.com/flashsale/flashsale/db"
)

// CheckoutRequest is one checkout of a batch, as the queries take it.
type CheckoutRequest struct {
	UserID string
	ItemID int64
	// SKU, when set, names the item instead of ItemID, in the sale the
	// query finds open.
	SKU string
	// Code is the random part of the code a hold gets; CheckoutsDecide puts
	// the sale's id before it.
	Code           string
	IdempotencyKey string
	RateLimited    bool
}

// CheckoutResult is what one checkout of a batch came to. SaleID is 0
// when no sale was open; Code, ExpiresAt and Item are set when it is Held.
type CheckoutResult struct {
	Outcome   Outcome
	SaleID    int64
	Code      string
	ExpiresAt time.Time
	Item      Item
	// Replayed: answered from an earlier request with the same
	// idempotency key; KeyReused: that key was used for another item.
	Replayed  bool
	KeyReused bool
}

// CheckoutsRefuseIfSoldOut stores, in one transaction, the requests that
// need no decision because the current sale has no free unit (or none is
// open), and the rate-limited ones; it returns their results by index in
// reqs. The others were not stored and must be decided the full way
// (CheckoutsDecide). Requests with an idempotency key must not be sent
// here: their key is read under their user's lock.
func (s *Store) CheckoutsRefuseIfSoldOut(deadline time.Time, reqs []CheckoutRequest) (map[int]CheckoutResult, error) {
	var arg db.CheckoutAttemptsInsertIfSoldOutParams
	for _, r := range reqs {
		arg.UserIDs, arg.ItemIDs, arg.Skus = append(arg.UserIDs, r.UserID), append(arg.ItemIDs, r.ItemID), append(arg.Skus, r.SKU)
		arg.RateLimited = append(arg.RateLimited, r.RateLimited)
	}
	var rows []db.CheckoutAttemptsInsertIfSoldOutRow
	err := s.inTx(deadline, "store sold-out attempts", func(tx db.DBTX) (err error) {
		rows, err = s.q.CheckoutAttemptsInsertIfSoldOut(context.Background(), tx, arg)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[int]CheckoutResult, len(rows))
	for _, r := range rows {
		k := int(r.Ord) - 1
		if k < 0 || k >= len(reqs) {
			return nil, fmt.Errorf("sold-out batch of %d answered request %d", len(reqs), k+1)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("sold-out batch answered request %d twice", k+1)
		}
		out[k] = CheckoutResult{Outcome: Outcome(r.Outcome), SaleID: deref(r.SaleID)}
	}
	return out, nil
}

// CheckoutsDecide decides reqs in one transaction under their users'
// advisory locks (a rate-limited request takes none): claims, refusals and
// one stored attempt per request. Answers kept under idempotency keys live
// keyTTL. It returns one result per request, in order.
func (s *Store) CheckoutsDecide(deadline time.Time, reqs []CheckoutRequest, keyTTL time.Duration) ([]CheckoutResult, error) {
	arg := db.CheckoutsDecideParams{
		UserIDs: make([]string, len(reqs)), ItemIDs: make([]int64, len(reqs)), Skus: make([]string, len(reqs)),
		Codes:           make([]string, len(reqs)),
		IdempotencyKeys: make([]string, len(reqs)), RateLimited: make([]bool, len(reqs)),
		IdempotencyKeyTTL: keyTTL,
	}
	locked := make([]string, 0, len(reqs))
	for i, r := range reqs {
		arg.UserIDs[i], arg.ItemIDs[i], arg.Skus[i], arg.Codes[i] = r.UserID, r.ItemID, r.SKU, r.Code
		arg.IdempotencyKeys[i], arg.RateLimited[i] = r.IdempotencyKey, r.RateLimited
		if !r.RateLimited {
			locked = append(locked, r.UserID)
		}
	}
	ctx := context.Background() // the deadline is inTx's
	var rows []db.CheckoutsDecideRow
	err := s.inTx(deadline, "decide checkouts",
		waitForStandby, // a batch of replayed idempotency keys writes nothing (syncrep.go)
		func(tx db.DBTX) (err error) {
			_, err = s.q.UserLocksTakeForCheckout(ctx, tx, locked)
			return err
		},
		func(tx db.DBTX) (err error) {
			rows, err = s.q.CheckoutsDecide(ctx, tx, arg)
			return err
		})
	if err != nil {
		return nil, err
	}
	rows, err = inOrder(rows, len(reqs), func(r db.CheckoutsDecideRow) int32 { return r.Ord })
	if err != nil {
		return nil, err
	}
	out := make([]CheckoutResult, len(rows))
	for i, r := range rows {
		res := CheckoutResult{Outcome: Outcome(r.Outcome), SaleID: deref(r.SaleID), Replayed: r.Replayed, KeyReused: r.KeyReused}
		if res.Outcome == Held {
			if r.SaleID == nil || r.Code == nil || r.ExpiresAt == nil || r.ItemID == nil || r.ItemName == nil ||
				r.PriceCents == nil || r.Sku == nil || r.Currency == nil || r.Description == nil {
				return nil, fmt.Errorf("checkout %d held without its hold: %+v", i+1, r)
			}
			res.Code, res.ExpiresAt = *r.Code, *r.ExpiresAt
			res.Item = Item{
				SaleID: *r.SaleID, ID: *r.ItemID, SKU: *r.Sku, Name: *r.ItemName, Description: *r.Description,
				PriceCents: *r.PriceCents, Currency: *r.Currency, ImageURL: deref(r.ImageUrl),
			}
		}
		out[i] = res
	}
	return out, nil
}

// inOrder puts a batch's rows in request order by their 1-based ord,
// failing unless every one of the n requests has exactly one row.
func inOrder[Row any](rows []Row, n int, ord func(Row) int32) ([]Row, error) {
	if len(rows) != n {
		return nil, fmt.Errorf("batch of %d requests answered %d rows", n, len(rows))
	}
	out := make([]Row, n)
	seen := make([]bool, n)
	for _, r := range rows {
		i := int(ord(r)) - 1
		if i < 0 || i >= n || seen[i] {
			return nil, fmt.Errorf("batch answered request %d of %d twice or out of range", i+1, n)
		}
		out[i], seen[i] = r, true
	}
	return out, nil
}

// deref is *p, or the zero value for nil: a column that is NULL where the
// outcome leaves it unset.
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
