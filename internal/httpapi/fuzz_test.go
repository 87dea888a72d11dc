package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/flashsale/flashsale/internal/testkit/apitest"
)

// The fuzz targets send whatever the fuzzer makes of a request to the real
// handler, backed by a real database: any panic (the recover middleware
// answers 500) or 5xx fails, and every refusal must have the JSON error
// shape. `make test` runs each for a few seconds, `make fuzz` for longer;
// the seeds below and in testdata/fuzz are the committed corpus.

// fuzzAPI is the API of a fresh server, called in process (no socket), so
// the fuzzer gets thousands of requests a second.
func fuzzAPI(f *testing.F) http.Handler {
	return apitest.Start(f, apitest.Options{}).API
}

// wireSafe reports whether s can reach the server in a header: net/http
// never delivers CR, LF or NUL in one.
func wireSafe(s string) bool { return !strings.ContainsAny(s, "\r\n\x00") }

func checkAnswer(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("%s %s: %d %s", req.Method, req.URL, rec.Code, rec.Body)
	}
	if rec.Code >= 400 {
		var body struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Code == "" || body.Error.Message == "" {
			t.Fatalf("%s %s: %d with a body not in the error shape: %q", req.Method, req.URL, rec.Code, rec.Body)
		}
	}
}

func serve(t *testing.T, api http.Handler, method string, u *url.URL, ctype, body string, header ...string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, "/", r)
	req.URL, req.RequestURI = u, u.RequestURI()
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, req)
	checkAnswer(t, req, rec)
}

func FuzzCheckout(f *testing.F) {
	for _, s := range [][4]string{
		{"user_id=ann&id=1", "", "", ""},
		{"user_id=user1&item_id=item1", "", "", "key-1"},
		{"", `{"user_id":"ann","id":2}`, "application/json", ""},
		{"", `{"user_id":7,"item_id":"item3"}`, "application/json", "k"},
		{"user_id=%ff&id=1", "", "", ""},
		{"", `{"user_id":"\ud800","id":1}`, "application/json", ""},
		{"id=99999999999999999999&user_id=x", "", "", ""},
		{"user_id=ann&id=1", `[1,2]`, "text/plain", "clé"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	api := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, query, body, ctype, key string) {
		if !wireSafe(ctype) || !wireSafe(key) {
			return
		}
		var header []string
		if key != "" {
			header = []string{"Idempotency-Key", key}
		}
		serve(t, api, http.MethodPost, &url.URL{Path: "/checkout", RawQuery: query}, ctype, body, header...)
	})
}

func FuzzPurchase(f *testing.F) {
	for _, s := range [][3]string{
		{"code=abc", "", ""},
		{"", `{"checkout_code":"abc"}`, "application/json"},
		{"", `{"code":123}`, "application/json"},
		{"code=%00", "", ""},
		{"", `{"code":null,"checkout_code":["x"]}`, "application/json"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	api := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, query, body, ctype string) {
		if !wireSafe(ctype) {
			return
		}
		serve(t, api, http.MethodPost, &url.URL{Path: "/purchase", RawQuery: query}, ctype, body)
	})
}

// FuzzPaths: the path parameters (user ids, sale and item ids) and query
// strings of the read endpoints.
func FuzzPaths(f *testing.F) {
	for _, p := range []string{
		"/users/ann/purchases", "/users/a%2Fb/purchases?sale_id=1", "/users/%E2%82%AC/purchases",
		"/sales/1", "/sales/0", "/sales/current/items?after=-1&limit=1001", "/items/1/1/image.svg",
		"/items/1/99999999999/image.svg", "/nope", "/checkout",
	} {
		f.Add(p)
	}
	api := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, path string) {
		u, err := url.ParseRequestURI(path)
		if err != nil || !wireSafe(path) || strings.ContainsAny(path, " \t") {
			return // net/http refuses such a request line before any handler
		}
		serve(t, api, http.MethodGet, u, "", "")
	})
}
