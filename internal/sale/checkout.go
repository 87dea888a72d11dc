package sale

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/flashsale/flashsale/internal/sale/store"
)

// CheckoutRequest is one shopper's checkout.
type CheckoutRequest struct {
	UserID string
	// ItemID or SKU names the item of the current sale: exactly one is set.
	ItemID int64
	SKU    string
	// IdempotencyKey, when set, makes a repeat of the request (same user,
	// same key) answer what the first one was answered, storing nothing.
	IdempotencyKey string
	// RateLimited marks a request the server's rate limit refused: it is
	// stored as a rate_limited attempt, without taking its user's lock, and
	// answered ErrRateLimited.
	RateLimited bool
}

// Hold is a unit reserved for a user until ExpiresAt, redeemable with Code.
type Hold struct {
	Code      string
	SaleID    int64
	UserID    string
	Item      Item
	ExpiresAt time.Time
	// Replayed: this is the answer an earlier request with the same
	// idempotency key got.
	Replayed bool
}

// checkoutKey is what may appear once per checkout batch: the user, whose
// lock the batch takes. A rate-limited request takes no lock and touches
// nothing of its user's, so it never waits for a later batch: a hot user's
// refusals are answered as fast as anyone's.
func checkoutKey(r store.CheckoutRequest) string {
	if r.RateLimited {
		return "\x00" + r.Code
	}
	return r.UserID
}

// Checkout holds a unit of the requested item of the current sale for the
// user. The attempt is stored whatever its outcome, before this returns.
// An answer given from an earlier request with the same idempotency key
// has Hold.Replayed set, or its error wraps ErrReplayed.
func (s *Service) Checkout(ctx context.Context, req CheckoutRequest) (Hold, error) {
	if err := ValidateUserID(req.UserID); err != nil {
		return Hold{}, err
	}
	switch {
	case req.SKU != "" && req.ItemID != 0:
		return Hold{}, invalid("name the item by id or by sku, not both")
	case req.SKU != "":
		if err := ValidateSKU(req.SKU); err != nil {
			return Hold{}, err
		}
	case req.ItemID < 1:
		return Hold{}, invalid("id must be a positive integer")
	}
	if req.IdempotencyKey != "" {
		if err := ValidateIdempotencyKey(req.IdempotencyKey); err != nil {
			return Hold{}, err
		}
	}
	code, err := newCode()
	if err != nil {
		return Hold{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// Answered by checkoutBatch, below, once the request's batch committed.
	res, err := s.checkouts.do(ctx, store.CheckoutRequest{
		UserID: req.UserID, ItemID: req.ItemID, SKU: req.SKU, Code: code, IdempotencyKey: req.IdempotencyKey, RateLimited: req.RateLimited,
	})
	if err != nil {
		return Hold{}, fmt.Errorf("checkout: %w", unavailable(err))
	}
	if res.KeyReused {
		return Hold{}, ErrKeyReused
	}
	if res.Outcome != store.Held {
		err := checkoutError(res.Outcome)
		if res.Replayed {
			err = fmt.Errorf("%w: %w", ErrReplayed, err)
		}
		return Hold{}, err
	}
	return Hold{
		Code: res.Code, SaleID: res.SaleID, UserID: req.UserID, Item: res.Item, ExpiresAt: res.ExpiresAt,
		Replayed: res.Replayed,
	}, nil
}

// checkoutBatch decides a batch of checkouts in one transaction: the users'
// locks, then the claims and one stored attempt per request. During a
// sold-out storm, the short way first for the requests it can answer: all
// but those with an idempotency key, whose key is read under their user's
// lock.
func (s *Service) checkoutBatch(deadline time.Time, reqs []store.CheckoutRequest) ([]store.CheckoutResult, error) {
	out := make([]store.CheckoutResult, len(reqs))
	answered := make([]bool, len(reqs))
	if s.soldOut.Load() {
		var short []store.CheckoutRequest
		var at []int // index in reqs of each request sent
		for i, r := range reqs {
			if r.IdempotencyKey == "" {
				short, at = append(short, r), append(at, i)
			}
		}
		if len(short) > 0 {
			refused, err := s.store.CheckoutsRefuseIfSoldOut(deadline, short)
			if err != nil {
				return nil, err
			}
			for k, res := range refused {
				out[at[k]], answered[at[k]] = res, true
			}
		}
	}
	// The rest, in arrival order: arrival decides who gets an item's units.
	var rest []store.CheckoutRequest
	var restAt []int
	for i, r := range reqs {
		if !answered[i] {
			rest, restAt = append(rest, r), append(restAt, i)
		}
	}
	if len(rest) == 0 {
		return out, nil
	}
	decided, err := s.store.CheckoutsDecide(deadline, rest, s.settings.IdempotencyKeyTTL)
	if err != nil {
		return nil, err
	}
	for k, res := range decided {
		out[restAt[k]] = res
	}
	// Only the sale's own answers say whether it is sold out.
	own := slices.DeleteFunc(decided, func(r store.CheckoutResult) bool {
		return r.Replayed || r.Outcome == store.RateLimited
	})
	if len(own) > 0 {
		s.soldOut.Store(!slices.ContainsFunc(own, func(r store.CheckoutResult) bool {
			return r.Outcome != store.SoldOut
		}))
	}
	return out, nil
}
