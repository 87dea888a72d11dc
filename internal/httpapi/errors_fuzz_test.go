package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
)

// FuzzErrorMapping: whatever context wraps an API error, it is answered
// with its own status and code, in the error shape, and never as a 500.
func FuzzErrorMapping(f *testing.F) {
	f.Add(uint8(0), "checkout", true)
	f.Add(uint8(5), "", false)
	f.Add(uint8(200), "%w %v \x00", true)
	s := &Server{log: slog.New(slog.DiscardHandler)}
	e := echo.New()
	f.Fuzz(func(t *testing.T, pick uint8, context string, head bool) {
		want := apiErrors[int(pick)%len(apiErrors)]
		err := fmt.Errorf("%s: %w", context, want.err)
		if !head {
			err = fmt.Errorf("%w (%s)", err, context)
		}
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		rec := httptest.NewRecorder()
		s.handleError(err, e.NewContext(httptest.NewRequest(method, "/", nil), rec))
		// The first entry err matches wins: ErrOutcomeUnknown wraps ErrUnavailable.
		for _, e := range apiErrors {
			if errors.Is(err, e.err) {
				want = e
				break
			}
		}
		if rec.Code != want.status {
			t.Fatalf("%v: answered %d, want %d", err, rec.Code, want.status)
		}
		if head {
			if rec.Body.Len() != 0 {
				t.Fatalf("HEAD answered a body: %q", rec.Body)
			}
			return
		}
		var body errorBody
		if jerr := json.Unmarshal(rec.Body.Bytes(), &body); jerr != nil || body.Error.Code != want.code || body.Error.Message == "" {
			t.Fatalf("%v: body %q, want code %s", err, rec.Body, want.code)
		}
	})
}
