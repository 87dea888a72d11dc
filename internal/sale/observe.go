package sale

import (
	"errors"
	"time"

	"github.com/flashsale/flashsale/internal/sale/store"
)

// Observer hears about every checkout and purchase batch once, on the
// batch's worker right after the batch ran, so what it does delays the next
// batch: each func must be quick and must not block (a metrics counter,
// never I/O). Any field may be nil. It sees batches, not requests: a
// request withdrawn by its caller before its batch ran is in none.
type Observer struct {
	// Batch reports a batch of size requests ("checkout" or "purchase"),
	// how long its transactions took, and err when the whole batch failed
	// (every request in it was answered with err, nothing decided).
	Batch func(kind string, size int, took time.Duration, err error)
	// CheckoutOutcome reports that n checkouts of a batch were decided
	// with outcome, a checkout_outcome value ("held", "sold_out",
	// "rate_limited", ...), or were answered from an idempotency key
	// ("replayed", "idempotency_key_reused").
	CheckoutOutcome func(outcome string, n int)
	// PurchaseOutcome reports that n purchases of a batch were decided with
	// outcome, a purchase_outcome value ("purchased" includes repeats of a
	// code already purchased), or "user_limit_reached" when PostgreSQL
	// refused that purchase for the cap.
	PurchaseOutcome func(outcome string, n int)
}

// checkoutOutcome names what a checkout came to; an answer replayed under
// an idempotency key decided nothing new and is counted apart.
func checkoutOutcome(r store.CheckoutResult) string {
	switch {
	case r.KeyReused:
		return "idempotency_key_reused"
	case r.Replayed:
		return "replayed"
	}
	return string(r.Outcome)
}

func purchaseOutcome(r purchaseResult) string {
	switch {
	case r.err == nil:
		return string(r.Outcome)
	case errors.Is(r.err, ErrUserLimit):
		return "user_limit_reached"
	default:
		return "error"
	}
}

// observed wraps a batch function so that each batch is reported to o:
// its size and duration, then its outcomes counted per kind, one call per
// distinct outcome rather than one per request.
func observed[In, Out any](o Observer, kind string, run func(time.Time, []In) ([]Out, error),
	outcome func(Out) string, report func(outcome string, n int)) func(time.Time, []In) ([]Out, error) {
	if o.Batch == nil && report == nil {
		return run
	}
	return func(deadline time.Time, ins []In) ([]Out, error) {
		start := time.Now()
		outs, err := run(deadline, ins)
		if o.Batch != nil {
			o.Batch(kind, len(ins), time.Since(start), err)
		}
		if err != nil || report == nil {
			return outs, err
		}
		// A handful of distinct outcomes: a short list beats a map here.
		type count struct {
			outcome string
			n       int
		}
		var counts [8]count
		seen := counts[:0]
	rows:
		for _, out := range outs {
			name := outcome(out)
			for i := range seen {
				if seen[i].outcome == name {
					seen[i].n++
					continue rows
				}
			}
			seen = append(seen, count{name, 1})
		}
		for _, c := range seen {
			report(c.outcome, c.n)
		}
		return outs, err
	}
}
