package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/flashsale/flashsale/internal/sale"
)

// errorBody is the one error shape of the API:
// {"error":{"code":"snake_case","message":"..."}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Fields says which fields of a sale definition break which rule.
	Fields []sale.FieldError `json:"fields,omitempty"`
}

// apiErrors is the only place where errors become status codes.
// A detailed entry's message is the whole error, which says what was wrong.
var apiErrors = []struct {
	err      error
	status   int
	code     string
	detailed bool
}{
	{sale.ErrInvalidDefinition, http.StatusBadRequest, "invalid_definition", true},
	{sale.ErrInvalidRequest, http.StatusBadRequest, "invalid_request", true},
	{errUnauthorized, http.StatusUnauthorized, "unauthorized", true},
	{errForbidden, http.StatusForbidden, "forbidden", false},
	{errNotAdmin, http.StatusForbidden, "forbidden", false},
	{sale.ErrNotCodeHolder, http.StatusForbidden, "forbidden", false},
	{errHeadersTooLarge, http.StatusRequestHeaderFieldsTooLarge, "request_headers_too_large", false},
	{errTransferEncoding, http.StatusBadRequest, "invalid_request", false},
	{sale.ErrKeyReused, http.StatusUnprocessableEntity, "idempotency_key_reused", false},
	{sale.ErrRateLimited, http.StatusTooManyRequests, "rate_limited", false},
	{sale.ErrItemNotFound, http.StatusNotFound, "item_not_found", false},
	{sale.ErrSaleNotFound, http.StatusNotFound, "sale_not_found", false},
	{sale.ErrEventNotFound, http.StatusNotFound, "event_not_found", false},
	{errNoEndpoints, http.StatusConflict, "no_webhook_endpoints", true},
	{sale.ErrCodeNotFound, http.StatusNotFound, "code_not_found", false},
	{sale.ErrItemUnavailable, http.StatusConflict, "item_unavailable", false},
	{sale.ErrSoldOut, http.StatusConflict, "sold_out", false},
	{sale.ErrUserLimit, http.StatusConflict, "user_limit_reached", false},
	{sale.ErrSalePaused, http.StatusConflict, "sale_paused", false},
	{sale.ErrWindowTaken, http.StatusConflict, "sale_overlap", true},
	{sale.ErrSaleStarted, http.StatusConflict, "sale_started", true},
	{sale.ErrSaleNotRunning, http.StatusConflict, "sale_not_running", true},
	{sale.ErrCodeExpired, http.StatusGone, "code_expired", false},
	{sale.ErrNoActiveSale, http.StatusServiceUnavailable, "no_active_sale", false},
	// Before ErrUnavailable, which it wraps: its message says the request
	// may have been stored.
	{sale.ErrOutcomeUnknown, http.StatusServiceUnavailable, "unavailable", false},
	{sale.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", false},
}

// echoCodes names the errors Echo itself raises (routing, body limit).
var echoCodes = map[int]string{
	http.StatusNotFound:              "not_found",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusRequestEntityTooLarge: "request_too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusServiceUnavailable:    "unavailable",
}

func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, body := apiError(err)
	if status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", "1")
	}
	// A 503 is expected (no sale open yet, database away) and shows in the
	// request log; anything else at 500 is a bug worth its own line.
	if status >= 500 && status != http.StatusServiceUnavailable {
		s.log.ErrorContext(c.Request().Context(), "request failed", "err", err,
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(status)
	} else {
		err = c.JSONBlob(status, errorJSON(body))
	}
	if err != nil {
		s.log.Warn("write error response", "err", err)
	}
}

// encodedErrors holds the body of each error whose message never varies,
// encoded once: a sold-out storm answers the same bytes tens of thousands
// of times a second (and Echo's c.JSON would parse the query string again
// to look for ?pretty).
var encodedErrors = func() map[[2]string][]byte {
	m := make(map[[2]string][]byte, len(apiErrors))
	for _, e := range apiErrors {
		if !e.detailed {
			m[[2]string{e.code, e.err.Error()}] = encodeError(errorDetail{Code: e.code, Message: e.err.Error()})
		}
	}
	return m
}()

// errorJSON is the API's error shape for d, followed by a newline like
// every other JSON answer.
func errorJSON(d errorDetail) []byte {
	if b, ok := encodedErrors[[2]string{d.Code, d.Message}]; ok && d.Fields == nil {
		return b
	}
	return encodeError(d)
}

func encodeError(d errorDetail) []byte {
	b, err := encodeJSON(errorBody{Error: d})
	if err != nil {
		panic(err) // two strings always encode
	}
	return b
}

// encodeJSON encodes v as jsonSerializer writes it: no HTML escaping, a
// newline at the end.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode answer: %w", err)
	}
	return b.Bytes(), nil
}

// apiError is the status and body that err is answered with.
func apiError(err error) (int, errorDetail) {
	status, body := http.StatusInternalServerError, errorDetail{Code: "internal", Message: "internal error"}
	var he *echo.HTTPError
	matched := false
	for _, e := range apiErrors {
		if errors.Is(err, e.err) {
			status, body, matched = e.status, errorDetail{Code: e.code, Message: e.err.Error()}, true
			if e.detailed {
				body.Message = err.Error()
			}
			var def *sale.DefinitionError
			if errors.As(err, &def) {
				body.Fields = def.Fields
			}
			break
		}
	}
	switch {
	case matched:
	case errors.As(err, &he):
		status = he.Code
		body = errorDetail{Code: echoCodes[he.Code], Message: http.StatusText(he.Code)}
		if body.Code == "" {
			body.Code = "invalid_request"
		}
		if status >= 500 {
			body.Code = "internal"
		}
	}
	return status, body
}
