package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/httpapi"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// The admin API over HTTP: who may use it, defining and editing sales,
// and the controls of a running sale, with what shoppers then see.

const (
	opsToken   = "ops:0123456789abcdef-ops"
	opsBearer  = "0123456789abcdef-ops"
	adminLead  = 2 * time.Second
	adminStart = 5 * time.Second // ahead of the database's clock: past the lead, and soon
)

// adminServer runs the API with the admin token "ops", the shortest edit
// lead and only defined sales, unless change says otherwise.
func adminServer(t *testing.T, change func(*apitest.Options)) *apitest.Server {
	t.Helper()
	tokens, err := auth.ParseAdminTokens([]string{opsToken})
	if err != nil {
		t.Fatal(err)
	}
	settings := apitest.DefaultSettings
	settings.EditLead, settings.NoGeneratedSales = adminLead, true
	opts := apitest.Options{Settings: &settings, NoSale: true, HTTP: httpapi.Options{Admin: httpapi.AdminAccess{Tokens: tokens}}}
	if change != nil {
		change(&opts)
	}
	return apitest.Start(t, opts)
}

// adminDo sends an admin request with bearer (none when empty) and body,
// which is JSON unless contentType says otherwise.
func adminDo(t *testing.T, method, url, bearer, contentType string, body any) apitest.Reply {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r, contentType = bytes.NewReader(raw), "application/json"
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	rep, err := apitest.SendRequest(apitest.Client, req)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// dbNow is the database's clock, which decides what a sale's window means.
func dbNow(t *testing.T, srv *apitest.Server) time.Time {
	t.Helper()
	var now time.Time
	if err := srv.Pool.QueryRow(context.Background(), "SELECT now()").Scan(&now); err != nil {
		t.Fatal(err)
	}
	return now
}

// waitForStart polls the database's clock until start has passed.
func waitForStart(t *testing.T, srv *apitest.Server, start time.Time) {
	t.Helper()
	testutil.Poll(t, 2*adminStart, func() error {
		if now := dbNow(t, srv); now.Before(start) {
			return fmt.Errorf("the database's clock reads %s, before the sale's start %s", now, start)
		}
		return nil
	})
}

type itemDef = map[string]any

// shopItems are a shop's products: a mug priced in dollars with a picture
// of its own, and tea priced in yen without one.
func shopItems() []itemDef {
	return []itemDef{
		{"sku": "MUG-RED-350", "name": "Red mug", "description": "Stoneware, 350 ml", "price": "19.99",
			"currency": "USD", "units": 4, "image_url": "https://shop.example/img/mug-red.jpg"},
		{"sku": "TEA-SENCHA", "name": "Sencha 100 g", "description": "First flush", "price": "1500",
			"currency": "JPY", "units": 3},
	}
}

// definition is a sale of shopItems from start for an hour.
func definition(start time.Time) map[string]any {
	return map[string]any{
		"starts_at": start.UTC().Format(time.RFC3339Nano), "ends_at": start.Add(time.Hour).UTC().Format(time.RFC3339Nano),
		"per_user_limit": 3, "hold_ttl": "10m", "items": shopItems(),
	}
}

// soon is a start adminStart ahead of the database's clock, in whole
// seconds so that the definition reads back as it was sent.
func soon(t *testing.T, srv *apitest.Server, ahead time.Duration) time.Time {
	t.Helper()
	return dbNow(t, srv).Add(ahead + time.Second).Truncate(time.Second)
}

// defineSale posts def and returns the created sale.
func defineSale(t *testing.T, srv *apitest.Server, bearer string, def map[string]any) map[string]any {
	t.Helper()
	r := adminDo(t, http.MethodPost, srv.URL+"/admin/sales", bearer, "", def)
	apitest.Expect(t, "POST /admin/sales", r, http.StatusCreated, "")
	s := adminSale(t, r.Body)
	if loc, want := r.Header.Get("Location"), fmt.Sprintf("/admin/sales/%d", apitest.Int(t, s, "id")); loc != want {
		t.Fatalf("Location %q, want %q", loc, want)
	}
	return s
}

func adminSale(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	s, ok := body["sale"].(map[string]any)
	if !ok {
		t.Fatalf("answer %v has no sale object", body)
	}
	return s
}

func saleURL(srv *apitest.Server, sale map[string]any, suffix string) string {
	return fmt.Sprintf("%s/admin/sales/%v%s", srv.URL, sale["id"], suffix)
}

// auditActions are the actions of a sale's audit trail, oldest first.
func auditActions(t *testing.T, srv *apitest.Server, saleID any) []map[string]any {
	t.Helper()
	r := adminDo(t, http.MethodGet, fmt.Sprintf("%s/admin/sales/%v/audit", srv.URL, saleID), opsBearer, "", nil)
	apitest.Expect(t, "GET audit", r, http.StatusOK, "")
	raw, _ := r.Body["actions"].([]any)
	out := make([]map[string]any, len(raw))
	for i, a := range raw {
		out[i], _ = a.(map[string]any)
	}
	return out
}

func actionNames(actions []map[string]any) []string {
	out := make([]string, len(actions))
	for i, a := range actions {
		out[i] = fmt.Sprintf("%v by %v", a["action"], a["actor"])
	}
	return out
}

func TestAdminOffByDefault(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{NoSale: true})
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		r := adminDo(t, method, srv.URL+"/admin/sales", opsBearer, "", nil)
		apitest.Check(t, method+" /admin/sales with the admin API off", r, http.StatusNotFound, "not_found")
	}
}

// adminJWT signs a token for sub with the given role claim ("" for none).
func adminJWT(t *testing.T, sub, role string) string {
	t.Helper()
	claims := jwt.MapClaims{"sub": sub}
	if role != "" {
		claims["role"] = role
	}
	return signClaims(t, testSecret, claims)
}

// signClaims signs claims, valid for an hour, with an HS256 secret.
func signClaims(t *testing.T, secret string, claims jwt.MapClaims) string {
	t.Helper()
	claims["exp"] = time.Now().Add(time.Hour).Unix()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAdminAuth(t *testing.T) {
	t.Parallel()
	v, err := auth.New(testSecret, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := adminServer(t, func(o *apitest.Options) {
		o.HTTP.Auth = v
		o.HTTP.Admin.JWT, o.HTTP.Admin.Role = v, "admin"
	})
	list := srv.URL + "/admin/sales"

	r := adminDo(t, http.MethodGet, list, "", "", nil)
	apitest.Check(t, "no token", r, http.StatusUnauthorized, "unauthorized")
	if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
		t.Errorf("no token: WWW-Authenticate %q, want a Bearer challenge", h)
	}
	for what, bearer := range map[string]string{
		"wrong admin token":         "0123456789abcdef-not-ops",
		"the token with its name":   opsToken,
		"a JWT signed with another": signClaims(t, "another-secret-another-secret-32b", jwt.MapClaims{"sub": "mallory", "role": "admin"}),
		"something else":            "not-a-jwt",
	} {
		r := adminDo(t, http.MethodGet, list, bearer, "", nil)
		apitest.Check(t, what, r, http.StatusUnauthorized, "unauthorized")
		if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q, want a Bearer challenge", what, h)
		}
	}
	for what, bearer := range map[string]string{
		"a JWT without a role":     adminJWT(t, "alice", ""),
		"a JWT with another role":  adminJWT(t, "alice", "shopper"),
		"a JWT with roles lacking": signClaims(t, testSecret, jwt.MapClaims{"sub": "alice", "roles": []string{"shopper"}}),
	} {
		apitest.Check(t, what, adminDo(t, http.MethodGet, list, bearer, "", nil), http.StatusForbidden, "forbidden")
	}

	// Who acted is recorded: the JWT's subject, the token's name.
	byJWT := defineSale(t, srv, adminJWT(t, "alice", "admin"), definition(soon(t, srv, time.Hour)))
	byRoles := defineSale(t, srv, signClaims(t, testSecret, jwt.MapClaims{"sub": "bob", "roles": []string{"shopper", "admin"}}), definition(soon(t, srv, 3*time.Hour)))
	byToken := defineSale(t, srv, opsBearer, definition(soon(t, srv, 5*time.Hour)))
	for _, c := range []struct {
		sale  map[string]any
		actor string
	}{{byJWT, "jwt:alice"}, {byRoles, "jwt:bob"}, {byToken, "token:ops"}} {
		if c.sale["defined_by"] != c.actor {
			t.Errorf("sale %v: defined_by %v, want %s", c.sale["id"], c.sale["defined_by"], c.actor)
		}
		if got := actionNames(auditActions(t, srv, c.sale["id"])); !slices.Equal(got, []string{"create by " + c.actor}) {
			t.Errorf("sale %v: audit %v, want a create by %s", c.sale["id"], got, c.actor)
		}
	}
	apitest.Check(t, "list with an admin JWT", adminDo(t, http.MethodGet, list, adminJWT(t, "alice", "admin"), "", nil),
		http.StatusOK, "")
	for _, c := range []struct {
		what, header string
		status       int
	}{
		{"a lower-case scheme", "bearer " + opsBearer, http.StatusOK},
		{"an upper-case scheme", "BEARER " + opsBearer, http.StatusOK},
		{"Basic", "Basic b3BzOnNlY3JldA==", http.StatusUnauthorized},
		{"a scheme alone", "Bearer", http.StatusUnauthorized},
		{"Bearer and spaces", "Bearer   ", http.StatusUnauthorized},
	} {
		req, err := http.NewRequest(http.MethodGet, list, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", c.header)
		r, err := apitest.SendRequest(apitest.Client, req)
		if err != nil {
			t.Fatal(err)
		}
		apitest.Check(t, "Authorization: "+c.what, r, c.status, "")
	}
}

// checkDefinition compares the definition a sale answers with the one sent.
func checkDefinition(t *testing.T, what string, s map[string]any, start time.Time, items []itemDef) {
	t.Helper()
	d, ok := s["definition"].(map[string]any)
	if !ok {
		t.Fatalf("%s: no definition in %v", what, s)
	}
	if got := apitest.Time(t, d, "starts_at"); !got.Equal(start) {
		t.Errorf("%s: definition starts_at %s, want %s", what, got, start)
	}
	if got := apitest.Time(t, d, "ends_at"); !got.Equal(start.Add(time.Hour)) {
		t.Errorf("%s: definition ends_at %s, want %s", what, got, start.Add(time.Hour))
	}
	got, _ := d["items"].([]any)
	if len(got) != len(items) {
		t.Fatalf("%s: %d items, want %d: %v", what, len(got), len(items), d["items"])
	}
	for i, want := range items {
		it, _ := got[i].(map[string]any)
		for k, v := range want {
			if k == "units" {
				if apitest.Int(t, it, k) != int64(v.(int)) {
					t.Errorf("%s: items[%d].units %v, want %v", what, i, it[k], v)
				}
				continue
			}
			if it[k] != v {
				t.Errorf("%s: items[%d].%s %#v, want %#v", what, i, k, it[k], v)
			}
		}
	}
}

func TestAdminDefineSale(t *testing.T) {
	t.Parallel()
	srv := adminServer(t, nil)
	start := soon(t, srv, time.Hour)
	made := defineSale(t, srv, opsBearer, definition(start))
	for k, want := range map[string]any{
		"status": "scheduled", "defined_by": "token:ops", "paused_at": nil, "units_total": 7.0, "units_available": 7.0,
		"units_sold": 0.0, "units_held": 0.0, "items": 2.0, "per_user_limit": 3.0, "hold_ttl_seconds": 600.0, "buyers": 0.0,
	} {
		if made[k] != want {
			t.Errorf("created sale: %s = %#v, want %#v", k, made[k], want)
		}
	}
	checkDefinition(t, "created sale", made, start, shopItems())

	r := adminDo(t, http.MethodGet, saleURL(srv, made, ""), opsBearer, "", nil)
	apitest.Expect(t, "GET the sale", r, http.StatusOK, "")
	read := adminSale(t, r.Body)
	if apitest.Int(t, read, "units_available") != 7 || apitest.Int(t, read, "units_total") != 7 || read["status"] != "scheduled" {
		t.Errorf("GET the sale: counts %v", read)
	}
	checkDefinition(t, "GET the sale", read, start, shopItems())

	// The database holds exactly the units defined, per item.
	for sku, want := range map[string]int64{"MUG-RED-350": 4, "TEA-SENCHA": 3} {
		n := scalar(t, srv, "SELECT count(*) FROM units u JOIN items i USING (sale_id, item_id) WHERE u.sale_id = $1 AND i.sku = $2",
			made["id"], sku)
		if n != want {
			t.Errorf("%s: %d units in the database, want %d", sku, n, want)
		}
	}

	r = adminDo(t, http.MethodGet, srv.URL+"/admin/sales", opsBearer, "", nil)
	apitest.Expect(t, "list sales", r, http.StatusOK, "")
	sales, _ := r.Body["sales"].([]any)
	if len(sales) != 1 || sales[0].(map[string]any)["id"] != made["id"] || r.Body["next_since"] != nil {
		t.Errorf("list: %s, want the one sale and no next page", r.Raw)
	}

	actions := auditActions(t, srv, made["id"])
	if got := actionNames(actions); !slices.Equal(got, []string{"create by token:ops"}) {
		t.Fatalf("audit %v, want one create", got)
	}
	after, _ := actions[0]["after"].(map[string]any)
	if actions[0]["before"] != nil || after == nil || apitest.Int(t, after, "units_total") != 7 {
		t.Errorf("create's audit row: before %v, after %v", actions[0]["before"], actions[0]["after"])
	}

	// Definitions may be far larger than the 16 KiB of other requests, up
	// to 8 MiB. One unit an item keeps the edit well inside its deadline
	// (half the 2 s lead) on a loaded machine.
	big := definition(start.Add(2 * time.Hour))
	var many []itemDef
	for i := range 500 {
		many = append(many, itemDef{"sku": fmt.Sprintf("SKU-%04d", i), "name": fmt.Sprintf("Product %d", i),
			"description": strings.Repeat("d", 100), "price": "1.25", "currency": "EUR", "units": 1})
	}
	big["items"] = many
	if s := defineSale(t, srv, opsBearer, big); apitest.Int(t, s, "units_total") != 500 || apitest.Int(t, s, "items") != 500 {
		t.Errorf("a sale of 500 items: %v units over %v items, want 500 over 500", s["units_total"], s["items"])
	}
	huge := `{"items":[` + strings.Repeat(`{"sku":"A","name":"`+strings.Repeat("x", 1000)+`"},`, 9<<10) + `{}]}`
	apitest.Check(t, "a definition over 8 MiB", adminDo(t, http.MethodPost, srv.URL+"/admin/sales", opsBearer, "application/json", huge),
		http.StatusRequestEntityTooLarge, "request_too_large")

	apitest.Check(t, "GET a sale that does not exist",
		adminDo(t, http.MethodGet, srv.URL+"/admin/sales/999999", opsBearer, "", nil), http.StatusNotFound, "sale_not_found")
	apitest.Check(t, "pause a sale that does not exist",
		adminDo(t, http.MethodPost, srv.URL+"/admin/sales/999999/pause", opsBearer, "", nil), http.StatusNotFound, "sale_not_found")
	apitest.Check(t, "a sale id that is not a number",
		adminDo(t, http.MethodGet, srv.URL+"/admin/sales/first", opsBearer, "", nil), http.StatusBadRequest, "invalid_request")
	// The admin routes answer like every other: 404 for a path that is
	// not one (token or not), 405 for a method, HEAD wherever GET is.
	for _, bearer := range []string{"", opsBearer} {
		apitest.Check(t, "an unknown admin path", adminDo(t, http.MethodGet, srv.URL+"/admin/nope", bearer, "", nil),
			http.StatusNotFound, "not_found")
	}
	r = adminDo(t, http.MethodPatch, srv.URL+"/admin/sales", opsBearer, "", nil)
	if apitest.Check(t, "PATCH /admin/sales", r, http.StatusMethodNotAllowed, "method_not_allowed") &&
		!strings.Contains(r.Header.Get("Allow"), http.MethodPost) {
		t.Errorf("PATCH /admin/sales: Allow %q, want GET and POST among them", r.Header.Get("Allow"))
	}
	if r := adminDo(t, http.MethodHead, saleURL(srv, made, ""), opsBearer, "", nil); r.Status != http.StatusOK || len(r.Raw) != 0 {
		t.Errorf("HEAD of a sale: %d with %d bytes, want 200 without a body", r.Status, len(r.Raw))
	}
	if r := adminDo(t, http.MethodHead, saleURL(srv, made, ""), "", "", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("HEAD of a sale without a token: %d, want 401", r.Status)
	}
	apitest.Check(t, "a body that is neither JSON nor CSV",
		adminDo(t, http.MethodPost, srv.URL+"/admin/sales", opsBearer, "text/plain", "hello"),
		http.StatusUnsupportedMediaType, "unsupported_media_type")
}

func scalar(t *testing.T, srv *apitest.Server, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := srv.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// fieldsOf are the field paths of an invalid_definition answer.
func fieldsOf(t *testing.T, r apitest.Reply) []string {
	t.Helper()
	e, _ := r.Body["error"].(map[string]any)
	raw, _ := e["fields"].([]any)
	var out []string
	for _, f := range raw {
		m, _ := f.(map[string]any)
		field, _ := m["field"].(string)
		if msg, _ := m["message"].(string); msg == "" {
			t.Errorf("field %q without a message: %s", field, r.Raw)
		}
		out = append(out, field)
	}
	return out
}

// checkInvalid checks that r is 400 invalid_definition naming exactly fields.
func checkInvalid(t *testing.T, what string, r apitest.Reply, fields ...string) {
	t.Helper()
	if !apitest.Check(t, what, r, http.StatusBadRequest, "invalid_definition") {
		return
	}
	if got := fieldsOf(t, r); !slices.Equal(got, fields) {
		t.Errorf("%s: fields %q, want %q: %s", what, got, fields, r.Raw)
	}
}

func TestAdminValidation(t *testing.T) {
	t.Parallel()
	srv := adminServer(t, nil)
	start := soon(t, srv, time.Hour)
	now := dbNow(t, srv)
	item := func(i int, k string, v any) func(d map[string]any) {
		return func(d map[string]any) { d["items"].([]itemDef)[i][k] = v }
	}
	cases := []struct {
		name   string
		change func(d map[string]any)
		fields []string
	}{
		{"duplicate skus", item(1, "sku", "MUG-RED-350"), []string{"items[1].sku"}},
		{"a sku with a space", item(0, "sku", "RED MUG"), []string{"items[0].sku"}},
		{"no items", func(d map[string]any) { d["items"] = []itemDef{} }, []string{"items"}},
		{"items left out", func(d map[string]any) { delete(d, "items") }, []string{"items"}},
		{"0 units", item(0, "units", 0), []string{"items[0].units"}},
		{"too many units", item(1, "units", sale.MaxItemUnits+1), []string{"items[1].units"}},
		{"a negative price", item(0, "price", "-1.00"), []string{"items[0].price"}},
		{"3 decimals in USD", item(0, "price", "19.999"), []string{"items[0].price"}},
		{"decimals in JPY", item(1, "price", "1500.5"), []string{"items[1].price"}},
		{"a price that is not a number", item(0, "price", "cheap"), []string{"items[0].price"}},
		{"an unknown currency", item(0, "currency", "ZZZ"), []string{"items[0].currency"}},
		{"a currency in lower case", item(1, "currency", "usd"), []string{"items[1].currency"}},
		{"no name", item(0, "name", ""), []string{"items[0].name"}},
		{"an ftp image", item(0, "image_url", "ftp://x"), []string{"items[0].image_url"}},
		{"a javascript image", item(1, "image_url", "javascript:alert(1)"), []string{"items[1].image_url"}},
		{"a relative image", item(1, "image_url", "/img/tea.jpg"), []string{"items[1].image_url"}},
		{"a start in the past", func(d map[string]any) {
			d["starts_at"] = now.Add(-time.Hour).UTC().Format(time.RFC3339)
		}, []string{"starts_at"}},
		{"a start within the lead", func(d map[string]any) {
			d["starts_at"] = now.Add(adminLead / 2).UTC().Format(time.RFC3339Nano)
			d["ends_at"] = now.Add(time.Hour).UTC().Format(time.RFC3339)
		}, []string{"starts_at"}},
		{"an end before the start", func(d map[string]any) {
			d["ends_at"] = start.Add(-time.Minute).UTC().Format(time.RFC3339)
		}, []string{"ends_at"}},
		{"an end equal to the start", func(d map[string]any) { d["ends_at"] = d["starts_at"] }, []string{"ends_at"}},
		{"a per-user limit too high", func(d map[string]any) { d["per_user_limit"] = sale.MaxPerUserLimit + 1 }, []string{"per_user_limit"}},
		{"a hold TTL that is not a duration", func(d map[string]any) { d["hold_ttl"] = "ten minutes" }, []string{"hold_ttl"}},
		{"an unknown field", func(d map[string]any) { d["colour"] = "red" }, []string{"colour"}},
		{"a number as text", func(d map[string]any) { d["per_user_limit"] = "3" }, []string{"per_user_limit"}},
		{"every broken rule at once", func(d map[string]any) {
			d["ends_at"] = start.Add(-time.Minute).UTC().Format(time.RFC3339)
			d["items"].([]itemDef)[0]["units"] = 0
			d["items"].([]itemDef)[1]["currency"] = "ZZZ"
		}, []string{"ends_at", "items[0].units", "items[1].currency"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := definition(start)
			c.change(d)
			checkInvalid(t, c.name, adminDo(t, http.MethodPost, srv.URL+"/admin/sales", opsBearer, "", d), c.fields...)
		})
	}
	if n := scalar(t, srv, "SELECT count(*) FROM sales"); n != 0 {
		t.Errorf("%d sales after only invalid definitions, want 0", n)
	}
	if n := scalar(t, srv, "SELECT count(*) FROM admin_actions"); n != 0 {
		t.Errorf("%d audit rows after only invalid definitions, want 0", n)
	}
}

func TestAdminOverlap(t *testing.T) {
	t.Parallel()
	srv := adminServer(t, nil)
	start := soon(t, srv, time.Hour)
	first := defineSale(t, srv, opsBearer, definition(start))

	for what, at := range map[string]time.Duration{"starting inside": 30 * time.Minute, "ending inside": -30 * time.Minute} {
		r := adminDo(t, http.MethodPost, srv.URL+"/admin/sales", opsBearer, "", definition(start.Add(at)))
		apitest.Check(t, "a window "+what+" another sale's", r, http.StatusConflict, "sale_overlap")
	}
	// Windows are half-open: the next hour is free.
	next := defineSale(t, srv, opsBearer, definition(start.Add(time.Hour)))
	if next["id"] == first["id"] {
		t.Fatalf("the adjacent sale has the first one's id")
	}
	// Moving the second onto the first is refused as well.
	r := adminDo(t, http.MethodPut, saleURL(srv, next, ""), opsBearer, "", definition(start.Add(10*time.Minute)))
	apitest.Check(t, "a replacement overlapping another sale", r, http.StatusConflict, "sale_overlap")
	if n := scalar(t, srv, "SELECT count(*) FROM sales"); n != 2 {
		t.Errorf("%d sales, want 2", n)
	}
}

func TestAdminDefinitionReplacesGeneratedSales(t *testing.T) {
	t.Parallel()
	srv := adminServer(t, func(o *apitest.Options) { o.Settings.NoGeneratedSales = false })
	ctx := context.Background()
	// Two generated sales made ahead, hours before they start.
	hour := sale.WindowStart(dbNow(t, srv), time.Hour).Add(3 * time.Hour)
	for _, at := range []time.Time{hour, hour.Add(time.Hour)} {
		if _, err := srv.Sales.EnsureSale(ctx, at); err != nil {
			t.Fatal(err)
		}
	}
	generated := []int64{
		scalar(t, srv, "SELECT id FROM sales WHERE starts_at = $1", hour),
		scalar(t, srv, "SELECT id FROM sales WHERE starts_at = $1", hour.Add(time.Hour)),
	}
	made := defineSale(t, srv, opsBearer, definition(hour.Add(30*time.Minute)))
	for _, id := range generated {
		apitest.Check(t, fmt.Sprintf("the generated sale %d it replaced", id),
			apitest.Get(t, fmt.Sprintf("%s/sales/%d", srv.URL, id)), http.StatusNotFound, "sale_not_found")
	}
	if n := scalar(t, srv, "SELECT count(*) FROM sales"); n != 1 {
		t.Errorf("%d sales, want the defined one alone", n)
	}
	if n := scalar(t, srv, "SELECT count(*) FROM units WHERE sale_id = ANY($1)", generated); n != 0 {
		t.Errorf("%d units of the replaced sales remain", n)
	}
	pub := apitest.GetOK(t, fmt.Sprintf("%s/sales/%v", srv.URL, made["id"]))
	if apitest.Int(t, pub, "units_total") != 7 {
		t.Errorf("the defined sale: %v", pub)
	}
}

// csvBody is shopItems as the CSV upload takes them.
const csvBody = "sku,name,description,price,currency,units,image_url\n" +
	"MUG-RED-350,Red mug,\"Stoneware, 350 ml\",19.99,USD,4,https://shop.example/img/mug-red.jpg\n" +
	"TEA-SENCHA,Sencha 100 g,First flush,1500,JPY,3,\n"

func TestAdminCSVUpload(t *testing.T) {
	t.Parallel()
	srv := adminServer(t, nil)
	start := soon(t, srv, time.Hour)
	q := url.Values{
		"starts_at": {start.UTC().Format(time.RFC3339)}, "ends_at": {start.Add(time.Hour).UTC().Format(time.RFC3339)},
		"per_user_limit": {"3"}, "hold_ttl": {"10m"},
	}
	r := adminDo(t, http.MethodPost, srv.URL+"/admin/sales?"+q.Encode(), opsBearer, "text/csv", csvBody)
	apitest.Expect(t, "POST CSV", r, http.StatusCreated, "")
	made := adminSale(t, r.Body)
	checkDefinition(t, "the CSV sale", made, start, shopItems())
	if apitest.Int(t, made, "per_user_limit") != 3 || apitest.Int(t, made, "units_total") != 7 {
		t.Errorf("the CSV sale: %v", made)
	}

	// The same sale as JSON, an hour later, has the same definition but
	// for its window.
	viaJSON := defineSale(t, srv, opsBearer, definition(start.Add(time.Hour)))
	dj, dc := viaJSON["definition"].(map[string]any), made["definition"].(map[string]any)
	if fmt.Sprint(dj["items"]) != fmt.Sprint(dc["items"]) || dj["hold_ttl"] != dc["hold_ttl"] {
		t.Errorf("CSV items %v, JSON items %v", dc["items"], dj["items"])
	}

	later := start.Add(3 * time.Hour)
	q.Set("starts_at", later.UTC().Format(time.RFC3339))
	q.Set("ends_at", later.Add(time.Hour).UTC().Format(time.RFC3339))
	bad := "sku,name,price,currency,units\nA,Apple,1.00,USD,2\nB,Banana,0.50,USD,many\n"
	csv := func(query, body string) apitest.Reply {
		return adminDo(t, http.MethodPost, srv.URL+"/admin/sales?"+query, opsBearer, "text/csv", body)
	}
	checkInvalid(t, "CSV with units that are not a number", csv(q.Encode(), bad), "items[1].units")
	checkInvalid(t, "CSV without the price, currency and units columns", csv(q.Encode(), "sku,name\nA,Apple\n"), "items")
	checkInvalid(t, "CSV without a window", csv("per_user_limit=3", csvBody), "starts_at", "ends_at")
	q.Set("ends_at", "tomorrow")
	checkInvalid(t, "CSV with an end that is not a time", csv(q.Encode(), csvBody), "ends_at")
}

func TestAdminReplaceAndDeleteBeforeStart(t *testing.T) {
	t.Parallel()
	srv := adminServer(t, nil)
	start := soon(t, srv, time.Hour)
	made := defineSale(t, srv, opsBearer, definition(start))

	def := definition(start.Add(30 * time.Minute))
	items := shopItems()
	items[0]["price"], items[0]["units"] = "17.50", 10
	items = append(items, itemDef{"sku": "BOWL-1", "name": "Bowl", "price": "0", "currency": "EUR", "units": 1})
	def["items"] = items
	r := adminDo(t, http.MethodPut, saleURL(srv, made, ""), opsBearer, "", def)
	apitest.Expect(t, "PUT before the start", r, http.StatusOK, "")
	replaced := adminSale(t, r.Body)
	if replaced["id"] != made["id"] || apitest.Int(t, replaced, "units_total") != 14 || apitest.Int(t, replaced, "items") != 3 {
		t.Errorf("replaced sale: %v", replaced)
	}
	items[2]["price"] = "0.00" // as the definition writes it back, with EUR's digits
	checkDefinition(t, "the replaced sale", replaced, start.Add(30*time.Minute), items)
	if n := scalar(t, srv, "SELECT count(*) FROM units WHERE sale_id = $1", made["id"]); n != 14 {
		t.Errorf("%d units after the replacement, want 14", n)
	}

	actions := auditActions(t, srv, made["id"])
	if got := actionNames(actions); !slices.Equal(got, []string{"create by token:ops", "replace by token:ops"}) {
		t.Fatalf("audit %v", got)
	}
	before, _ := actions[1]["before"].(map[string]any)
	after, _ := actions[1]["after"].(map[string]any)
	if before == nil || after == nil || apitest.Int(t, before, "units_total") != 7 || apitest.Int(t, after, "units_total") != 14 {
		t.Fatalf("replace's audit row: before %v after %v", actions[1]["before"], actions[1]["after"])
	}
	if bi, ai := before["items"].([]any), after["items"].([]any); len(bi) != 2 || len(ai) != 3 ||
		bi[0].(map[string]any)["price_cents"] != 1999.0 || ai[0].(map[string]any)["price_cents"] != 1750.0 {
		t.Errorf("replace's audit items: before %v after %v", bi, ai)
	}

	apitest.Check(t, "PUT of a sale that does not exist",
		adminDo(t, http.MethodPut, srv.URL+"/admin/sales/999999", opsBearer, "", definition(start.Add(5*time.Hour))),
		http.StatusNotFound, "sale_not_found")

	r = adminDo(t, http.MethodDelete, saleURL(srv, made, ""), opsBearer, "", nil)
	if r.Status != http.StatusNoContent {
		t.Fatalf("DELETE before the start: %d %s", r.Status, r.Raw)
	}
	apitest.Check(t, "GET a deleted sale", adminDo(t, http.MethodGet, saleURL(srv, made, ""), opsBearer, "", nil),
		http.StatusNotFound, "sale_not_found")
	apitest.Check(t, "DELETE it again", adminDo(t, http.MethodDelete, saleURL(srv, made, ""), opsBearer, "", nil),
		http.StatusNotFound, "sale_not_found")
	if n := scalar(t, srv, "SELECT count(*) FROM units WHERE sale_id = $1", made["id"]); n != 0 {
		t.Errorf("%d units of the deleted sale remain", n)
	}
	actions = auditActions(t, srv, made["id"])
	if got := actionNames(actions); !slices.Equal(got, []string{"create by token:ops", "replace by token:ops", "delete by token:ops"}) {
		t.Fatalf("audit after the delete %v", got)
	}
	if actions[2]["after"] != nil || actions[2]["before"] == nil {
		t.Errorf("delete's audit row: before %v after %v", actions[2]["before"], actions[2]["after"])
	}
}

// checkItem compares an item of a shopper's answer with the shop's.
func checkItem(t *testing.T, what string, got any, want itemDef, saleID any, id int) {
	t.Helper()
	it, ok := got.(map[string]any)
	if !ok {
		t.Fatalf("%s: item %#v is not an object", what, got)
	}
	image, _ := want["image_url"].(string)
	if image == "" {
		image = fmt.Sprintf("/items/%v/%d/image.svg", saleID, id)
	}
	for k, v := range map[string]any{
		"id": float64(id), "sku": want["sku"], "name": want["name"], "description": want["description"],
		"price": want["price"], "currency": want["currency"], "image_url": image,
	} {
		if it[k] != v {
			t.Errorf("%s: item %s = %#v, want %#v", what, k, it[k], v)
		}
	}
}

func TestAdminRunningSale(t *testing.T) {
	t.Parallel()
	srv := adminServer(t, nil)
	start := soon(t, srv, adminStart)
	made := defineSale(t, srv, opsBearer, definition(start))
	id := made["id"]
	items := shopItems()

	apitest.Check(t, "pause before the start", adminDo(t, http.MethodPost, saleURL(srv, made, "/pause"), opsBearer, "", nil),
		http.StatusConflict, "sale_not_running")
	apitest.Check(t, "checkout before the start", apitest.Checkout(t, srv.URL, "alice", 1),
		http.StatusServiceUnavailable, "no_active_sale")

	waitForStart(t, srv, start)

	apitest.Check(t, "PUT after the start", adminDo(t, http.MethodPut, saleURL(srv, made, ""), opsBearer, "",
		definition(start.Add(2*time.Hour))), http.StatusConflict, "sale_started")
	apitest.Check(t, "DELETE after the start", adminDo(t, http.MethodDelete, saleURL(srv, made, ""), opsBearer, "", nil),
		http.StatusConflict, "sale_started")

	// Shoppers see the shop's items.
	r := apitest.Do(t, http.MethodPost, srv.URL+"/checkout?user_id=alice&sku=MUG-RED-350", "", nil)
	apitest.Expect(t, "checkout by sku", r, http.StatusCreated, "")
	checkItem(t, "checkout by sku", r.Body["item"], items[0], id, 1)
	bought := apitest.Bought(t, srv.URL, r.Body)
	checkItem(t, "purchase", bought["item"], items[0], id, 1)

	byID := apitest.Held(t, srv.URL, "alice", 2)
	checkItem(t, "checkout by id", byID["item"], items[1], id, 2)
	r = apitest.Do(t, http.MethodPost, srv.URL+"/checkout", "application/json",
		strings.NewReader(`{"user_id":"alice","sku":"TEA-SENCHA"}`))
	apitest.Expect(t, "checkout by sku in the body", r, http.StatusCreated, "")
	checkItem(t, "checkout by sku in the body", r.Body["item"], items[1], id, 2)
	apitest.Check(t, "checkout by an unknown sku",
		apitest.Do(t, http.MethodPost, srv.URL+"/checkout?user_id=erin&sku=NOPE", "", nil), http.StatusNotFound, "item_not_found")
	apitest.Check(t, "checkout by id and sku",
		apitest.Do(t, http.MethodPost, srv.URL+"/checkout?user_id=erin&id=1&sku=MUG-RED-350", "", nil),
		http.StatusBadRequest, "invalid_request")

	mine := apitest.GetOK(t, srv.URL+"/users/alice/purchases")
	if ps, _ := mine["purchases"].([]any); len(ps) != 1 {
		t.Errorf("alice's purchases: %v", mine)
	} else {
		checkItem(t, "alice's purchases", ps[0].(map[string]any)["item"], items[0], id, 1)
	}
	page := apitest.GetOK(t, srv.URL+"/sales/current/items")
	if listed, _ := page["items"].([]any); len(listed) != 2 {
		t.Errorf("current items: %v", page)
	} else {
		for i, want := range items {
			checkItem(t, "current items", listed[i], want, id, i+1)
		}
		if free := listed[0].(map[string]any)["free_units"]; free != 3.0 {
			t.Errorf("the mug's free units %v, want 3", free)
		}
	}

	// Paused: new checkouts are refused and stored so; a hold made before
	// can still be bought.
	held := apitest.Held(t, srv.URL, "bob", 1)
	r = adminDo(t, http.MethodPost, saleURL(srv, made, "/pause"), opsBearer, "", nil)
	apitest.Expect(t, "pause", r, http.StatusOK, "")
	if s := adminSale(t, r.Body); r.Body["changed"] != true || s["status"] != "paused" || s["paused_at"] == nil {
		t.Errorf("pause: %s", r.Raw)
	}
	r = adminDo(t, http.MethodPost, saleURL(srv, made, "/pause"), opsBearer, "", nil)
	apitest.Expect(t, "pause again", r, http.StatusOK, "")
	if r.Body["changed"] != false || adminSale(t, r.Body)["status"] != "paused" {
		t.Errorf("pause again: %s", r.Raw)
	}
	apitest.Check(t, "checkout while paused", apitest.Checkout(t, srv.URL, "carol", 1), http.StatusConflict, "sale_paused")
	apitest.Check(t, "checkout by sku while paused",
		apitest.Do(t, http.MethodPost, srv.URL+"/checkout?user_id=carol&sku=TEA-SENCHA", "", nil), http.StatusConflict, "sale_paused")
	if n := scalar(t, srv, "SELECT count(*) FROM checkout_attempts WHERE sale_id = $1 AND user_id = 'carol' AND outcome = 'sale_paused'", id); n != 2 {
		t.Errorf("%d of carol's attempts stored as sale_paused, want 2", n)
	}
	if n := scalar(t, srv, "SELECT count(*) FROM checkout_attempts WHERE user_id = 'carol'"); n != 2 {
		t.Errorf("%d attempts by carol, want 2", n)
	}
	checkItem(t, "purchase of a hold made before the pause", apitest.Bought(t, srv.URL, held)["item"], items[0], id, 1)

	r = adminDo(t, http.MethodPost, saleURL(srv, made, "/resume"), opsBearer, "", nil)
	apitest.Expect(t, "resume", r, http.StatusOK, "")
	if s := adminSale(t, r.Body); r.Body["changed"] != true || s["status"] != "running" || s["paused_at"] != nil {
		t.Errorf("resume: %s", r.Raw)
	}
	r = adminDo(t, http.MethodPost, saleURL(srv, made, "/resume"), opsBearer, "", nil)
	apitest.Expect(t, "resume again", r, http.StatusOK, "")
	if r.Body["changed"] != false {
		t.Errorf("resume again: %s", r.Raw)
	}
	checkItem(t, "checkout after the resume", apitest.Held(t, srv.URL, "carol", 1)["item"], items[0], id, 1)

	r = adminDo(t, http.MethodPost, saleURL(srv, made, "/end"), opsBearer, "", nil)
	apitest.Expect(t, "end", r, http.StatusOK, "")
	if s := adminSale(t, r.Body); r.Body["changed"] != true || s["status"] != "ended" {
		t.Errorf("end: %s", r.Raw)
	}
	apitest.Check(t, "checkout after the end", apitest.Checkout(t, srv.URL, "dave", 2), http.StatusServiceUnavailable, "no_active_sale")
	r = adminDo(t, http.MethodGet, saleURL(srv, made, ""), opsBearer, "", nil)
	apitest.Expect(t, "GET the ended sale", r, http.StatusOK, "")
	if s := adminSale(t, r.Body); s["status"] != "ended" || apitest.Int(t, s, "units_sold") != 2 {
		t.Errorf("the ended sale: %s", r.Raw)
	}
	for _, action := range []string{"pause", "resume", "end"} {
		apitest.Check(t, action+" after the end", adminDo(t, http.MethodPost, saleURL(srv, made, "/"+action), opsBearer, "", nil),
			http.StatusConflict, "sale_not_running")
	}

	want := []string{"create by token:ops", "pause by token:ops", "resume by token:ops", "end by token:ops"}
	if got := actionNames(auditActions(t, srv, id)); !slices.Equal(got, want) {
		t.Errorf("audit %v, want %v", got, want)
	}
	if n := scalar(t, srv, "SELECT count(*) FROM admin_audit WHERE sale_id = $1 AND action = 'pause' AND paused", id); n != 1 {
		t.Errorf("admin_audit shows %d pauses with paused set, want 1", n)
	}
}

// TestOpenAPIDescribesAdmin: every admin route is in the document, behind
// the admin bearer scheme, and the document's bounds on a definition are
// the ones Go enforces.
func TestOpenAPIDescribesAdmin(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	if err := json.Unmarshal(httpapi.OpenAPIJSON(), &doc); err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	for path, methods := range map[string][]string{
		"/admin/sales":                  {"get", "post"},
		"/admin/sales/{sale_id}":        {"get", "put", "delete"},
		"/admin/sales/{sale_id}/audit":  {"get"},
		"/admin/sales/{sale_id}/pause":  {"post"},
		"/admin/sales/{sale_id}/resume": {"post"},
		"/admin/sales/{sale_id}/end":    {"post"},
	} {
		for _, m := range methods {
			op := walk(t, doc, []string{"paths", path, m})
			if sec := fmt.Sprint(op["security"]); sec != "[map[adminAuth:[]]]" {
				t.Errorf("%s %s: security %s, want adminAuth alone", m, path, sec)
			}
		}
	}
	for _, c := range []struct {
		path []string
		key  string
		want int
	}{
		{[]string{"components", "schemas", "ItemDefinition", "properties", "units"}, "maximum", sale.MaxItemUnits},
		{[]string{"components", "schemas", "SaleDefinition", "properties", "items"}, "maxItems", sale.MaxSaleItems},
		{[]string{"components", "schemas", "SaleDefinition", "properties", "per_user_limit"}, "maximum", sale.MaxPerUserLimit},
		{[]string{"components", "parameters", "CSVPerUserLimit", "schema"}, "maximum", sale.MaxPerUserLimit},
	} {
		if got := walk(t, doc, c.path)[c.key]; got != float64(c.want) {
			t.Errorf("OpenAPI %s.%s = %v, Go's bound is %d", strings.Join(c.path, "."), c.key, got, c.want)
		}
	}
	params, _ := walk(t, doc, []string{"paths", "/admin/sales", "get"})["parameters"].([]any)
	found := false
	for _, p := range params {
		if p, _ := p.(map[string]any); p["name"] == "limit" {
			found = true
			if got := p["schema"].(map[string]any)["maximum"]; got != float64(sale.MaxListedSales) {
				t.Errorf("OpenAPI GET /admin/sales limit maximum %v, Go's bound is %d", got, sale.MaxListedSales)
			}
		}
	}
	if !found {
		t.Errorf("OpenAPI GET /admin/sales has no limit parameter")
	}
}
