package sale

import (
	"context"
	"errors"
	"fmt"

	"github.com/flashsale/flashsale/internal/sale/store"
)

// The outcomes a caller can act on. The HTTP layer maps each to a status
// code in one place; everything else is an internal error.
var (
	ErrNoActiveSale    = errors.New("no sale is open right now")
	ErrSaleNotFound    = errors.New("sale not found")
	ErrEventNotFound   = errors.New("event not found")
	ErrItemNotFound    = errors.New("item not found in this sale")
	ErrItemUnavailable = errors.New("this item has no free unit right now; other items do")
	ErrSoldOut         = errors.New("the sale has no free unit left")
	ErrUserLimit       = errors.New("user has reached the per-user limit for this sale")
	ErrCodeNotFound    = errors.New("checkout code not found")
	ErrCodeExpired     = errors.New("checkout code has expired")
	ErrNotCodeHolder   = errors.New("this checkout code was issued to another user")
	ErrRateLimited     = errors.New("too many requests; slow down and try again after Retry-After seconds")
	ErrKeyReused       = errors.New("this Idempotency-Key was already used with other parameters")
	// ErrReplayed marks an answer given from an earlier request with the
	// same Idempotency-Key; it wraps that answer's error, if any.
	ErrReplayed = errors.New("replayed from an earlier request with the same Idempotency-Key")
	// ErrUnavailable: the database cannot be reached right now. Of a
	// checkout or purchase it means nothing was stored, unless it is
	// ErrOutcomeUnknown.
	ErrUnavailable = store.ErrUnavailable
	// ErrOutcomeUnknown is an ErrUnavailable whose transaction may have
	// committed: the connection broke after COMMIT was sent and before its
	// answer came back, or its wait for the synchronous standby was cut
	// short, so a failover could take it back.
	ErrOutcomeUnknown = store.ErrOutcomeUnknown
)

// The outcomes the queries return and the error each stands for: the one
// place they are mapped.
var (
	checkoutErrors = map[store.Outcome]error{
		store.NoActiveSale:     ErrNoActiveSale,
		store.ItemNotFound:     ErrItemNotFound,
		store.ItemUnavailable:  ErrItemUnavailable,
		store.SoldOut:          ErrSoldOut,
		store.UserLimitReached: ErrUserLimit,
		store.RateLimited:      ErrRateLimited,
		store.SalePaused:       ErrSalePaused,
	}
	purchaseErrors = map[store.Outcome]error{
		store.CodeNotFound: ErrCodeNotFound,
		store.CodeExpired:  ErrCodeExpired,
	}
)

func checkoutError(o store.Outcome) error { return outcomeError(checkoutErrors, o) }
func purchaseError(o store.Outcome) error { return outcomeError(purchaseErrors, o) }

func outcomeError(errs map[store.Outcome]error, outcome store.Outcome) error {
	if err, ok := errs[outcome]; ok {
		return err
	}
	return fmt.Errorf("unexpected outcome %q", outcome)
}

// CheckoutOutcomes names every outcome a checkout can be stored with.
func CheckoutOutcomes() []string { return names(store.CheckoutOutcomes()) }

// PurchaseOutcomes names every outcome a purchase can be decided with.
func PurchaseOutcomes() []string { return names(store.PurchaseOutcomes()) }

func names(all []store.Outcome) []string {
	out := make([]string, len(all))
	for i, o := range all {
		out[i] = string(o)
	}
	return out
}

// Outcome names the refusal err stands for as the database and the API
// name it ("sold_out", "code_expired", ...), or "" when err is none of them.
func Outcome(err error) string {
	for _, errs := range []map[store.Outcome]error{checkoutErrors, purchaseErrors} {
		for o, e := range errs {
			if errors.Is(err, e) {
				return string(o)
			}
		}
	}
	return ""
}

// unavailable marks a deadline or cancellation met while waiting for the
// database as ErrUnavailable, so that it is answered 503; the store's own
// errors come marked already.
func unavailable(err error) error {
	if err != nil && !errors.Is(err, ErrUnavailable) &&
		(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// notFound replaces the store's ErrNotFound with what was not found.
func notFound(err, what error) error {
	if errors.Is(err, store.ErrNotFound) {
		return what
	}
	return unavailable(err)
}
