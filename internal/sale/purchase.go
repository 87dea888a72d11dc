package sale

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flashsale/flashsale/internal/sale/store"
)

// Purchase sells the unit held under code. Repeating it with a code already
// used returns the same purchase and sells nothing more, so clients may
// retry it freely. A buyer, when given (the authenticated user), must be
// the user the code was issued to.
func (s *Service) Purchase(ctx context.Context, code, buyer string) (Purchase, error) {
	c, err := parseCode(code)
	if err != nil {
		return Purchase{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if buyer != "" {
		// A code's holder never changes, so checking before the purchase's
		// transaction leaves no gap. An unknown code goes on to be answered
		// code_not_found.
		holder, err := s.store.CodeHolder(ctx, c)
		switch {
		case err == nil && holder != buyer:
			return Purchase{}, ErrNotCodeHolder
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return Purchase{}, unavailable(err)
		}
	}
	// Answered by purchaseBatch, below, once the code's batch committed.
	res, err := s.purchases.do(ctx, c)
	if err == nil {
		err = res.err
	}
	if err != nil {
		return Purchase{}, fmt.Errorf("purchase: %w", unavailable(err))
	}
	if res.Outcome != store.Purchased {
		return Purchase{}, purchaseError(res.Outcome)
	}
	return res.Purchase, nil
}

// purchaseResult is one code's answer in a purchase batch: its result, or
// the database's refusal of that purchase alone.
type purchaseResult struct {
	store.PurchaseResult
	err error
}

// purchaseBatch sells the units held under a batch of codes in one
// transaction. When PostgreSQL refuses the batch because one purchase would
// take its user past the cap (buyers_within_limit; checkout's cap makes
// this unreachable, the CHECK is the last word), the codes are sold one
// transaction each, so that only the refused one is refused.
func (s *Service) purchaseBatch(deadline time.Time, codes []store.Code) ([]purchaseResult, error) {
	results, err := s.store.PurchasesSell(deadline, codes)
	switch {
	case errors.Is(err, store.ErrOverLimit) && len(codes) == 1:
		return []purchaseResult{{err: fmt.Errorf("%w: %w", ErrUserLimit, err)}}, nil
	case errors.Is(err, store.ErrOverLimit):
		out := make([]purchaseResult, len(codes))
		for i, code := range codes {
			one, err := s.purchaseBatch(deadline, []store.Code{code})
			if err != nil {
				return nil, err
			}
			out[i] = one[0]
		}
		return out, nil
	case err != nil:
		return nil, err
	}
	out := make([]purchaseResult, len(results))
	for i, r := range results {
		out[i].PurchaseResult = r
	}
	return out, nil
}

// UserPurchases lists what userID bought in sale saleID; ErrSaleNotFound
// when there is no such sale.
func (s *Service) UserPurchases(ctx context.Context, saleID int64, userID string) ([]Purchase, error) {
	if err := ValidateUserID(userID); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	out, err := s.store.PurchasesByUser(ctx, saleID, userID)
	return out, notFound(err, ErrSaleNotFound)
}
