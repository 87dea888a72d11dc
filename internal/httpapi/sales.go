package httpapi

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/flashsale/flashsale/internal/readshare"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/salewatch"
)

// The display reads: a sale's counts, the current sale's items, an item's
// image. The current sale comes from the process's shared read
// (Options.Current), and answers are shared for Options.ReadMaxAge.

func (s *Server) currentSale(c echo.Context) error {
	snap := s.current.Get(c.Request().Context(), s.readMaxAge)
	if snap.Err != nil {
		return snap.Err
	}
	body, err := s.currentSaleJSON(snap)
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, body)
}

// encodedSale is a shared snapshot's answer: the clients polling the sale
// share its encoding as they share its read.
type encodedSale struct {
	snap *salewatch.Snapshot
	body []byte
}

func (s *Server) currentSaleJSON(snap *salewatch.Snapshot) ([]byte, error) {
	if e := s.currentEncoded.Load(); e != nil && e.snap == snap {
		return e.body, nil
	}
	body, err := encodeJSON(toSaleJSON(snap.Summary))
	if err != nil {
		return nil, err
	}
	s.currentEncoded.Store(&encodedSale{snap: snap, body: body})
	return body, nil
}

func (s *Server) saleByID(c echo.Context) error {
	id, err := parsePositive(c.Param("sale_id"), "sale_id")
	if err != nil {
		return err
	}
	body, err := readshare.Do(s.answers, c.Request().Context(), "sale:"+strconv.FormatInt(id, 10),
		func(ctx context.Context) ([]byte, error) {
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

const (
	defaultItemsPage = 100
	maxItemsPage     = 1000
)

func (s *Server) currentItems(c echo.Context) error {
	after, limit := int64(0), int64(defaultItemsPage)
	var ok bool
	if v := c.QueryParam("after"); v != "" {
		if after, ok = parseDecimal(v); !ok || after > math.MaxInt32 {
			return invalid("after must be a non-negative integer without a sign or leading zeros")
		}
	}
	if v := c.QueryParam("limit"); v != "" {
		if limit, ok = parseDecimal(v); !ok || limit < 1 || limit > maxItemsPage {
			return invalid(fmt.Sprintf("limit must be an integer from 1 to %d", maxItemsPage))
		}
	}
	available := false
	switch v := c.QueryParam("available"); v {
	case "", "false":
	case "true":
		available = true
	default:
		return invalid("available must be true or false")
	}
	list := s.sales.Items
	if available {
		list = s.sales.AvailableItems
	}
	key := fmt.Sprintf("current-items:%d:%d:%t", after, limit, available)
	body, err := readshare.DoSince(s.answers, c.Request().Context(), key, func(ctx context.Context) ([]byte, time.Time, error) {
		saleID, began, err := s.current.SaleID(ctx, s.readMaxAge)
		if err != nil {
			return nil, began, err
		}
		readAt := time.Now()
		items, err := list(ctx, saleID, int32(after), int32(limit))
		if err != nil {
			return nil, began, err
		}
		out := make([]itemStockJSON, len(items))
		for i, it := range items {
			out[i] = itemStockJSON{itemJSON: toItemJSON(it.Item), FreeUnits: it.FreeUnits, HeldUnits: it.HeldUnits}
		}
		var next *int32 // null on the last page
		if len(items) == int(limit) {
			next = &items[len(items)-1].ID
		}
		body, err := encodeJSON(map[string]any{"sale_id": saleID, "items": out, "next_after": next, "read_at": readAt.UTC()})
		return body, began, err
	})
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, body)
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
