package httpapi_test

import (
	"bytes"
	"fmt"
	"html"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
)

func TestIndex(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{NoSale: true})
	idx := apitest.GetOK(t, srv.URL+"/")
	if idx["name"] != "flashsale" || idx["version"] != "test" {
		t.Fatalf("index: %v", idx)
	}
	list, _ := idx["endpoints"].([]any)
	routes := map[string]bool{} // "METHOD /path", the documented query left out
	for _, e := range list {
		s, _ := e.(string)
		route, _, _ := strings.Cut(s, "?")
		routes[route] = true
	}
	for _, want := range []string{"POST /checkout", "POST /purchase", "GET /sales/current", "GET /sales/current/items",
		"GET /sales/current/events", "GET /sales/{sale_id}", "GET /users/{user_id}/purchases", "GET /items/{sale_id}/{item_id}/image.svg",
		"GET /healthz", "GET /readyz"} {
		if !routes[want] {
			t.Errorf("endpoints %v lack %q", list, want)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	withSale := apitest.Start(t, apitest.Options{})
	noSale := apitest.Start(t, apitest.Options{NoSale: true})

	// Liveness must not depend on the sale: a server between sales is alive.
	for _, srv := range []*apitest.Server{withSale, noSale} {
		if h := apitest.GetOK(t, srv.URL+"/healthz"); h["status"] != "ok" {
			t.Errorf("healthz: %v", h)
		}
	}
	if r := apitest.GetOK(t, withSale.URL+"/readyz"); r["status"] != "ready" {
		t.Errorf("readyz with a sale: %v", r)
	}
	r := apitest.Get(t, noSale.URL+"/readyz")
	apitest.Check(t, "readyz without a sale", r, http.StatusServiceUnavailable, "no_active_sale")
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("readyz 503 without Retry-After: %v", r.Header)
	}
}

func TestCurrentSaleCounts(t *testing.T) {
	t.Parallel()
	opts := apitest.WeekLong(apitest.DefaultSettings)
	srv := apitest.Start(t, opts)
	set := *opts.Settings

	cur := apitest.GetOK(t, srv.URL+"/sales/current")
	starts, ends := apitest.Time(t, cur, "starts_at"), apitest.Time(t, cur, "ends_at")
	if ends.Sub(starts) != set.Duration || time.Now().Before(starts) || !time.Now().Before(ends) {
		t.Fatalf("sale window %v..%v: want %v long and containing now", cur["starts_at"], cur["ends_at"], set.Duration)
	}
	want := map[string]int64{
		"units_total": int64(set.Units), "items": int64(set.Items), "per_user_limit": int64(set.PerUserLimit),
		"hold_ttl_seconds": int64(set.HoldTTL.Seconds()),
		"units_sold":       0, "units_held": 0, "units_available": int64(set.Units), "buyers": 0,
	}
	assertCounts(t, cur, want)
	if apitest.Int(t, cur, "id") < 1 {
		t.Fatalf("sale id %v", cur["id"])
	}

	hold := apitest.Held(t, srv.URL, "carol", 4)
	want["units_held"], want["units_available"] = 1, int64(set.Units)-1
	afterHold := apitest.GetOK(t, srv.URL+"/sales/current")
	assertCounts(t, afterHold, want)
	// The attempt count is for psql audits (sale_summary), not the API.
	if n := pgtest.Scalar(t, srv.Pool, "SELECT checkout_attempts FROM sale_summary WHERE id = $1", apitest.Int(t, cur, "id")); n != 1 {
		t.Fatalf("sale_summary.checkout_attempts = %d after one checkout, want 1", n)
	}

	byID := apitest.GetOK(t, fmt.Sprintf("%s/sales/%d", srv.URL, apitest.Int(t, cur, "id")))
	if !reflect.DeepEqual(byID, afterHold) {
		t.Fatalf("GET /sales/{id} %v differs from /sales/current %v", byID, afterHold)
	}

	apitest.Bought(t, srv.URL, hold)
	want["units_held"], want["units_sold"], want["buyers"] = 0, 1, 1
	assertCounts(t, apitest.GetOK(t, srv.URL+"/sales/current"), want)
}

func assertCounts(t *testing.T, sale map[string]any, want map[string]int64) {
	t.Helper()
	for k, v := range want {
		if got := apitest.Int(t, sale, k); got != v {
			t.Errorf("%s = %d, want %d (sale %v)", k, got, v, sale)
		}
	}
}

// walkItems pages through the current sale's items limit at a time and
// returns each item by id, failing if an id repeats or the order breaks.
func walkItems(t *testing.T, base string, limit int) map[int64]map[string]any {
	t.Helper()
	seen := map[int64]map[string]any{}
	after, last := "", int64(0)
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("pagination does not end")
		}
		page := apitest.GetOK(t, fmt.Sprintf("%s/sales/current/items?limit=%d&after=%s", base, limit, after))
		items, _ := page["items"].([]any)
		if len(items) > limit {
			t.Fatalf("page of %d items with limit %d", len(items), limit)
		}
		for _, raw := range items {
			it := raw.(map[string]any)
			id := apitest.Int(t, it, "id")
			if id <= last || seen[id] != nil {
				t.Fatalf("item %d after %d: ids must rise and never repeat", id, last)
			}
			if it["name"] == "" || it["price"] == "" || it["image_url"] == "" {
				t.Fatalf("item %v lacks a field", it)
			}
			seen[id], last = it, id
		}
		if page["next_after"] == nil {
			return seen
		}
		if apitest.Int(t, page, "next_after") != last {
			t.Fatalf("next_after %v, last id on the page %d", page["next_after"], last)
		}
		after = fmt.Sprint(last)
	}
}

func TestItemsPagination(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.WeekLong(apitest.DefaultSettings))
	set := apitest.DefaultSettings
	perItem := int64(set.Units / set.Items)

	before := walkItems(t, srv.URL, 7)
	if len(before) != set.Items {
		t.Fatalf("walked %d items, the sale has %d", len(before), set.Items)
	}
	for id, it := range before {
		if id < 1 || id > int64(set.Items) || apitest.Int(t, it, "free_units") != perItem {
			t.Fatalf("item %v: want id in 1..%d with %d free units", it, set.Items, perItem)
		}
	}
	// The last page of a default-sized walk is the first.
	if page := apitest.GetOK(t, srv.URL+"/sales/current/items"); page["next_after"] != nil || len(page["items"].([]any)) != set.Items {
		t.Fatalf("default page: next_after %v, %d items", page["next_after"], len(page["items"].([]any)))
	}

	apitest.Held(t, srv.URL, "dave", 12)
	after := walkItems(t, srv.URL, 7)
	for id, it := range after {
		want := perItem
		if id == 12 {
			want--
		}
		if got := apitest.Int(t, it, "free_units"); got != want {
			t.Errorf("item %d: free_units %d, want %d", id, got, want)
		}
	}
}

func TestUserPurchases(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.WeekLong(apitest.DefaultSettings))
	saleID := apitest.CurrentSaleID(t, srv.URL)
	apitest.Held(t, srv.URL, "erin", 1) // held, never bought: must not be listed

	order := []int64{9, 2, 5}
	for _, item := range order {
		apitest.Bought(t, srv.URL, apitest.Held(t, srv.URL, "erin", int(item)))
	}
	apitest.Bought(t, srv.URL, apitest.Held(t, srv.URL, "frank", 2))

	current := apitest.GetOK(t, srv.URL+"/users/erin/purchases")
	assertPurchases(t, current, saleID, "erin", order)
	given := apitest.GetOK(t, fmt.Sprintf("%s/users/erin/purchases?sale_id=%d", srv.URL, saleID))
	if !reflect.DeepEqual(given, current) {
		t.Fatalf("?sale_id=%d %v differs from the default %v", saleID, given, current)
	}
	// testserver also creates the next sale, in which nobody has bought yet.
	assertPurchases(t, apitest.GetOK(t, fmt.Sprintf("%s/users/erin/purchases?sale_id=%d", srv.URL, saleID+1)), saleID+1, "erin", nil)
	assertPurchases(t, apitest.GetOK(t, srv.URL+"/users/nobody/purchases"), saleID, "nobody", nil)
}

func assertPurchases(t *testing.T, list map[string]any, saleID int64, user string, items []int64) {
	t.Helper()
	ps, _ := list["purchases"].([]any)
	if apitest.Int(t, list, "sale_id") != saleID || list["user_id"] != user || apitest.Int(t, list, "count") != int64(len(items)) ||
		len(ps) != len(items) {
		t.Fatalf("purchases of %s in sale %d: %v, want items %v", user, saleID, list, items)
	}
	lastID := int64(0)
	for i, raw := range ps {
		p := raw.(map[string]any)
		id := apitest.Int(t, p, "purchase_id")
		if id <= lastID || p["user_id"] != user || apitest.Int(t, p, "sale_id") != saleID ||
			apitest.Int(t, p["item"].(map[string]any), "id") != items[i] {
			t.Fatalf("purchase %d: %v, want item %d after purchase %d", i, p, items[i], lastID)
		}
		lastID = id
	}
}

func TestItemImage(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	items := apitest.GetOK(t, srv.URL+"/sales/current/items?limit=2")["items"].([]any)
	if len(items) != 2 {
		t.Fatalf("want 2 items, got %v", items)
	}
	var images [][]byte
	for _, raw := range items {
		it := raw.(map[string]any)
		url := srv.URL + it["image_url"].(string)
		first, second := apitest.Get(t, url), apitest.Get(t, url)
		if first.Status != http.StatusOK || first.Header.Get("Content-Type") != "image/svg+xml" {
			t.Fatalf("GET %s: status %d, Content-Type %q", url, first.Status, first.Header.Get("Content-Type"))
		}
		if !bytes.Equal(first.Raw, second.Raw) {
			t.Fatalf("GET %s twice gave different bytes", url)
		}
		if !bytes.HasPrefix(first.Raw, []byte("<svg")) ||
			!bytes.Contains(first.Raw, []byte(html.EscapeString(it["name"].(string)))) {
			t.Fatalf("image of %q: %s", it["name"], first.Raw)
		}
		images = append(images, first.Raw)
	}
	if bytes.Equal(images[0], images[1]) {
		t.Fatalf("two items have the same image")
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	noSale := apitest.Start(t, apitest.Options{NoSale: true})
	image := apitest.GetOK(t, srv.URL+"/sales/current/items?limit=1")["items"].([]any)[0].(map[string]any)["image_url"].(string)
	replies := map[string]apitest.Reply{
		"index":          apitest.Get(t, srv.URL+"/"),
		"checkout 201":   apitest.Do(t, http.MethodPost, srv.URL+"/checkout?user_id=gina&id=1", "", nil),
		"checkout 400":   apitest.Do(t, http.MethodPost, srv.URL+"/checkout", "", nil),
		"body too large": apitest.Do(t, http.MethodPost, srv.URL+"/checkout", "application/json", strings.NewReader(strings.Repeat(" ", 17<<10))),
		"unknown route":  apitest.Get(t, srv.URL+"/nope"),
		"wrong method":   apitest.Get(t, srv.URL+"/checkout"),
		"image":          apitest.Get(t, srv.URL+image),
		"503":            apitest.Get(t, noSale.URL+"/readyz"),
	}
	ids := map[string]string{}
	for name, r := range replies {
		id := r.Header.Get("X-Request-Id")
		if id == "" {
			t.Errorf("%s (status %d): no X-Request-Id", name, r.Status)
			continue
		}
		if other, dup := ids[id]; dup {
			t.Errorf("%s and %s share X-Request-Id %q", name, other, id)
		}
		ids[id] = name
	}
}

// TestUserPurchasesEscapedPath: a user id travels percent-encoded in the
// path, and any valid encoding of it (RFC 3986 allows lowercase hex, and
// "/" must be %2F) has to name the same user that checked out.
func TestUserPurchasesEscapedPath(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.WeekLong(apitest.DefaultSettings))
	saleID := apitest.CurrentSaleID(t, srv.URL)
	for user, path := range map[string]string{"zoë": "zo%c3%ab", "team/kim": "team%2Fkim", "zoë 2": "zo%C3%AB%202"} {
		apitest.Bought(t, srv.URL, apitest.Held(t, srv.URL, user, 6))
		list := apitest.GetOK(t, srv.URL+"/users/"+path+"/purchases")
		if list["user_id"] != user || apitest.Int(t, list, "count") != 1 {
			t.Errorf("GET /users/%s/purchases answered for user %q with %v purchases, want %q with 1",
				path, list["user_id"], list["count"], user)
			continue
		}
		assertPurchases(t, list, saleID, user, []int64{6})
	}
}

// HEAD answers wherever GET does, with the same status and no body:
// uptime checkers use it.
func TestHeadWhereverGet(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	saleID := apitest.CurrentSaleID(t, srv.URL)
	for _, path := range []string{"/", "/healthz", "/readyz", "/sales/current", "/sales/current/items",
		fmt.Sprintf("/sales/%d", saleID), "/users/ann/purchases", fmt.Sprintf("/items/%d/1/image.svg", saleID)} {
		r, err := apitest.Send(apitest.Client, http.MethodHead, srv.URL+path, "", nil)
		if err != nil {
			t.Fatalf("HEAD %s: %v", path, err)
		}
		if r.Status != http.StatusOK || len(r.Raw) != 0 {
			t.Errorf("HEAD %s: %d with %d body bytes, want 200 and none", path, r.Status, len(r.Raw))
		}
	}
	r, err := apitest.Send(apitest.Client, http.MethodHead, srv.URL+"/sales/999999", "", nil)
	if err != nil || r.Status != http.StatusNotFound {
		t.Errorf("HEAD of an unknown sale: %d %v, want 404", r.Status, err)
	}
}

// A client's X-Request-ID is echoed only when it is short printable ASCII;
// anything else is replaced by a generated one, so it is never logged.
func TestRequestIDFromClient(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	for _, c := range []struct {
		sent string
		echo bool
	}{
		{"trace-0af7651916cd43dd8448eb211c80319c", true},
		{strings.Repeat("x", 60<<10), false},
		{"tab\tinside", false},
	} {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Request-ID", c.sent)
		resp, err := apitest.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("X-Request-ID")
		if (got == c.sent) != c.echo || got == "" || len(got) > 128 {
			t.Errorf("sent an id of %d bytes, got back %q (echo wanted: %v)", len(c.sent), got, c.echo)
		}
	}
}

// available=true lists only the items with a free unit, paged like the
// whole list; every listing says how many units are held apart from free.
func TestItemsOnlyAvailable(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.WeekLong(sale.Settings{Units: 20, Items: 10, PerUserLimit: 20, HoldTTL: time.Hour}))
	for _, item := range []int{2, 2, 3, 3} { // sold out
		apitest.Bought(t, srv.URL, apitest.Held(t, srv.URL, "buyer", item))
	}
	for _, item := range []int{5, 5, 7} { // all held, half held
		apitest.Held(t, srv.URL, "holder", item)
	}
	type counts struct{ free, held int64 }
	walk := func(query string, limit int) ([]int64, map[int64]counts) {
		t.Helper()
		var ids []int64
		byID := map[int64]counts{}
		after := "0"
		for range 20 {
			page := apitest.GetOK(t, fmt.Sprintf("%s/sales/current/items?limit=%d&after=%s%s", srv.URL, limit, after, query))
			if apitest.Time(t, page, "read_at").IsZero() {
				t.Fatalf("page without read_at: %v", page)
			}
			for _, raw := range page["items"].([]any) {
				it := raw.(map[string]any)
				id := apitest.Int(t, it, "id")
				ids = append(ids, id)
				byID[id] = counts{apitest.Int(t, it, "free_units"), apitest.Int(t, it, "held_units")}
			}
			if page["next_after"] == nil {
				return ids, byID
			}
			after = fmt.Sprint(page["next_after"])
		}
		t.Fatal("pagination does not end")
		return nil, nil
	}
	ids, available := walk("&available=true", 3)
	if want := []int64{1, 4, 6, 7, 8, 9, 10}; !slices.Equal(ids, want) {
		t.Errorf("available=true walked items %v, want %v", ids, want)
	}
	if c := available[7]; c != (counts{1, 1}) {
		t.Errorf("item 7 available: %+v, want 1 free and 1 held", c)
	}
	ids, all := walk("&available=false", 4)
	if len(ids) != 10 {
		t.Errorf("available=false walked %v, want all 10 items", ids)
	}
	for id, want := range map[int64]counts{1: {2, 0}, 2: {0, 0}, 3: {0, 0}, 5: {0, 2}, 7: {1, 1}} {
		if all[id] != want {
			t.Errorf("item %d: %+v, want %+v", id, all[id], want)
		}
	}

	saletest.SellOut(t, srv.Pool, apitest.CurrentSaleID(t, srv.URL))
	if page := apitest.GetOK(t, srv.URL+"/sales/current/items?available=true"); len(page["items"].([]any)) != 0 || page["next_after"] != nil {
		t.Errorf("sold out, available=true: %v, want no item and no next page", page)
	}
}
