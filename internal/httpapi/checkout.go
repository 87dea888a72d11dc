package httpapi

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/flashsale/flashsale/internal/sale"
)

const (
	headerIdempotencyKey     = "Idempotency-Key"
	headerIdempotentReplayed = "Idempotent-Replayed"
)

func (s *Server) checkout(c echo.Context) error {
	req, err := s.checkoutRequest(c)
	if err != nil {
		return err
	}
	hold, err := s.sales.Checkout(c.Request().Context(), req)
	if hold.Replayed || errors.Is(err, sale.ErrReplayed) {
		c.Response().Header().Set(headerIdempotentReplayed, "true")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toCheckoutResponse(hold))
}

// checkoutRequest reads and checks a checkout, and applies the rate limits
// to it: everything the handler does before the sale is asked.
func (s *Server) checkoutRequest(c echo.Context) (sale.CheckoutRequest, error) {
	in, err := readFields(c, field{names: []string{"user_id"}, numbers: true}, field{names: []string{"id", "item_id"}, numbers: true},
		field{names: []string{"sku"}})
	if err != nil {
		return sale.CheckoutRequest{}, err
	}
	req := sale.CheckoutRequest{UserID: in["user_id"]}
	if req.UserID == "" {
		req.UserID = actingFor(c) // with auth on, the token names the user
	}
	switch sku, id := in["sku"], in["id"]; {
	case sku != "" && id != "":
		return req, invalid("name the item by id or by sku, not both")
	case sku != "":
		req.SKU = sku
	default:
		if req.ItemID, err = itemID(id, "id"); err != nil {
			return req, err
		}
	}
	if keys, sent := c.Request().Header[headerIdempotencyKey]; sent {
		if len(keys) != 1 {
			return req, invalid("send one Idempotency-Key header")
		}
		if req.IdempotencyKey = keys[0]; req.IdempotencyKey == "" {
			return req, invalid("Idempotency-Key must not be empty")
		}
	}
	if err := mayActFor(c, req.UserID); err != nil {
		return req, err
	}
	// Only a well-formed user id gets a bucket: the limiter's memory holds
	// one per id.
	if err := sale.ValidateUserID(req.UserID); err != nil {
		return req, err
	}
	// A checkout over a limit still goes to the sale, to be stored as
	// rate_limited and answered 429.
	req.RateLimited = s.checkoutLimited(c, req.UserID)
	return req, nil
}
