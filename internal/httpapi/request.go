package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/flashsale/flashsale/internal/sale"
)

// invalid is a client's mistake, answered 400 invalid_request with msg.
func invalid(msg string) error { return fmt.Errorf("%w: %s", sale.ErrInvalidRequest, msg) }

// parsePositive reads an id in its one form, as the API document's
// pattern gives it: decimal digits without a sign or a leading zero (not
// +7 or 007), so one id has one spelling in logs, caches and limits.
func parsePositive(v, name string) (int64, error) {
	if v == "" {
		return 0, invalid(name + " is required")
	}
	n, ok := parseDecimal(v)
	if !ok || n < 1 {
		return 0, invalid(name + " must be a positive integer without a sign or leading zeros")
	}
	return n, nil
}

// parseDecimal reads a non-negative decimal in its one form: digits only,
// no leading zero but in 0 itself.
func parseDecimal(v string) (int64, bool) {
	if v == "" || v[0] < '0' || v[0] > '9' || len(v) > 1 && v[0] == '0' {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 63)
	return int64(n), err == nil
}

// field is one request field: its name, then the aliases it may come as.
type field struct {
	names []string
	// numbers accepts a JSON number as its decimal text (ids, and user ids
	// that are numbers); a code is text only.
	numbers bool
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
