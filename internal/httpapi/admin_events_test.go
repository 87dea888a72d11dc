package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/httpapi"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/spectest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
	"github.com/flashsale/flashsale/internal/webhook"
)

// The events' admin routes over HTTP (admin_events.go): listing what was
// published, each event's deliveries, redelivering, and what was given up,
// with a shop's receiver taking the webhooks.

const hookSecret = "test-webhook-secret-0123456789"

// waitLimit bounds a wait for the publisher (each 100ms here) and River: a
// loaded machine of two cores running the whole suite is slow.
const waitLimit = 30 * time.Second

// receiver is a shop's webhook endpoint: it holds every delivery to the
// document's webhooks and checks its signature, keeps it, and answers
// status.
type receiver struct {
	URL    string
	status atomic.Int32
	mu     sync.Mutex
	got    []delivery
}

type delivery struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	spec, err := spectest.Load()
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{}
	r.status.Store(http.StatusNoContent)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			t.Errorf("receiver: read the delivery: %v", err)
			return
		}
		for _, p := range spec.CheckWebhook(req.Header, body) {
			t.Errorf("webhook %s %s: %s", req.Header.Get("Flashsale-Event-Type"), req.Header.Get("Flashsale-Event-Id"), p)
		}
		if err := webhook.Verify(req.Header.Get(webhook.SignatureHeader), body, []string{hookSecret}, time.Minute, time.Now()); err != nil {
			t.Errorf("webhook %s: %v", req.Header.Get("Flashsale-Event-Id"), err)
		}
		r.mu.Lock()
		r.got = append(r.got, delivery{header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		w.WriteHeader(int(r.status.Load()))
	}))
	// Registered before the server's cleanups, so it closes after River
	// has stopped sending.
	t.Cleanup(hs.Close)
	r.URL = hs.URL + "/hooks"
	return r
}

// of returns the deliveries of event id so far, in the order they came.
func (r *receiver) of(id int64) []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []delivery
	for _, d := range r.got {
		if d.header.Get("Flashsale-Event-Id") == strconv.FormatInt(id, 10) {
			out = append(out, d)
		}
	}
	return out
}

// wait returns the deliveries of event id once there are n.
func (r *receiver) wait(t *testing.T, id int64, n int) []delivery {
	t.Helper()
	testutil.Poll(t, waitLimit, func() error {
		if got := len(r.of(id)); got < n {
			return fmt.Errorf("%s got %d deliveries of event %d, want %d", r.URL, got, id, n)
		}
		return nil
	})
	return r.of(id)
}

// eventsServer runs the API with the admin token "ops", a week-long sale
// (no sale starts or ends while a test runs) and the webhooks delivered to
// urls, published every 100ms.
func eventsServer(t *testing.T, urls []string, change func(*webhook.Config)) *apitest.Server {
	t.Helper()
	tokens, err := auth.ParseAdminTokens([]string{opsToken})
	if err != nil {
		t.Fatal(err)
	}
	opts := apitest.WeekLong(apitest.DefaultSettings)
	opts.HTTP.Admin = httpapi.AdminAccess{Tokens: tokens}
	cfg := webhook.Config{URLs: urls, Secrets: []string{hookSecret}, PublishEvery: 100 * time.Millisecond}
	if change != nil {
		change(&cfg)
	}
	opts.Webhooks = &cfg
	return apitest.Start(t, opts)
}

// buy checks out item for user and purchases it; it returns the purchase.
func buy(t *testing.T, srv *apitest.Server, user string, item int) map[string]any {
	t.Helper()
	return apitest.Bought(t, srv.URL, apitest.Held(t, srv.URL, user, item))
}

// waitPublished waits until n events are published.
func waitPublished(t *testing.T, srv *apitest.Server, n int) {
	t.Helper()
	testutil.Poll(t, waitLimit, func() error {
		var got int
		if err := srv.Pool.QueryRow(context.Background(), "SELECT count(*) FROM events").Scan(&got); err != nil {
			return err
		}
		if got < n {
			return fmt.Errorf("%d events published, want %d", got, n)
		}
		return nil
	})
}

// listEvents asks GET /admin/events with query and returns the events and
// next_after.
func listEvents(t *testing.T, srv *apitest.Server, query string) ([]map[string]any, int64) {
	t.Helper()
	r := adminDo(t, http.MethodGet, srv.URL+"/admin/events"+query, opsBearer, "", nil)
	apitest.Expect(t, "GET /admin/events"+query, r, http.StatusOK, "")
	return objects(t, r.Body, "events"), apitest.Int(t, r.Body, "next_after")
}

// objects reads a JSON array of objects.
func objects(t *testing.T, m map[string]any, key string) []map[string]any {
	t.Helper()
	list, ok := m[key].([]any)
	if !ok {
		t.Fatalf("field %q = %#v, want an array (in %v)", key, m[key], m)
	}
	out := make([]map[string]any, len(list))
	for i, v := range list {
		if out[i], ok = v.(map[string]any); !ok {
			t.Fatalf("%s[%d] = %#v, want an object", key, i, v)
		}
	}
	return out
}

func ids(t *testing.T, evs []map[string]any) []int64 {
	t.Helper()
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = apitest.Int(t, e, "id")
	}
	return out
}

// getEvent asks GET /admin/events/{id}.
func getEvent(t *testing.T, srv *apitest.Server, id int64) (map[string]any, []map[string]any) {
	t.Helper()
	r := adminDo(t, http.MethodGet, fmt.Sprintf("%s/admin/events/%d", srv.URL, id), opsBearer, "", nil)
	apitest.Expect(t, fmt.Sprintf("GET /admin/events/%d", id), r, http.StatusOK, "")
	ev, _ := r.Body["event"].(map[string]any)
	return ev, objects(t, r.Body, "deliveries")
}

// waitDeliveries returns event id's deliveries once there are n in state.
func waitDeliveries(t *testing.T, srv *apitest.Server, id int64, n int, state string) []map[string]any {
	t.Helper()
	var ds []map[string]any
	testutil.Poll(t, waitLimit, func() error {
		_, ds = getEvent(t, srv, id)
		in := 0
		for _, d := range ds {
			if d["state"] == state {
				in++
			}
		}
		if in < n {
			return fmt.Errorf("event %d: deliveries %v, want %d %s", id, ds, n, state)
		}
		return nil
	})
	return ds
}

// redeliver posts path (a redeliver route) and returns what it queued.
func redeliver(t *testing.T, srv *apitest.Server, path string) int64 {
	t.Helper()
	r := adminDo(t, http.MethodPost, srv.URL+path, opsBearer, "", nil)
	apitest.Expect(t, "POST "+path, r, http.StatusAccepted, "")
	return apitest.Int(t, r.Body, "queued")
}

// checkEventRow compares an event's JSON with the rows it describes.
func checkEventRow(t *testing.T, srv *apitest.Server, ev map[string]any) {
	t.Helper()
	ctx := context.Background()
	id := apitest.Int(t, ev, "id")
	var typ string
	var saleID, seq int64
	var at time.Time
	var purchaseID *int64
	if err := srv.Pool.QueryRow(ctx, "SELECT type::text, sale_id, sequence, occurred_at, purchase_id FROM events WHERE id = $1", id).
		Scan(&typ, &saleID, &seq, &at, &purchaseID); err != nil {
		t.Fatalf("event %d in the database: %v", id, err)
	}
	if ev["type"] != typ || apitest.Int(t, ev, "sale_id") != saleID || apitest.Int(t, ev, "sequence") != seq ||
		!apitest.Time(t, ev, "created_at").Equal(at) {
		t.Errorf("event %d: %v; the database has type %s, sale %d, sequence %d, occurred at %s", id, ev, typ, saleID, seq, at)
	}
	data, _ := ev["data"].(map[string]any)
	s, _ := data["sale"].(map[string]any)
	if s == nil {
		t.Fatalf("event %d: no data.sale: %v", id, ev)
	}
	var starts, ends time.Time
	var units, items, limit int64
	var ttl float64
	var definedBy string
	if err := srv.Pool.QueryRow(ctx, `SELECT starts_at, ends_at, units_total, items, per_user_limit,
		extract(epoch FROM hold_ttl)::float8, coalesce(defined_by, 'generated') FROM sales WHERE id = $1`, saleID).
		Scan(&starts, &ends, &units, &items, &limit, &ttl, &definedBy); err != nil {
		t.Fatalf("sale %d: %v", saleID, err)
	}
	if apitest.Int(t, s, "id") != saleID || !apitest.Time(t, s, "starts_at").Equal(starts) || !apitest.Time(t, s, "ends_at").Equal(ends) ||
		apitest.Int(t, s, "units_total") != units || apitest.Int(t, s, "items") != items ||
		apitest.Int(t, s, "per_user_limit") != limit || s["hold_ttl_seconds"] != ttl || s["defined_by"] != definedBy {
		t.Errorf("event %d: data.sale %v; the database has %d %s %s %d units %d items limit %d ttl %gs by %s",
			id, s, saleID, starts, ends, units, items, limit, ttl, definedBy)
	}
	p, hasPurchase := data["purchase"].(map[string]any)
	if hasPurchase != (purchaseID != nil) {
		t.Fatalf("event %d: data.purchase %v, the database's purchase_id %v", id, data["purchase"], purchaseID)
	}
	if purchaseID == nil {
		return
	}
	var user, code, sku, name, currency string
	var itemID, cents int64
	var bought time.Time
	if err := srv.Pool.QueryRow(ctx, `SELECT p.user_id, p.code, p.item_id, p.price_cents, p.purchased_at, i.sku, i.name, i.currency
		FROM purchases p JOIN items i ON i.sale_id = p.sale_id AND i.item_id = p.item_id WHERE p.id = $1`, *purchaseID).
		Scan(&user, &code, &itemID, &cents, &bought, &sku, &name, &currency); err != nil {
		t.Fatalf("purchase %d: %v", *purchaseID, err)
	}
	item, _ := p["item"].(map[string]any)
	if item == nil {
		t.Fatalf("event %d: data.purchase without its item: %v", id, p)
	}
	price, _ := p["price"].(string)
	if apitest.Int(t, p, "id") != *purchaseID || apitest.Int(t, p, "sale_id") != saleID || p["user_id"] != user || p["code"] != code ||
		!apitest.Time(t, p, "purchased_at").Equal(bought) || apitest.Int(t, item, "id") != itemID || item["sku"] != sku ||
		item["name"] != name || item["currency"] != currency || p["currency"] != currency || item["price"] != price ||
		centsOf(t, price) != cents {
		t.Errorf("event %d: data.purchase %v; the database has purchase %d by %s, code %s, item %d %s %q, %d cents %s at %s",
			id, p, *purchaseID, user, code, itemID, sku, name, cents, currency, bought)
	}
}

// centsOf reads a price of a currency with two decimals (the generated
// sales' USD).
func centsOf(t *testing.T, price string) int64 {
	t.Helper()
	whole, frac, _ := strings.Cut(price, ".")
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil || len(frac) != 2 {
		t.Fatalf("price %q is not a decimal with two digits", price)
	}
	return n
}

func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	norm := func(v any) any {
		raw, ok := v.([]byte)
		if !ok {
			var err error
			if raw, err = json.Marshal(v); err != nil {
				t.Fatal(err)
			}
		}
		var out any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// TestAdminEventsList: a sale's start and its purchases are listed in order
// with the cursor, each as the database has it and as its webhook carried
// it, with its delivery.
func TestAdminEventsList(t *testing.T) {
	t.Parallel()
	hook := newReceiver(t)
	srv := eventsServer(t, []string{hook.URL}, nil)
	purchases := map[int64]map[string]any{}
	for i, user := range []string{"ann", "bob", "cy"} {
		p := buy(t, srv, user, i+1)
		purchases[apitest.Int(t, p, "purchase_id")] = p
	}
	waitPublished(t, srv, 4)

	all, next := listEvents(t, srv, "")
	if got := ids(t, all); !slices.Equal(got, []int64{1, 2, 3, 4}) || next != 4 {
		t.Fatalf("GET /admin/events: ids %v, next_after %d; want 1 to 4, next_after 4", got, next)
	}
	for i, ev := range all {
		want := "purchase.completed"
		if i == 0 {
			want = "sale.started" // published before any purchase of its sale
		}
		if ev["type"] != want || apitest.Int(t, ev, "sequence") != int64(i+1) {
			t.Errorf("event %d: type %v, sequence %v; want %s, sequence %d", i+1, ev["type"], ev["sequence"], want, i+1)
		}
		checkEventRow(t, srv, ev)
		if ev["type"] == "purchase.completed" {
			data, _ := ev["data"].(map[string]any)
			p, _ := data["purchase"].(map[string]any)
			answer := purchases[apitest.Int(t, p, "id")]
			if answer == nil || !sameJSON(t, p["item"], answer["item"]) || p["user_id"] != answer["user_id"] {
				t.Errorf("event %d: data.purchase %v, not the purchase POST /purchase answered %v", i+1, p, answer)
			}
		}
	}

	// Page by page with the cursor; an empty value counts as absent.
	for _, c := range []struct {
		query string
		ids   []int64
		next  int64
	}{
		{"?limit=1", []int64{1}, 1},
		{"?after=1&limit=2", []int64{2, 3}, 3},
		{"?after=3&limit=1000", []int64{4}, 4},
		{"?after=4", nil, 4},
		{"?after=99", nil, 99},
		{"?after=0&limit=4", []int64{1, 2, 3, 4}, 4},
		{"?after=&limit=", []int64{1, 2, 3, 4}, 4},
	} {
		evs, next := listEvents(t, srv, c.query)
		if got := ids(t, evs); !slices.Equal(got, c.ids) || next != c.next {
			t.Errorf("GET /admin/events%s: ids %v, next_after %d; want %v, %d", c.query, got, next, c.ids, c.next)
		}
		for _, ev := range evs {
			if !sameJSON(t, ev, all[apitest.Int(t, ev, "id")-1]) {
				t.Errorf("GET /admin/events%s: event %v differs from the full list's", c.query, ev)
			}
		}
	}
	if r := adminDo(t, http.MethodHead, srv.URL+"/admin/events", opsBearer, "", nil); r.Status != http.StatusOK || len(r.Raw) != 0 {
		t.Errorf("HEAD /admin/events: %d with %d bytes, want 200 without a body", r.Status, len(r.Raw))
	}

	for _, ev := range all {
		id := apitest.Int(t, ev, "id")
		ds := waitDeliveries(t, srv, id, 1, "delivered")
		got, _ := getEvent(t, srv, id)
		if !sameJSON(t, got, ev) {
			t.Errorf("GET /admin/events/%d: %v, the list has %v", id, got, ev)
		}
		d := ds[0]
		if len(ds) != 1 || apitest.Int(t, d, "event_id") != id || d["url"] != hook.URL || apitest.Int(t, d, "attempts") != 1 ||
			apitest.Int(t, d, "max_attempts") < 2 || d["last_attempt_at"] == nil || d["finished_at"] == nil ||
			d["next_attempt_at"] != nil || d["last_error"] != "" || apitest.Int(t, d, "job_id") < 1 {
			t.Errorf("event %d: deliveries %v, want one to %s, delivered at its first attempt", id, ds, hook.URL)
		}
		// River finished the job once the receiver answered: it has it.
		got2 := hook.of(id)
		if len(got2) != 1 {
			t.Fatalf("event %d: the receiver got %d deliveries, want 1", id, len(got2))
		}
		h := got2[0].header
		if !sameJSON(t, got2[0].body, ev) || h.Get("Flashsale-Event-Type") != ev["type"] ||
			h.Get("Flashsale-Delivery-Attempt") != "1" || h.Get("User-Agent") != "flashsale-webhooks/test" {
			t.Errorf("event %d: delivered %s with %v; want the listed event %v, attempt 1", id, got2[0].body, h, ev)
		}
	}
}

// TestAdminEventsBadInput: parameters the routes refuse, and events that do
// not exist.
func TestAdminEventsBadInput(t *testing.T) {
	t.Parallel()
	hook := newReceiver(t)
	srv := eventsServer(t, []string{hook.URL}, nil)
	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/admin/events?limit=0", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/admin/events?limit=1001", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/admin/events?limit=-1", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/admin/events?limit=ten", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/admin/events?after=-1", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/admin/events?after=abc", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/admin/events?after=1.5", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/admin/events?after=007", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/admin/events/0", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/admin/events/abc", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/admin/events/-4", http.StatusBadRequest, "invalid_request"},
		{http.MethodPost, "/admin/events/0/redeliver", http.StatusBadRequest, "invalid_request"},
		{http.MethodPost, "/admin/events/x/redeliver", http.StatusBadRequest, "invalid_request"},
		{http.MethodPost, "/admin/events/redeliver", http.StatusBadRequest, "invalid_request"},
		{http.MethodPost, "/admin/events/redeliver?from=2026-01-01T00:00:00Z", http.StatusBadRequest, "invalid_request"},
		{http.MethodPost, "/admin/events/redeliver?to=2026-01-01T00:00:00Z", http.StatusBadRequest, "invalid_request"},
		{http.MethodPost, "/admin/events/redeliver?from=&to=2026-01-01T00:00:00Z", http.StatusBadRequest, "invalid_request"},
		{http.MethodPost, "/admin/events/redeliver?from=2026-01-01&to=2026-01-02", http.StatusBadRequest, "invalid_request"},
		{http.MethodPost, "/admin/events/redeliver?from=yesterday&to=2026-01-02T00:00:00Z", http.StatusBadRequest, "invalid_request"},
		{http.MethodPost, "/admin/events/redeliver?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", http.StatusBadRequest, "invalid_request"},
		{http.MethodPost, "/admin/events/redeliver?from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/admin/webhooks/failed?limit=0", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/admin/webhooks/failed?limit=1001", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/admin/webhooks/failed?before=-1", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/admin/webhooks/failed?before=job", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/admin/events/999999", http.StatusNotFound, "event_not_found"},
		{http.MethodPost, "/admin/events/999999/redeliver", http.StatusNotFound, "event_not_found"},
		// The POST-only route, not an event id.
		{http.MethodGet, "/admin/events/redeliver", http.StatusMethodNotAllowed, "method_not_allowed"},
	} {
		r := adminDo(t, c.method, srv.URL+c.path, opsBearer, "", nil)
		apitest.Check(t, c.method+" "+c.path, r, c.status, c.code)
	}
	// Nothing went out for them: the sale's start alone was delivered.
	waitPublished(t, srv, 1)
	hook.wait(t, 1, 1)
	var jobs int
	if err := srv.Pool.QueryRow(context.Background(), "SELECT count(*) FROM river_job WHERE kind = $1", webhook.DeliveryKind).Scan(&jobs); err != nil {
		t.Fatal(err)
	}
	if jobs != 1 {
		t.Errorf("%d deliveries queued, want 1 (the sale's start)", jobs)
	}
}

// TestAdminRedeliver: an event, or every event of a range, is delivered
// again to every endpoint, with the same body, whatever became of it.
func TestAdminRedeliver(t *testing.T) {
	t.Parallel()
	a, b := newReceiver(t), newReceiver(t)
	srv := eventsServer(t, []string{a.URL, b.URL}, nil)
	buy(t, srv, "ann", 1)
	waitPublished(t, srv, 2)
	started, _ := getEvent(t, srv, 1)
	bought, _ := getEvent(t, srv, 2)
	if started["type"] != "sale.started" || bought["type"] != "purchase.completed" {
		t.Fatalf("events 1 and 2: %v and %v, want the sale's start and the purchase", started["type"], bought["type"])
	}
	for _, hook := range []*receiver{a, b} {
		hook.wait(t, 2, 1)
	}

	if n := redeliver(t, srv, "/admin/events/2/redeliver"); n != 2 {
		t.Errorf("POST /admin/events/2/redeliver queued %d, want 2 (one per endpoint)", n)
	}
	for _, hook := range []*receiver{a, b} {
		ds := hook.wait(t, 2, 2)
		if !bytes.Equal(ds[1].body, ds[0].body) || ds[1].header.Get("Flashsale-Delivery-Attempt") != "1" ||
			ds[1].header.Get("Flashsale-Event-Id") != "2" {
			t.Errorf("%s: redelivered %s (attempt %s), first delivered %s; want the same body, attempt 1",
				hook.URL, ds[1].body, ds[1].header.Get("Flashsale-Delivery-Attempt"), ds[0].body)
		}
	}
	ds := waitDeliveries(t, srv, 2, 4, "delivered")
	if len(ds) != 4 {
		t.Errorf("event 2: deliveries %v, want 2 per endpoint", ds)
	}

	// The sale's start happened at its starts_at, the purchase later.
	rng := func(from, to time.Time) string {
		return "/admin/events/redeliver?from=" + url.QueryEscape(from.Format(time.RFC3339Nano)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339Nano))
	}
	startedAt, boughtAt := apitest.Time(t, started, "created_at"), apitest.Time(t, bought, "created_at")
	if n := redeliver(t, srv, rng(startedAt, boughtAt)); n != 2 {
		t.Errorf("redeliver [start, purchase) queued %d, want 2 (the start, to each endpoint)", n)
	}
	if n := redeliver(t, srv, rng(startedAt, time.Now().Add(time.Hour))); n != 4 {
		t.Errorf("redeliver [start, an hour ahead) queued %d, want 4 (both events, to each endpoint)", n)
	}
	if n := redeliver(t, srv, rng(time.Now().Add(time.Hour), time.Now().Add(2*time.Hour))); n != 0 {
		t.Errorf("redeliver a range ahead queued %d, want 0", n)
	}
	for _, hook := range []*receiver{a, b} {
		for id, n := range map[int64]int{1: 3, 2: 3} {
			for _, d := range hook.wait(t, id, n) {
				if !bytes.Equal(d.body, hook.of(id)[0].body) {
					t.Errorf("%s: event %d delivered as %s and as %s", hook.URL, id, hook.of(id)[0].body, d.body)
				}
			}
		}
	}
	waitDeliveries(t, srv, 1, 6, "delivered")
	waitDeliveries(t, srv, 2, 6, "delivered")
	for _, hook := range []*receiver{a, b} {
		if n1, n2 := len(hook.of(1)), len(hook.of(2)); n1 != 3 || n2 != 3 {
			t.Errorf("%s got events 1 and 2 %d and %d times, want 3 each", hook.URL, n1, n2)
		}
	}
}

// TestAdminEventsWithoutEndpoints: without WEBHOOK_URL events are published
// and listed, and there is nowhere to redeliver to.
func TestAdminEventsWithoutEndpoints(t *testing.T) {
	t.Parallel()
	srv := eventsServer(t, nil, nil)
	buy(t, srv, "ann", 1)
	waitPublished(t, srv, 2)
	evs, next := listEvents(t, srv, "")
	if got := ids(t, evs); !slices.Equal(got, []int64{1, 2}) || next != 2 {
		t.Fatalf("GET /admin/events: ids %v, next_after %d; want 1 and 2, 2", got, next)
	}
	for _, ev := range evs {
		checkEventRow(t, srv, ev)
	}
	if _, ds := getEvent(t, srv, 2); len(ds) != 0 {
		t.Errorf("event 2: deliveries %v, want none", ds)
	}
	for _, path := range []string{
		"/admin/events/2/redeliver", "/admin/events/999999/redeliver",
		"/admin/events/redeliver?from=2020-01-01T00:00:00Z&to=2100-01-01T00:00:00Z",
	} {
		r := adminDo(t, http.MethodPost, srv.URL+path, opsBearer, "", nil)
		apitest.Check(t, "POST "+path+" without endpoints", r, http.StatusConflict, "no_webhook_endpoints")
	}
	r := adminDo(t, http.MethodGet, srv.URL+"/admin/webhooks/failed", opsBearer, "", nil)
	apitest.Expect(t, "GET /admin/webhooks/failed", r, http.StatusOK, "")
	if ds := objects(t, r.Body, "deliveries"); len(ds) != 0 || r.Body["next_before"] != nil {
		t.Errorf("GET /admin/webhooks/failed: %s, want no delivery", r.Raw)
	}
	var jobs int
	if err := srv.Pool.QueryRow(context.Background(), "SELECT count(*) FROM river_job WHERE kind = $1", webhook.DeliveryKind).Scan(&jobs); err != nil {
		t.Fatal(err)
	}
	if jobs != 0 {
		t.Errorf("%d deliveries queued without endpoints", jobs)
	}
}

// eventRoutes are the events' admin routes, one of each.
var eventRoutes = [][2]string{
	{http.MethodGet, "/admin/events"}, {http.MethodGet, "/admin/events/1"}, {http.MethodPost, "/admin/events/1/redeliver"},
	{http.MethodPost, "/admin/events/redeliver?from=2020-01-01T00:00:00Z&to=2100-01-01T00:00:00Z"},
	{http.MethodGet, "/admin/webhooks/failed"},
}

// TestAdminEventsAccess: the events' routes are the admin API's: absent
// when it is off, and only for an admin token when it is on.
func TestAdminEventsAccess(t *testing.T) {
	t.Parallel()
	off := apitest.Start(t, apitest.Options{NoSale: true})
	on := adminServer(t, nil)
	for _, route := range eventRoutes {
		r := adminDo(t, route[0], off.URL+route[1], opsBearer, "", nil)
		apitest.Check(t, route[0]+" "+route[1]+" with the admin API off", r, http.StatusNotFound, "not_found")
		for what, bearer := range map[string]string{"no token": "", "a wrong token": "0123456789abcdef-not-ops"} {
			r := adminDo(t, route[0], on.URL+route[1], bearer, "", nil)
			apitest.Check(t, route[0]+" "+route[1]+" with "+what, r, http.StatusUnauthorized, "unauthorized")
			if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, `Bearer realm="flashsale-admin"`) {
				t.Errorf("%s %s with %s: WWW-Authenticate %q, want the admin realm's challenge", route[0], route[1], what, h)
			}
		}
	}
}

// TestAdminFailedDeliveries: a delivery whose every attempt fails is given
// up and listed, newest first, a page at a time; redelivered once the
// endpoint answers, it is delivered and the failed one stays listed.
func TestAdminFailedDeliveries(t *testing.T) {
	t.Parallel()
	hook := newReceiver(t)
	hook.status.Store(http.StatusInternalServerError)
	// A retry budget of 300ms: four attempts, 100ms apart.
	srv := eventsServer(t, []string{hook.URL}, func(c *webhook.Config) { c.RetryFor = 300 * time.Millisecond })
	buy(t, srv, "ann", 1)
	waitPublished(t, srv, 2)

	// Every event so far fails: the sale's start, ann's and bob's purchases,
	// in one delivery (job) or more, as the publisher's turns fell.
	buy(t, srv, "bob", 2)
	waitPublished(t, srv, 3)
	var failed []map[string]any
	testutil.Poll(t, waitLimit, func() error {
		r := adminDo(t, http.MethodGet, srv.URL+"/admin/webhooks/failed", opsBearer, "", nil)
		apitest.Expect(t, "GET /admin/webhooks/failed", r, http.StatusOK, "")
		if failed = objects(t, r.Body, "deliveries"); len(failed) < 3 {
			return fmt.Errorf("failed deliveries %s, want 3 events", r.Raw)
		}
		if r.Body["next_before"] != nil {
			t.Errorf("GET /admin/webhooks/failed: next_before %v on the only page", r.Body["next_before"])
		}
		return nil
	})
	var jobs []int64           // newest first
	first := map[int64]int64{} // job: the event it sends first
	for _, d := range failed {
		job, id := apitest.Int(t, d, "job_id"), apitest.Int(t, d, "event_id")
		if len(jobs) == 0 || jobs[len(jobs)-1] != job {
			if len(jobs) > 0 && job > jobs[len(jobs)-1] {
				t.Errorf("failed deliveries %v: not newest first", failed)
			}
			jobs, first[job] = append(jobs, job), id
		}
		if d["state"] != "failed" || d["url"] != hook.URL || apitest.Int(t, d, "attempts") != 4 || apitest.Int(t, d, "max_attempts") != 4 ||
			d["finished_at"] == nil || d["next_attempt_at"] != nil || !strings.Contains(fmt.Sprint(d["last_error"]), "500") {
			t.Errorf("failed delivery %v: want event %d to %s failed after 4 attempts, with the 500 as its error", d, id, hook.URL)
		}
		// A delivery stops at its first failed event: the one it sends
		// first got every attempt, the others none.
		var attempts []string
		for _, got := range hook.of(id) {
			attempts = append(attempts, got.header.Get("Flashsale-Delivery-Attempt"))
		}
		if want := []string{"1", "2", "3", "4"}; first[job] == id && !slices.Equal(attempts, want) || first[job] != id && len(attempts) != 0 {
			t.Errorf("event %d (delivery %d): the receiver got attempts %v", id, job, attempts)
		}
		_, ds := getEvent(t, srv, id)
		if len(ds) != 1 || ds[0]["state"] != "failed" || ds[0]["last_attempt_at"] == nil || apitest.Int(t, ds[0], "job_id") != job {
			t.Errorf("event %d: deliveries %v, want the failed one", id, ds)
		}
	}

	// A page is a number of deliveries (jobs), each with all its events:
	// one at a time, the pages add up to the whole list.
	var paged []map[string]any
	query := "?limit=1"
	for range len(jobs) + 1 {
		r := adminDo(t, http.MethodGet, srv.URL+"/admin/webhooks/failed"+query, opsBearer, "", nil)
		apitest.Expect(t, "GET /admin/webhooks/failed"+query, r, http.StatusOK, "")
		page := objects(t, r.Body, "deliveries")
		paged = append(paged, page...)
		if r.Body["next_before"] == nil {
			break
		}
		if len(page) == 0 || r.Body["next_before"] != page[len(page)-1]["job_id"] {
			t.Errorf("GET /admin/webhooks/failed%s: next_before %v, want the page's job", query, r.Body["next_before"])
			break
		}
		query = fmt.Sprintf("?before=%d&limit=1", apitest.Int(t, r.Body, "next_before"))
	}
	if fmt.Sprint(paged) != fmt.Sprint(failed) {
		t.Errorf("failed deliveries a job at a time %v, want %v", paged, failed)
	}
	r := adminDo(t, http.MethodGet, srv.URL+"/admin/webhooks/failed?before=&limit=", opsBearer, "", nil)
	apitest.Expect(t, "GET /admin/webhooks/failed?before=&limit=", r, http.StatusOK, "")
	if got := objects(t, r.Body, "deliveries"); fmt.Sprint(got) != fmt.Sprint(failed) {
		t.Errorf("failed deliveries with empty parameters %v, want %v", got, failed)
	}

	// Fixed, and delivered again on demand.
	hook.status.Store(http.StatusOK)
	if n := redeliver(t, srv, "/admin/events/2/redeliver"); n != 1 {
		t.Errorf("POST /admin/events/2/redeliver queued %d, want 1", n)
	}
	before := len(hook.of(2))
	if ds := hook.wait(t, 2, before+1); ds[before].header.Get("Flashsale-Delivery-Attempt") != "1" {
		t.Errorf("redelivery: attempt %s, want 1", ds[before].header.Get("Flashsale-Delivery-Attempt"))
	}
	ds := waitDeliveries(t, srv, 2, 1, "delivered")
	if len(ds) != 2 || ds[0]["state"] != "failed" || ds[1]["state"] != "delivered" {
		t.Errorf("event 2: deliveries %v, want the failed one, then the delivered one", ds)
	}
	r = adminDo(t, http.MethodGet, srv.URL+"/admin/webhooks/failed", opsBearer, "", nil)
	apitest.Expect(t, "GET /admin/webhooks/failed", r, http.StatusOK, "")
	if got := objects(t, r.Body, "deliveries"); len(got) != 3 {
		t.Errorf("after the redelivery, failed deliveries %s, want all three still listed", r.Raw)
	}
}
