// Package driver sends the benchmark's checkouts and purchases: over the
// HTTP API (the service) or through sale.Service in-process (the database
// ceiling). The phases are written once against Driver, so both sides do
// exactly the same client work.
package driver

import (
	"context"
	"slices"
	"strconv"

	"github.com/flashsale/flashsale/internal/sale"
)

// Driver hands out workers, one per client.
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
	// Outcome is Held (checkout succeeded), Purchased, or the error code
	// of the answer ("sold_out", "item_unavailable", ...).
	Outcome string
	// Code is the hold code of a Held checkout.
	Code string
	// PurchaseID is the id of a Purchased answer.
	PurchaseID int64
	// Err is a transport error (HTTP) or a database error (SQL): no answer.
	Err error
}

// The outcomes the phases act on, named as the database and the API name
// them.
const (
	Held        = "held"
	Purchased   = "purchased"
	SoldOut     = "sold_out"
	Unavailable = "item_unavailable"
	UserLimit   = "user_limit_reached"
	RateLimited = "rate_limited"
)

// checkoutOutcomes are the outcomes the checkout queries record in
// checkout_attempts: every answer to a well-formed request.
var checkoutOutcomes = sale.CheckoutOutcomes()

// Stored reports whether a checkout answered with outcome was recorded in
// checkout_attempts. Anything else (validation errors, 5xx, transport
// errors) may not have been.
func Stored(outcome string) bool { return slices.Contains(checkoutOutcomes, outcome) }

// known interns the outcome strings the HTTP driver reads from response
// bodies, so counting them allocates nothing: the service's outcomes, then
// the API's own error codes.
var known = append(append(slices.Clone(checkoutOutcomes), sale.PurchaseOutcomes()...),
	"invalid_request", "unavailable", "internal", "not_found", "method_not_allowed",
	"request_too_large", "sale_not_found")

func intern(b []byte) string {
	for _, s := range known {
		if string(b) == s {
			return s
		}
	}
	return string(b)
}

// ErrorOutcome is the outcome of an answer that is not a success: the
// error code of its JSON body, else "http_" and its status.
func ErrorOutcome(status int, body []byte) string {
	// {"error":{"code":"sold_out",...}}: the first "code" is the error code.
	if c := jsonString(body, `"code":"`); c != nil {
		return intern(c)
	}
	return "http_" + strconv.Itoa(status)
}
