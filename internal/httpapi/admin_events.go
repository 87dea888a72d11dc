package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/flashsale/flashsale/internal/sale"
)

// Events as webhooks deliver them and GET /admin/events lists them: one
// JSON shape for both (openapi.yaml, webhooks), so a shop that polls and
// one that is pushed parse the same thing.

// Webhooks is what the admin API needs of the deliveries (package webhook).
type Webhooks interface {
	Redeliver(ctx context.Context, ids []int64) (int, error)
	RedeliverBetween(ctx context.Context, from, to time.Time) (int, error)
	Deliveries(ctx context.Context, id int64) ([]sale.Delivery, error)
	Failed(ctx context.Context, before int64, limit int) ([]sale.Delivery, error)
	Endpoints() []string
}

var errNoEndpoints = errors.New("no webhook endpoint is configured (WEBHOOK_URL): nothing to deliver to")

// EventJSON is an event as it is sent and listed.
type EventJSON struct {
	ID        int64     `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	SaleID    int64     `json:"sale_id"`
	Sequence  int64     `json:"sequence"`
	Data      eventData `json:"data"`
}

type eventData struct {
	Sale     eventSaleJSON      `json:"sale"`
	Purchase *eventPurchaseJSON `json:"purchase,omitempty"`
}

// eventSaleJSON is the sale's definition: what does not change once it
// runs (its end excepted, when an admin ends it).
type eventSaleJSON struct {
	ID             int64     `json:"id"`
	StartsAt       time.Time `json:"starts_at"`
	EndsAt         time.Time `json:"ends_at"`
	UnitsTotal     int32     `json:"units_total"`
	Items          int32     `json:"items"`
	PerUserLimit   int32     `json:"per_user_limit"`
	HoldTTLSeconds float64   `json:"hold_ttl_seconds"`
	DefinedBy      string    `json:"defined_by"`
}

type eventPurchaseJSON struct {
	ID          int64     `json:"id"`
	SaleID      int64     `json:"sale_id"`
	UserID      string    `json:"user_id"`
	Code        string    `json:"code"`
	Item        itemJSON  `json:"item"`
	Price       string    `json:"price"`
	Currency    string    `json:"currency"`
	PurchasedAt time.Time `json:"purchased_at"`
}

// NewEventJSON is an event in its one JSON shape.
func NewEventJSON(e sale.Event) EventJSON {
	s := e.Sale
	out := EventJSON{
		ID: e.ID, Type: string(e.Type), CreatedAt: e.OccurredAt.UTC(), SaleID: s.ID, Sequence: e.Sequence,
		Data: eventData{Sale: eventSaleJSON{
			ID: s.ID, StartsAt: s.StartsAt.UTC(), EndsAt: s.EndsAt.UTC(), UnitsTotal: s.UnitsTotal, Items: s.Items,
			PerUserLimit: s.PerUserLimit, HoldTTLSeconds: s.HoldTTL.Seconds(), DefinedBy: s.DefinedBy,
		}},
	}
	if out.Data.Sale.DefinedBy == "" {
		out.Data.Sale.DefinedBy = "generated"
	}
	if p := e.Purchase; p != nil {
		item := toItemJSON(p.Item)
		out.Data.Purchase = &eventPurchaseJSON{
			ID: p.ID, SaleID: p.SaleID, UserID: p.UserID, Code: p.Code, Item: item,
			Price: item.Price, Currency: item.Currency, PurchasedAt: p.PurchasedAt.UTC(),
		}
	}
	return out
}

// EventBody is an event as a webhook's body.
func EventBody(e sale.Event) ([]byte, error) {
	return json.Marshal(NewEventJSON(e))
}

const (
	defaultEventsPage = 100
	maxEventsPage     = 1000
)

func (s *Server) eventRoutes(g *echo.Group, mw []echo.MiddlewareFunc) {
	get := func(path string, h echo.HandlerFunc) {
		g.Match([]string{http.MethodGet, http.MethodHead}, path, h, mw...)
	}
	get("/events", s.adminEvents)
	get("/events/:event_id", s.adminEvent)
	g.POST("/events/:event_id/redeliver", s.adminRedeliver, mw...)
	g.POST("/events/redeliver", s.adminRedeliverBetween, mw...)
	// Echo would route a GET of that path to /events/:event_id (a 400 for
	// the id "redeliver"): it is the POST-only route, so 405.
	get("/events/redeliver", func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderAllow, http.MethodPost)
		return echo.ErrMethodNotAllowed
	})
	get("/webhooks/failed", s.adminFailedDeliveries)
}

func pageLimit(c echo.Context, def, most int) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return def, nil
	}
	n, err := parsePositive(v, "limit")
	if err != nil || n > int64(most) {
		return 0, invalid(fmt.Sprintf("limit must be from 1 to %d", most))
	}
	return int(n), nil
}

// cursor reads an optional id cursor: absent is 0, else a positive id.
func cursor(c echo.Context, name string) (int64, error) {
	v := c.QueryParam(name)
	if v == "" || v == "0" {
		return 0, nil
	}
	return parsePositive(v, name)
}

func (s *Server) adminEvents(c echo.Context) error {
	after, err := cursor(c, "after")
	if err != nil {
		return err
	}
	limit, err := pageLimit(c, defaultEventsPage, maxEventsPage)
	if err != nil {
		return err
	}
	evs, err := s.sales.Events(c.Request().Context(), after, limit)
	if err != nil {
		return err
	}
	// next_after is the cursor to ask with next, also when this page is
	// short: events published later have larger ids.
	out := struct {
		Events    []EventJSON `json:"events"`
		NextAfter int64       `json:"next_after"`
	}{Events: make([]EventJSON, len(evs)), NextAfter: after}
	for i, e := range evs {
		out.Events[i] = NewEventJSON(e)
		out.NextAfter = e.ID
	}
	return c.JSON(http.StatusOK, out)
}

type deliveryJSON struct {
	EventID       int64      `json:"event_id"`
	URL           string     `json:"url"`
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	MaxAttempts   int        `json:"max_attempts"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	FinishedAt    *time.Time `json:"finished_at"`
	LastError     string     `json:"last_error"`
	// JobID is River's job; a failed list pages by it.
	JobID int64 `json:"job_id"`
}

// deliveryStates are River's job states as the API names them.
var deliveryStates = map[string]string{
	"available": "waiting", "scheduled": "retrying", "retryable": "retrying", "pending": "waiting",
	"running": "sending", "completed": "delivered", "discarded": "failed", "cancelled": "cancelled",
}

func toDeliveryJSON(d sale.Delivery) deliveryJSON {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	state := deliveryStates[d.State]
	if d.Delivered {
		state = "delivered" // its delivery may still be sending others
	}
	return deliveryJSON{
		EventID: d.EventID, URL: d.URL, State: state, Attempts: d.Attempts, MaxAttempts: d.MaxAttempts,
		LastAttemptAt: opt(d.AttemptedAt), NextAttemptAt: opt(d.NextAttemptAt), FinishedAt: opt(d.FinalizedAt),
		LastError: d.LastError, JobID: d.JobID,
	}
}

func (s *Server) adminEvent(c echo.Context) error {
	id, err := parsePositive(c.Param("event_id"), "event_id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	evs, err := s.sales.EventsByID(ctx, []int64{id})
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		return sale.ErrEventNotFound
	}
	out := struct {
		Event      EventJSON      `json:"event"`
		Deliveries []deliveryJSON `json:"deliveries"`
	}{Event: NewEventJSON(evs[0]), Deliveries: []deliveryJSON{}}
	if s.webhooks != nil {
		ds, err := s.webhooks.Deliveries(ctx, id)
		if err != nil {
			return err
		}
		for _, d := range ds {
			out.Deliveries = append(out.Deliveries, toDeliveryJSON(d))
		}
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) requireEndpoints() error {
	if s.webhooks == nil || len(s.webhooks.Endpoints()) == 0 {
		return errNoEndpoints
	}
	return nil
}

func (s *Server) adminRedeliver(c echo.Context) error {
	id, err := parsePositive(c.Param("event_id"), "event_id")
	if err != nil {
		return err
	}
	if err := s.requireEndpoints(); err != nil {
		return err
	}
	n, err := s.webhooks.Redeliver(c.Request().Context(), []int64{id})
	if err != nil {
		return err
	}
	if n == 0 {
		return sale.ErrEventNotFound
	}
	return c.JSON(http.StatusAccepted, map[string]int{"queued": n})
}

func (s *Server) adminRedeliverBetween(c echo.Context) error {
	var at [2]time.Time
	for i, name := range []string{"from", "to"} {
		t, err := time.Parse(time.RFC3339, c.QueryParam(name))
		if err != nil {
			return invalid(name + " must be an RFC 3339 time such as 2026-12-24T18:00:00Z")
		}
		at[i] = t
	}
	if !at[0].Before(at[1]) {
		return invalid("from must be before to")
	}
	if err := s.requireEndpoints(); err != nil {
		return err
	}
	n, err := s.webhooks.RedeliverBetween(c.Request().Context(), at[0], at[1])
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]int{"queued": n})
}

func (s *Server) adminFailedDeliveries(c echo.Context) error {
	before, err := cursor(c, "before")
	if err != nil {
		return err
	}
	limit, err := pageLimit(c, defaultEventsPage, maxEventsPage)
	if err != nil {
		return err
	}
	out := struct {
		Deliveries []deliveryJSON `json:"deliveries"`
		NextBefore *int64         `json:"next_before"`
	}{Deliveries: []deliveryJSON{}}
	if s.webhooks == nil {
		return c.JSON(http.StatusOK, out)
	}
	ds, err := s.webhooks.Failed(c.Request().Context(), before, limit)
	if err != nil {
		return err
	}
	for _, d := range ds {
		out.Deliveries = append(out.Deliveries, toDeliveryJSON(d))
	}
	// A page is limit deliveries (jobs), each with the events it gave up.
	jobs := 0
	for i, d := range ds {
		if i == 0 || d.JobID != ds[i-1].JobID {
			jobs++
		}
	}
	if jobs == limit {
		next := ds[len(ds)-1].JobID
		out.NextBefore = &next
	}
	return c.JSON(http.StatusOK, out)
}
