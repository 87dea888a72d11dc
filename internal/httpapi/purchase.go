package httpapi

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
)

func (s *Server) purchase(c echo.Context) error {
	in, err := readFields(c, field{names: []string{"code", "checkout_code"}})
	if err != nil {
		return err
	}
	p, err := s.sales.Purchase(c.Request().Context(), in["code"], actingFor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toPurchaseJSON(p))
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
