package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/flashsale/flashsale/internal/readshare"
	"github.com/flashsale/flashsale/internal/sale"
)

type itemJSON struct {
	ID       int32  `json:"id"`
	Name     string `json:"name"`
	ImageURL string `json:"image_url"`
	Price    string `json:"price"`
}

func toItemJSON(it sale.Item) itemJSON {
	return itemJSON{
		ID:       it.ID,
		Name:     it.Name,
		ImageURL: fmt.Sprintf("/items/%d/%d/image.svg", it.SaleID, it.ID),
		Price:    formatPrice(it.PriceCents),
	}
}

// formatPrice renders integer cents as a decimal string ("19.99"), so no
// client ever sees a float price.
func formatPrice(cents int32) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }

type checkoutResponse struct {
	Code string `json:"code"`
	// CheckoutCode is Code under the old system's name (see aliases.go).
	CheckoutCode string    `json:"checkout_code"`
	SaleID       int64     `json:"sale_id"`
	UserID       string    `json:"user_id"`
	Item         itemJSON  `json:"item"`
	ExpiresAt    time.Time `json:"expires_at"`
}

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
	return c.JSON(http.StatusCreated, checkoutResponse{
		Code: hold.Code, CheckoutCode: hold.Code, SaleID: hold.SaleID, UserID: hold.UserID, Item: toItemJSON(hold.Item),
		ExpiresAt: hold.ExpiresAt.UTC(),
	})
}

// checkoutRequest reads and checks a checkout, and applies the rate limits
// to it: everything the handler does before the sale is asked.
func (s *Server) checkoutRequest(c echo.Context) (sale.CheckoutRequest, error) {
	in, err := readFields(c, field{names: []string{"user_id"}, numbers: true}, field{names: []string{"id", "item_id"}, numbers: true})
	if err != nil {
		return sale.CheckoutRequest{}, err
	}
	req := sale.CheckoutRequest{UserID: in["user_id"]}
	if req.UserID == "" {
		req.UserID = actingFor(c) // with auth on, the token names the user
	}
	if req.ItemID, err = itemID(in["id"], "id"); err != nil {
		return req, err
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

type purchaseJSON struct {
	PurchaseID    int64     `json:"purchase_id"`
	SaleID        int64     `json:"sale_id"`
	UserID        string    `json:"user_id"`
	Item          itemJSON  `json:"item"`
	PurchasedAt   time.Time `json:"purchased_at"`
	UserPurchases int64     `json:"user_purchases"`
}

func toPurchaseJSON(p sale.Purchase) purchaseJSON {
	return purchaseJSON{
		PurchaseID: p.ID, SaleID: p.SaleID, UserID: p.UserID, Item: toItemJSON(p.Item),
		PurchasedAt: p.PurchasedAt.UTC(), UserPurchases: p.UserPurchases,
	}
}

func (s *Server) purchase(c echo.Context) error {
	in, err := readFields(c, field{names: []string{"code", "checkout_code"}})
	if err != nil {
		return err
	}
	code := in["code"]
	p, err := s.sales.Purchase(c.Request().Context(), code, actingFor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toPurchaseJSON(p))
}

type saleJSON struct {
	ID             int64     `json:"id"`
	StartsAt       time.Time `json:"starts_at"`
	EndsAt         time.Time `json:"ends_at"`
	UnitsTotal     int32     `json:"units_total"`
	UnitsSold      int64     `json:"units_sold"`
	UnitsHeld      int64     `json:"units_held"`
	UnitsAvailable int64     `json:"units_available"`
	Items          int32     `json:"items"`
	PerUserLimit   int32     `json:"per_user_limit"`
	HoldTTLSeconds float64   `json:"hold_ttl_seconds"`
	Buyers         int64     `json:"buyers"`
}

// writeSummary answers sale id with its counts; id 0 is the current sale.
func (s *Server) writeSummary(c echo.Context, id int64) error {
	body, err := readshare.Do(s.answers, c.Request().Context(), "sale:"+strconv.FormatInt(id, 10),
		func(ctx context.Context) ([]byte, error) {
			if id == 0 {
				cur, err := s.sales.Current(ctx)
				if err != nil {
					return nil, err
				}
				id = cur.ID
			}
			sum, err := s.sales.Summary(ctx, id)
			if err != nil {
				return nil, err
			}
			return encodeJSON(toSaleJSON(sum))
		})
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, body)
}

func toSaleJSON(sum sale.Summary) saleJSON {
	return saleJSON{
		ID: sum.ID, StartsAt: sum.StartsAt.UTC(), EndsAt: sum.EndsAt.UTC(), UnitsTotal: sum.UnitsTotal,
		UnitsSold: sum.UnitsSold, UnitsHeld: sum.UnitsHeld, UnitsAvailable: sum.UnitsAvailable,
		Items: sum.Items, PerUserLimit: sum.PerUserLimit, HoldTTLSeconds: sum.HoldTTL.Seconds(),
		Buyers: sum.Buyers,
	}
}

func (s *Server) currentSale(c echo.Context) error { return s.writeSummary(c, 0) }

func (s *Server) saleByID(c echo.Context) error {
	id, err := parsePositive(c.Param("sale_id"), "sale_id")
	if err != nil {
		return err
	}
	return s.writeSummary(c, id)
}

const (
	defaultItemsPage = 100
	maxItemsPage     = 1000
)

type itemStockJSON struct {
	itemJSON
	FreeUnits int64 `json:"free_units"`
}

func (s *Server) currentItems(c echo.Context) error {
	after, limit := int64(0), int64(defaultItemsPage)
	var err error
	if v := c.QueryParam("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 32); err != nil || after < 0 {
			return invalid("after must be a non-negative integer")
		}
	}
	if v := c.QueryParam("limit"); v != "" {
		if limit, err = strconv.ParseInt(v, 10, 32); err != nil || limit < 1 || limit > maxItemsPage {
			return invalid(fmt.Sprintf("limit must be an integer from 1 to %d", maxItemsPage))
		}
	}
	key := fmt.Sprintf("current-items:%d:%d", after, limit)
	body, err := readshare.Do(s.answers, c.Request().Context(), key, func(ctx context.Context) ([]byte, error) {
		cur, err := s.sales.Current(ctx)
		if err != nil {
			return nil, err
		}
		items, err := s.sales.Items(ctx, cur.ID, int32(after), int32(limit))
		if err != nil {
			return nil, err
		}
		out := make([]itemStockJSON, len(items))
		for i, it := range items {
			out[i] = itemStockJSON{itemJSON: toItemJSON(it.Item), FreeUnits: it.FreeUnits}
		}
		var next *int32 // null on the last page
		if len(items) == int(limit) {
			next = &items[len(items)-1].ID
		}
		return encodeJSON(map[string]any{"sale_id": cur.ID, "items": out, "next_after": next})
	})
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, body)
}

func (s *Server) userPurchases(c echo.Context) error {
	// Echo routes on the raw path when the client's escaping differs from
	// Go's (then URL.RawPath is set) and hands the parameter over as sent.
	userID := c.Param("user_id")
	if c.Request().URL.RawPath != "" {
		var err error
		if userID, err = url.PathUnescape(userID); err != nil {
			return invalid("user_id is not a valid path segment")
		}
	}
	if err := mayActFor(c, userID); err != nil {
		return err
	}
	var saleID int64
	if v := c.QueryParam("sale_id"); v != "" {
		id, err := parsePositive(v, "sale_id")
		if err != nil {
			return err
		}
		saleID = id
	} else {
		cur, err := s.sales.Current(c.Request().Context())
		if err != nil {
			return err
		}
		saleID = cur.ID
	}
	ps, err := s.sales.UserPurchases(c.Request().Context(), saleID, userID)
	if err != nil {
		return err
	}
	out := make([]purchaseJSON, len(ps))
	for i, p := range ps {
		out[i] = toPurchaseJSON(p)
	}
	return c.JSON(http.StatusOK, map[string]any{"sale_id": saleID, "user_id": userID, "count": len(out), "purchases": out})
}

func (s *Server) itemImage(c echo.Context) error {
	saleID, err := parsePositive(c.Param("sale_id"), "sale_id")
	if err != nil {
		return err
	}
	itemID, err := parsePositive(c.Param("item_id"), "item_id")
	if err != nil {
		return err
	}
	if itemID > math.MaxInt32 {
		return sale.ErrItemNotFound
	}
	it, err := s.sales.Item(c.Request().Context(), saleID, int32(itemID))
	if err != nil {
		return err
	}
	// An item never changes once its sale exists.
	c.Response().Header().Set("Cache-Control", "public, max-age=86400, immutable")
	return c.Blob(http.StatusOK, "image/svg+xml", itemSVG(it))
}

func invalid(msg string) error { return fmt.Errorf("%w: %s", sale.ErrInvalidRequest, msg) }

func parsePositive(v, name string) (int64, error) {
	if v == "" {
		return 0, invalid(name + " is required")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, invalid(name + " must be a positive integer")
	}
	return n, nil
}

// readFields takes each field from the query string or, when the request
// has a JSON body, from it, keyed by the field's first name. The query
// string wins over the body. JSON values are strings, or numbers where the
// field takes them, so {"id": 5} and {"id": "5"} both work.
func readFields(c echo.Context, fields ...field) (map[string]string, error) {
	out := make(map[string]string, len(fields))
	q := c.Request().URL.Query()
	for _, f := range fields {
		names := f.names
		for _, n := range names {
			if v := q.Get(n); v != "" {
				out[names[0]] = v
				break
			}
		}
	}
	if c.Request().Body == http.NoBody {
		return out, nil // net/http's body of a request without one
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		// Echo's BodyLimit stops reads past the limit with its own error
		// when no Content-Length was declared.
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) || errors.Is(err, echo.ErrStatusRequestEntityTooLarge) {
			return nil, echo.ErrStatusRequestEntityTooLarge
		}
		return nil, invalid("could not read the request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return out, nil
	}
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct != "" && !strings.HasPrefix(ct, echo.MIMEApplicationJSON) {
		return nil, invalid("the request body must be JSON (Content-Type: application/json)")
	}
	// encoding/json would turn invalid UTF-8 into U+FFFD silently; the
	// query string refuses it, so the body does too.
	if !utf8.Valid(body) {
		return nil, invalid("the request body must be valid UTF-8")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return nil, invalid("the request body is not a JSON object")
	}
	for _, f := range fields {
		names := f.names
		if out[names[0]] != "" {
			continue
		}
		for _, n := range names {
			raw, ok := obj[n]
			if !ok || string(raw) == "null" {
				continue
			}
			var str string
			var num json.Number
			switch {
			case json.Unmarshal(raw, &str) == nil:
				// encoding/json turns an escaped lone surrogate ("\ud800")
				// into U+FFFD silently; the same bytes in the query string
				// are refused, so they are here too.
				if strings.ContainsRune(str, utf8.RuneError) && !bytes.ContainsRune(raw, utf8.RuneError) &&
					!bytes.Contains(bytes.ToLower(raw), []byte(`\ufffd`)) {
					return nil, invalid(n + " must be valid UTF-8 (no lone surrogate escapes)")
				}
				out[names[0]] = str
			case f.numbers && json.Unmarshal(raw, &num) == nil:
				out[names[0]] = num.String()
			case f.numbers:
				return nil, invalid(n + " must be a string or a number")
			default:
				return nil, invalid(n + " must be a string")
			}
			break
		}
	}
	return out, nil
}

// field is one request field: its name, then the aliases it may come as.
type field struct {
	names []string
	// numbers accepts a JSON number as its decimal text (ids, and user ids
	// that are numbers); a code is text only.
	numbers bool
}
