package spectest_test

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/flashsale/flashsale/internal/testkit/spectest"
)

func load(t *testing.T) *spectest.Spec {
	t.Helper()
	s, err := spectest.Load()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// exchange builds what the server would have seen and written.
func exchange(method, target, ctype, reqBody string, status int, header map[string]string, body string) spectest.Exchange {
	req := httptest.NewRequest(method, target, strings.NewReader(reqBody))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	h := http.Header{}
	for k, v := range header {
		h.Set(k, v)
	}
	return spectest.Exchange{Request: req, RequestBody: []byte(reqBody), Status: status, Header: h, Body: []byte(body)}
}

const hold = `{"code":"abc","checkout_code":"abc","sale_id":1,"user_id":"u","item":{"id":1,"sku":"item1","name":"Mug","description":"","image_url":"/items/1/1/image.svg","price":"9.99","currency":"USD"},"expires_at":"2030-01-01T00:00:00Z"}`

var (
	jsonID  = map[string]string{"Content-Type": "application/json", "X-Request-Id": "r1"}
	retryID = map[string]string{"Content-Type": "application/json", "X-Request-Id": "r1", "Retry-After": "1"}
)

func errBody(code string) string { return fmt.Sprintf(`{"error":{"code":%q,"message":"m"}}`, code) }

// TestCheckAcceptsDocumentedExchanges keeps the bad cases below honest: each
// differs from one of these in the one thing it gets wrong.
func TestCheckAcceptsDocumentedExchanges(t *testing.T) {
	t.Parallel()
	s := load(t)
	for name, x := range map[string]spectest.Exchange{
		"healthz":              exchange("GET", "/healthz", "", "", 200, jsonID, `{"status":"ok"}`),
		"health alias":         exchange("GET", "/health", "", "", 200, jsonID, `{"status":"ok"}`),
		"HEAD without a body":  exchange("HEAD", "/healthz", "", "", 200, jsonID, ""),
		"checkout by query":    exchange("POST", "/checkout?user_id=u&id=1", "", "", 201, jsonID, hold),
		"checkout old item id": exchange("POST", "/checkout", "application/json", `{"user_id":"u","item_id":"item7"}`, 201, jsonID, hold),
		"empty after":          exchange("GET", "/sales/current/items?after=&limit=2", "", "", 200, jsonID, `{"sale_id":1,"items":[],"next_after":null,"read_at":"2026-12-04T15:00:00Z"}`),
		"bad request 400":      exchange("POST", "/checkout?id=0&user_id=u", "", "", 400, jsonID, errBody("invalid_request")),
		"no sale":              exchange("GET", "/readyz", "", "", 503, retryID, errBody("no_active_sale")),
		"unknown path":         exchange("GET", "/nope", "", "", 404, jsonID, errBody("not_found")),
		"wrong method":         exchange("GET", "/checkout", "", "", 405, map[string]string{"Content-Type": "application/json", "X-Request-Id": "r1", "Allow": "OPTIONS, POST"}, errBody("method_not_allowed")),
		"CORS preflight":       exchange("OPTIONS", "/checkout", "", "", 204, nil, ""),
		"HTML index":           exchange("GET", "/", "", "", 200, map[string]string{"Content-Type": "text/html; charset=UTF-8", "X-Request-Id": "r1"}, "<!doctype html>"),
		"event stream":         exchange("GET", "/sales/current/events", "", "", 200, map[string]string{"Content-Type": "text/event-stream", "X-Request-Id": "r1"}, ""),
		"trailing slash":       exchange("GET", "/healthz/", "", "", 404, jsonID, errBody("not_found")),
		"checkout by sku":      exchange("POST", "/checkout?user_id=u&sku=MUG-1", "", "", 201, jsonID, hold),
		"checkout paused":      exchange("POST", "/checkout?user_id=u&sku=MUG-1", "", "", 409, jsonID, errBody("sale_paused")),
		"definition's fields": exchange("POST", "/admin/sales", "application/json", `{"starts_at":"2030-01-01T00:00:00Z","ends_at":"2030-01-01T01:00:00Z","items":[]}`,
			400, jsonID, `{"error":{"code":"invalid_definition","message":"m","fields":[{"field":"items","message":"m"}]}}`),
	} {
		if problems := s.Check(x); len(problems) > 0 {
			t.Errorf("%s: %v", name, problems)
		}
	}
}

// TestCheckReportsWhatTheDocumentLacks: an undocumented status, field,
// error code or header, and an invalid request answered 2xx, each fail.
func TestCheckReportsWhatTheDocumentLacks(t *testing.T) {
	t.Parallel()
	s := load(t)
	for _, c := range []struct {
		name string
		x    spectest.Exchange
		want string // in one of the problems
	}{
		{"undocumented status", exchange("GET", "/healthz", "", "", 418, jsonID, `{"status":"ok"}`), "418"},
		{"undocumented field", exchange("GET", "/healthz", "", "", 200, jsonID, `{"status":"ok","uptime":3}`), "uptime"},
		{"missing field", exchange("POST", "/checkout?user_id=u&id=1", "", "", 201, jsonID, strings.Replace(hold, `"sale_id":1,`, "", 1)), "sale_id"},
		{"wrong field type", exchange("POST", "/checkout?user_id=u&id=1", "", "", 201, jsonID, strings.Replace(hold, `"9.99"`, `9.99`, 1)), "price"},
		{"error code of another status", exchange("GET", "/sales/5", "", "", 404, jsonID, errBody("item_not_found")), "sale_not_found"},
		{"undocumented error code", exchange("POST", "/purchase?code=c", "", "", 409, jsonID, errBody("sold_out")), "user_limit_reached"},
		{"error without a message", exchange("GET", "/sales/5", "", "", 404, jsonID, `{"error":{"code":"sale_not_found"}}`), "message"},
		{"503 without Retry-After", exchange("GET", "/readyz", "", "", 503, jsonID, errBody("unavailable")), "Retry-After"},
		{"no X-Request-ID", exchange("GET", "/healthz", "", "", 200, map[string]string{"Content-Type": "application/json"}, `{"status":"ok"}`), "X-Request-ID"},
		{"undocumented Content-Type", exchange("GET", "/healthz", "", "", 200, map[string]string{"Content-Type": "text/plain", "X-Request-Id": "r1"}, "ok"), "text/plain"},
		{"invalid request answered 201", exchange("POST", "/checkout?user_id=u&id=0", "", "", 201, jsonID, hold), "answered 201, not 4xx"},
		{"invalid body answered 201", exchange("POST", "/checkout", "application/json", `{"user_id":"u","id":{}}`, 201, jsonID, hold), "answered 201, not 4xx"},
		{"unknown path answered 200", exchange("GET", "/nope", "", "", 200, jsonID, `{}`), "not 200"},
		{"unknown path with another code", exchange("GET", "/nope", "", "", 404, jsonID, errBody("sale_not_found")), "not_found"},
		{"405 without Allow", exchange("GET", "/checkout", "", "", 405, jsonID, errBody("method_not_allowed")), "Allow"},
		{"HEAD with an undocumented status", exchange("HEAD", "/healthz", "", "", 404, jsonID, ""), "404"},
		{"preflight failing", exchange("OPTIONS", "/checkout", "", "", 500, nil, ""), "500"},
		{"a shop image that is not http", exchange("POST", "/checkout?user_id=u&id=1", "", "", 201, jsonID,
			strings.Replace(hold, `"/items/1/1/image.svg"`, `"javascript:alert(1)"`, 1)), "image_url"},
		{"fields of another shape", exchange("POST", "/admin/sales", "text/csv", "sku\n", 400, jsonID,
			`{"error":{"code":"invalid_definition","message":"m","fields":[{"path":"items"}]}}`), "path"},
		{"trailing slash answered as without", exchange("GET", "/healthz/", "", "", 200, jsonID, `{"status":"ok"}`), "not 200"},
		{"stream of another type", exchange("GET", "/sales/current/events", "", "", 200, map[string]string{"Content-Type": "text/plain", "X-Request-Id": "r1"}, ""), "text/plain"},
	} {
		problems := s.Check(c.x)
		if !strings.Contains(strings.Join(problems, "\n"), c.want) {
			t.Errorf("%s: problems %q, want one mentioning %q", c.name, problems, c.want)
		}
	}
}

// reports is a testing.TB that keeps what Errorf was given.
type reports struct {
	testing.TB
	mu   sync.Mutex
	msgs []string
}

func (r *reports) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

// serve runs handler, wrapped with rep as its testing.TB, on a server for
// the length of a subtest, and returns what the wrapper reported: all of it,
// since the subtest's cleanups wait for the last checks.
func serve(t *testing.T, handler http.Handler, client func(url string)) []string {
	t.Helper()
	var rep *reports
	t.Run("serve", func(t *testing.T) {
		rep = &reports{TB: t}
		srv := httptest.NewServer(load(t).Handler(rep, handler))
		t.Cleanup(srv.Close) // after the wrapper's: runs before it
		client(srv.URL)
	})
	rep.mu.Lock()
	defer rep.mu.Unlock()
	return rep.msgs
}

// TestHandlerReportsThroughT: the wrapper names method, path and status,
// and leaves the answer as it was.
func TestHandlerReportsThroughT(t *testing.T) {
	t.Parallel()
	bad := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-ID", "r1")
		w.WriteHeader(http.StatusTeapot)
		fmt.Fprint(w, `{"status":"ok"}`)
	})
	msgs := serve(t, bad, func(url string) {
		resp, err := http.Get(url + "/healthz?x=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot || resp.ContentLength != int64(len(`{"status":"ok"}`)) {
			t.Errorf("the wrapper changed the answer: %d, Content-Length %d", resp.StatusCode, resp.ContentLength)
		}
	})
	if len(msgs) != 1 || !strings.Contains(msgs[0], "GET /healthz?x=1 answered 418") {
		t.Fatalf("reports %q, want one naming GET /healthz?x=1 and 418", msgs)
	}
}

// TestHandlerPassesStreamsThrough: an event stream reaches the client event
// by event through the wrapper, which does not hold it back to check it.
func TestHandlerPassesStreamsThrough(t *testing.T) {
	t.Parallel()
	read := make(chan struct{})
	stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Request-ID", "r1")
		fmt.Fprint(w, "data: {\"n\":1}\n\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush through the wrapper: %v", err)
			return
		}
		<-read // the client got the first event while the handler still runs
		fmt.Fprint(w, "data: {\"n\":2}\n\n")
	})
	msgs := serve(t, stream, func(url string) {
		resp, err := http.Get(url + "/sales/current/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		close(read)
		if err != nil || line != "data: {\"n\":1}\n" {
			t.Fatalf("first event: %q %v", line, err)
		}
	})
	if len(msgs) != 0 {
		t.Fatalf("a documented stream reported %q", msgs)
	}
}

// A purchase.completed delivery as the server sends it, and its headers.
const (
	saleJSON      = `{"id":1,"starts_at":"2030-01-01T00:00:00Z","ends_at":"2030-01-01T01:00:00Z","units_total":5,"items":2,"per_user_limit":2,"hold_ttl_seconds":300,"defined_by":"generated"}`
	purchaseEvent = `{"id":2,"type":"purchase.completed","created_at":"2030-01-01T00:00:01Z","sale_id":1,"sequence":2,"data":{"sale":` + saleJSON +
		`,"purchase":{"id":1,"sale_id":1,"user_id":"u","code":"1.abc","item":{"id":1,"sku":"item1","name":"Mug","description":"","image_url":"/items/1/1/image.svg","price":"9.99","currency":"USD"},"price":"9.99","currency":"USD","purchased_at":"2030-01-01T00:00:01Z"}}}`
	startedEvent = `{"id":1,"type":"sale.started","created_at":"2030-01-01T00:00:00Z","sale_id":1,"sequence":1,"data":{"sale":` + saleJSON + `}}`
	signature    = "t=1893456001,v1=5f0c6e1d4c3b2a19081726354453627180f9e8d7c6b5a49382716051f4e3d2c1"
)

func deliveryHeader(typ, id string, change map[string]string) http.Header {
	h := http.Header{}
	for k, v := range map[string]string{
		"Content-Type": "application/json", "User-Agent": "flashsale-webhooks/test", "Flashsale-Signature": signature,
		"Flashsale-Event-Id": id, "Flashsale-Event-Type": typ, "Flashsale-Delivery-Attempt": "1",
	} {
		h.Set(k, v)
	}
	for k, v := range change {
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
	}
	return h
}

// TestCheckWebhook: deliveries as the document's webhooks describe them
// pass; one that breaks it in one way is reported for it.
func TestCheckWebhook(t *testing.T) {
	t.Parallel()
	s := load(t)
	for name, d := range map[string]struct {
		h    http.Header
		body string
	}{
		"purchase.completed": {deliveryHeader("purchase.completed", "2", nil), purchaseEvent},
		"sale.started":       {deliveryHeader("sale.started", "1", nil), startedEvent},
		"two signatures": {deliveryHeader("sale.started", "1", map[string]string{"Flashsale-Signature": signature + ",v1=" + strings.Repeat("ab", 32)}),
			startedEvent},
	} {
		if problems := s.CheckWebhook(d.h, []byte(d.body)); len(problems) > 0 {
			t.Errorf("%s: %v", name, problems)
		}
	}
	for _, c := range []struct {
		name string
		h    http.Header
		body string
		want string // in one of the problems
	}{
		{"unknown type", deliveryHeader("sale.opened", "1", nil), startedEvent, "sale.opened"},
		{"no signature", deliveryHeader("sale.started", "1", map[string]string{"Flashsale-Signature": ""}), startedEvent, "Flashsale-Signature"},
		{"signature of another form", deliveryHeader("sale.started", "1", map[string]string{"Flashsale-Signature": "sha256=abc"}), startedEvent, "Flashsale-Signature"},
		{"attempt 0", deliveryHeader("sale.started", "1", map[string]string{"Flashsale-Delivery-Attempt": "0"}), startedEvent, "Flashsale-Delivery-Attempt"},
		{"body of another type", deliveryHeader("sale.ended", "1", nil), startedEvent, "sale.ended"},
		{"purchase without its purchase", deliveryHeader("purchase.completed", "2", nil),
			strings.Replace(startedEvent, `"sale.started"`, `"purchase.completed"`, 1), "purchase"},
		{"sale event with a purchase", deliveryHeader("sale.started", "2", nil),
			strings.Replace(purchaseEvent, `"purchase.completed"`, `"sale.started"`, 1), "$.data"},
		{"undocumented field", deliveryHeader("sale.started", "1", nil), strings.Replace(startedEvent, `"sequence":1`, `"sequence":1,"extra":true`, 1), "extra"},
		{"text body", deliveryHeader("sale.started", "1", map[string]string{"Content-Type": "text/plain"}), startedEvent, "text/plain"},
	} {
		problems := s.CheckWebhook(c.h, []byte(c.body))
		if !strings.Contains(strings.Join(problems, "\n"), c.want) {
			t.Errorf("%s: problems %q, want one mentioning %q", c.name, problems, c.want)
		}
	}
}
