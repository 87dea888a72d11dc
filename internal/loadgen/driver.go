package loadgen

import (
	"context"
	"time"
)

// Driver runs checkouts and purchases: over the HTTP API (the service) or
// straight at PostgreSQL (the baseline). Herd and storm are written once
// against it, so both sides do exactly the same client work.
type Driver interface {
	// NewWorker returns the state of one client; a worker is used by one
	// goroutine only.
	NewWorker() Worker
}

// Worker is one client of a Driver.
type Worker interface {
	Checkout(ctx context.Context, userID string, itemID int64) Result
	Purchase(ctx context.Context, code string) Result
	// Close releases what the worker holds (its connection).
	Close()
}

// Result is one answer. Exactly one of Err and Outcome is set.
type Result struct {
	// Status is the HTTP status; 0 for the SQL driver.
	Status int
	// Outcome is "held" (checkout succeeded), "purchased", or the error
	// code of the answer ("sold_out", "item_unavailable", ...).
	Outcome string
	// Code is the hold code of a "held" checkout.
	Code string
	// PurchaseID is the id of a "purchased" answer.
	PurchaseID int64
	// Err is a transport error (HTTP) or a database error (SQL): no answer.
	Err error
}

// The outcomes loadgen acts on.
const (
	outHeld        = "held"
	outPurchased   = "purchased"
	outSoldOut     = "sold_out"
	outUnavailable = "item_unavailable"
	outUserLimit   = "user_limit_reached"
	outRateLimited = "rate_limited"
)

// storedOutcomes are the checkout outcomes the checkout queries record in
// checkout_attempts: every answer to a well-formed request. Anything else
// (validation errors, 5xx, transport errors) may not have been stored.
var storedOutcomes = map[string]bool{
	outHeld: true, outSoldOut: true, outUnavailable: true, outUserLimit: true,
	"item_not_found": true, "no_active_sale": true, outRateLimited: true,
}

// knownOutcomes interns the outcome strings the HTTP driver reads from
// response bodies, so counting them allocates nothing.
var knownOutcomes = []string{
	outHeld, outPurchased, outSoldOut, outUnavailable, outUserLimit,
	"item_not_found", "no_active_sale", "code_not_found", "code_expired",
	"invalid_request", "unavailable", "internal", "not_found", "method_not_allowed", outRateLimited,
	"request_too_large", "sale_not_found",
}

func intern(b []byte) string {
	for _, s := range knownOutcomes {
		if string(b) == s {
			return s
		}
	}
	return string(b)
}

// outcomeKey counts answers by status and outcome.
type outcomeKey struct {
	status  int
	outcome string
}

// maxErrorSamples bounds the error messages kept per endpoint.
const maxErrorSamples = 5

// endpointStats is one worker's record of one endpoint.
type endpointStats struct {
	hist     Histogram
	outcomes map[outcomeKey]int64
	errors   int64
	samples  []string
}

func newEndpointStats() *endpointStats {
	return &endpointStats{outcomes: make(map[outcomeKey]int64, 8)}
}

func (s *endpointStats) record(d time.Duration, r Result) {
	s.hist.Record(d)
	if r.Err != nil {
		s.errors++
		if len(s.samples) < maxErrorSamples {
			s.samples = append(s.samples, r.Err.Error())
		}
		return
	}
	s.outcomes[outcomeKey{r.Status, r.Outcome}]++
}

func (s *endpointStats) merge(o *endpointStats) {
	s.hist.Merge(&o.hist)
	for k, v := range o.outcomes {
		s.outcomes[k] += v
	}
	s.errors += o.errors
	for _, m := range o.samples {
		if len(s.samples) < maxErrorSamples {
			s.samples = append(s.samples, m)
		}
	}
}

// stored counts the answers whose attempt the database recorded.
func (s *endpointStats) stored() int64 {
	var n int64
	for k, v := range s.outcomes {
		if storedOutcomes[k.outcome] {
			n += v
		}
	}
	return n
}

// server errors: 5xx answers.
func (s *endpointStats) serverErrors() int64 {
	var n int64
	for k, v := range s.outcomes {
		if k.status >= 500 {
			n += v
		}
	}
	return n
}
