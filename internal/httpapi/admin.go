package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/sale"
)

// The admin API (/admin/): a shop defines its sales and controls a running
// one. Off unless ADMIN_TOKEN is set or JWT auth is on with an admin role
// (ADMIN_JWT_ROLE); then every route needs a bearer token that is one of
// the admin tokens, or a valid JWT with the role. Who it was is recorded
// with every change (admin_actions).

// AdminAccess says who may use the admin API; its zero value turns it off.
type AdminAccess struct {
	Tokens auth.AdminTokens
	// JWT and Role: a valid token of JWT whose role claim holds Role.
	JWT  *auth.Verifier
	Role string
}

func (a AdminAccess) on() bool { return a.Tokens.Configured() || (a.JWT != nil && a.Role != "") }

// maxAdminBody bounds a definition: 10,000 items of a few hundred bytes.
const maxAdminBody = "8M"

// adminKey is where the acting admin's name is kept on the request.
const adminKey = "admin_actor"

var errNotAdmin = errors.New("the token does not grant the admin role")

func (s *Server) requireAdmin(a AdminAccess) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			// The scheme is case-insensitive (RFC 9110 11.1), as for the
			// shoppers' tokens (echo-jwt).
			scheme, token, _ := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
			token = strings.TrimSpace(token)
			if !strings.EqualFold(scheme, "Bearer") || token == "" {
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="flashsale-admin"`)
				return fmt.Errorf("%w: an admin token (Authorization: Bearer ...) is required", errUnauthorized)
			}
			if name, ok := a.Tokens.Name(token); ok {
				c.Set(adminKey, "token:"+name)
				return next(c)
			}
			if a.JWT != nil && a.Role != "" {
				sub, err := a.JWT.AdminSubject(token, a.Role)
				switch {
				case err == nil:
					c.Set(adminKey, "jwt:"+sub)
					return next(c)
				case errors.Is(err, auth.ErrNotAdmin):
					return errNotAdmin
				}
			}
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="flashsale-admin", error="invalid_token"`)
			return fmt.Errorf("%w: the token is not an admin token", errUnauthorized)
		}
	}
}

func actor(c echo.Context) string {
	a, _ := c.Get(adminKey).(string)
	return a
}

func (s *Server) adminRoutes(a AdminAccess) {
	if !a.on() {
		return
	}
	// The middleware goes on each route, not on the group: a group with
	// middleware routes every /admin/* path and method to it, so an
	// unknown path would answer 401 and a wrong method 404, not 405.
	mw := []echo.MiddlewareFunc{s.requireAdmin(a), middleware.BodyLimit(maxAdminBody)}
	g := s.echo.Group("/admin")
	get := func(path string, h echo.HandlerFunc) {
		g.Match([]string{http.MethodGet, http.MethodHead}, path, h, mw...) // HEAD wherever GET is
	}
	get("/sales", s.adminListSales)
	g.POST("/sales", s.adminCreateSale, mw...)
	get("/sales/:sale_id", s.adminGetSale)
	g.PUT("/sales/:sale_id", s.adminReplaceSale, mw...)
	g.DELETE("/sales/:sale_id", s.adminDeleteSale, mw...)
	get("/sales/:sale_id/audit", s.adminAudit)
	for _, action := range []sale.Action{sale.Pause, sale.Resume, sale.End} {
		g.POST("/sales/:sale_id/"+string(action), s.adminControl(action), mw...)
	}
	s.eventRoutes(g, mw) // admin_events.go
}

// isAdminPath: the admin routes take larger bodies than the API's 16 KB.
func isAdminPath(c echo.Context) bool {
	return strings.HasPrefix(c.Request().URL.Path, "/admin/")
}

// AdminSale is the admin API's sale: its counts, status and who defined it.
type AdminSale struct {
	saleJSON
	Status    string     `json:"status"`
	DefinedBy string     `json:"defined_by"`
	PausedAt  *time.Time `json:"paused_at"`
	// Definition is the sale as a document that POST or PUT (or `server
	// sale apply -f`) takes; only on GET of one sale and its changes.
	Definition *sale.Definition `json:"definition,omitempty"`
}

// NewAdminSale is a sale as the admin API answers it (and `server sale
// list -json` prints it), with its status at now; with items, also its
// definition.
func NewAdminSale(sum sale.Summary, items []sale.Item, now time.Time) AdminSale {
	out := AdminSale{saleJSON: toSaleJSON(sum), Status: sale.Status(sum.Sale, now), DefinedBy: sum.DefinedBy}
	if out.DefinedBy == "" {
		out.DefinedBy = "generated"
	}
	if !sum.PausedAt.IsZero() {
		t := sum.PausedAt.UTC()
		out.PausedAt = &t
	}
	if items != nil {
		d := sale.DefinitionOf(sum.Sale, items)
		out.Definition = &d
	}
	return out
}

// adminSaleAnswer reads the sale back with its counts and items: what
// every admin route that changes a sale answers.
func (s *Server) adminSaleAnswer(c echo.Context, status int, id int64, extra map[string]any) error {
	sum, items, err := s.sales.SaleWithItems(c.Request().Context(), id)
	if err != nil {
		return err
	}
	body := map[string]any{"sale": NewAdminSale(sum, items, time.Now())}
	for k, v := range extra {
		body[k] = v
	}
	return c.JSON(status, body)
}

const (
	defaultSalesPage = 50
)

func (s *Server) adminListSales(c echo.Context) error {
	since := time.Now()
	if v := c.QueryParam("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return invalid("since must be an RFC 3339 time such as 2026-12-24T18:00:00Z")
		}
		since = t
	}
	limit := int64(defaultSalesPage)
	if v := c.QueryParam("limit"); v != "" {
		n, err := parsePositive(v, "limit")
		if err != nil {
			return err
		}
		limit = n
	}
	if limit > sale.MaxListedSales {
		return invalid(fmt.Sprintf("limit must be from 1 to %d", sale.MaxListedSales))
	}
	sales, err := s.sales.ListSales(c.Request().Context(), since, int(limit))
	if err != nil {
		return err
	}
	out := struct {
		Sales     []AdminSale `json:"sales"`
		NextSince *time.Time  `json:"next_since"`
	}{Sales: make([]AdminSale, len(sales))}
	for i, sum := range sales {
		out.Sales[i] = NewAdminSale(sum, nil, time.Now())
	}
	if len(sales) == int(limit) {
		t := sales[len(sales)-1].EndsAt.UTC()
		out.NextSince = &t
	}
	return c.JSON(http.StatusOK, out)
}

// readDefinition reads a definition as JSON, or its items as CSV with the
// rest from the query string (starts_at, ends_at, per_user_limit,
// hold_ttl).
func readDefinition(c echo.Context) (sale.Definition, error) {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) || errors.Is(err, echo.ErrStatusRequestEntityTooLarge) {
			return sale.Definition{}, echo.ErrStatusRequestEntityTooLarge
		}
		return sale.Definition{}, invalid("could not read the request body")
	}
	ct, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	switch ct {
	case echo.MIMEApplicationJSON, "":
		return sale.ParseDefinition(bytes.NewReader(body))
	case "text/csv":
		items, err := sale.ParseItemsCSV(bytes.NewReader(body))
		if err != nil {
			return sale.Definition{}, err
		}
		d := sale.Definition{Items: items, HoldTTL: c.QueryParam("hold_ttl")}
		bad := &sale.DefinitionError{}
		for _, f := range []struct {
			name string
			to   *time.Time
		}{{"starts_at", &d.StartsAt}, {"ends_at", &d.EndsAt}} {
			if v := c.QueryParam(f.name); v != "" {
				t, err := time.Parse(time.RFC3339, v)
				if err != nil {
					bad.Fields = append(bad.Fields, sale.FieldError{Field: f.name, Message: "must be an RFC 3339 time"})
				}
				*f.to = t
			}
		}
		if v := c.QueryParam("per_user_limit"); v != "" {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				bad.Fields = append(bad.Fields, sale.FieldError{Field: "per_user_limit", Message: "must be an integer"})
			}
			d.PerUserLimit = int32(n)
		}
		if len(bad.Fields) > 0 {
			return sale.Definition{}, bad
		}
		return d, nil
	}
	return sale.Definition{}, echo.ErrUnsupportedMediaType
}

func (s *Server) adminCreateSale(c echo.Context) error {
	d, err := readDefinition(c)
	if err != nil {
		return err
	}
	made, err := s.sales.DefineSale(c.Request().Context(), actor(c), d)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/admin/sales/%d", made.ID))
	return s.adminSaleAnswer(c, http.StatusCreated, made.ID, nil)
}

func (s *Server) adminReplaceSale(c echo.Context) error {
	id, err := parsePositive(c.Param("sale_id"), "sale_id")
	if err != nil {
		return err
	}
	d, err := readDefinition(c)
	if err != nil {
		return err
	}
	if _, err := s.sales.ReplaceSale(c.Request().Context(), actor(c), id, d); err != nil {
		return err
	}
	return s.adminSaleAnswer(c, http.StatusOK, id, nil)
}

func (s *Server) adminGetSale(c echo.Context) error {
	id, err := parsePositive(c.Param("sale_id"), "sale_id")
	if err != nil {
		return err
	}
	return s.adminSaleAnswer(c, http.StatusOK, id, nil)
}

func (s *Server) adminDeleteSale(c echo.Context) error {
	id, err := parsePositive(c.Param("sale_id"), "sale_id")
	if err != nil {
		return err
	}
	if err := s.sales.DeleteSale(c.Request().Context(), actor(c), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) adminControl(action sale.Action) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := parsePositive(c.Param("sale_id"), "sale_id")
		if err != nil {
			return err
		}
		_, changed, err := s.sales.ControlSale(c.Request().Context(), actor(c), id, action)
		if err != nil {
			return err
		}
		return s.adminSaleAnswer(c, http.StatusOK, id, map[string]any{"changed": changed})
	}
}

type auditEntryJSON struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	SaleID int64     `json:"sale_id"`
	// Before and After are the sale as the audit trail keeps it (the
	// sale_documents view); null before a create and after a delete.
	Before jsonRaw `json:"before"`
	After  jsonRaw `json:"after"`
}

// jsonRaw is stored JSON passed through as it is; null when empty.
type jsonRaw []byte

func (j jsonRaw) MarshalJSON() ([]byte, error) {
	if len(j) == 0 {
		return []byte("null"), nil
	}
	return j, nil
}

func (s *Server) adminAudit(c echo.Context) error {
	id, err := parsePositive(c.Param("sale_id"), "sale_id")
	if err != nil {
		return err
	}
	trail, err := s.sales.AuditTrail(c.Request().Context(), id)
	if err != nil {
		return err
	}
	out := struct {
		Actions []auditEntryJSON `json:"actions"`
	}{Actions: make([]auditEntryJSON, len(trail))}
	for i, a := range trail {
		out.Actions[i] = auditEntryJSON{ID: a.ID, At: a.At.UTC(), Actor: a.Actor, Action: string(a.Action), SaleID: a.SaleID,
			Before: a.Before, After: a.After}
	}
	return c.JSON(http.StatusOK, out)
}
