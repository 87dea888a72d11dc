package sale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

// The outcomes a caller can act on. The HTTP layer maps each to a status
// code in one place; everything else is an internal error.
var (
	ErrNoActiveSale    = errors.New("no sale is open right now")
	ErrSaleNotFound    = errors.New("sale not found")
	ErrItemNotFound    = errors.New("item not found in this sale")
	ErrItemUnavailable = errors.New("this item has no free unit right now; other items do")
	ErrSoldOut         = errors.New("the sale has no free unit left")
	ErrUserLimit       = errors.New("user has reached the per-user limit for this sale")
	ErrCodeNotFound    = errors.New("checkout code not found")
	ErrCodeExpired     = errors.New("checkout code has expired")
	ErrUnavailable     = errors.New("database unavailable")
)

// outcomeErrors maps the outcome strings the checkout and purchase functions
// (and the checkout_attempts.outcome constraint) use to errors.
var outcomeErrors = map[string]error{
	"no_active_sale":     ErrNoActiveSale,
	"item_not_found":     ErrItemNotFound,
	"item_unavailable":   ErrItemUnavailable,
	"sold_out":           ErrSoldOut,
	"user_limit_reached": ErrUserLimit,
	"code_not_found":     ErrCodeNotFound,
	"code_expired":       ErrCodeExpired,
}

func outcomeError(outcome string) error {
	if err, ok := outcomeErrors[outcome]; ok {
		return err
	}
	return fmt.Errorf("unexpected outcome %q", outcome)
}

// interpret wraps a database error with context and marks the ones that mean
// "the database cannot be reached right now" as ErrUnavailable, so they are
// answered with 503 instead of 500. notFound, when not nil, replaces
// pgx.ErrNoRows.
func interpret(err error, what string, notFound error) error {
	if err == nil {
		return nil
	}
	if notFound != nil && errors.Is(err, pgx.ErrNoRows) {
		return notFound
	}
	if unreachable(err) {
		return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func unreachable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// connection exceptions, insufficient resources (too many
		// connections), operator intervention (shutdown, recovery).
		switch pgErr.Code[:2] {
		case "08", "53", "57":
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, puddle.ErrClosedPool)
}
