package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
)

type inputCase struct {
	name   string
	method string
	path   string // with the query string
	ctype  string
	body   string
	// chunked hides the body's length, so only reading it can find it too large.
	chunked bool
	status  int
	code    string // for errors; "" accepts any code
}

func (c inputCase) send(t *testing.T, base string) apitest.Reply {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
		if c.chunked {
			body = io.MultiReader(body) // a reader http cannot measure
		}
	}
	return apitest.Do(t, c.method, base+c.path, c.ctype, body)
}

// inputCases are checkout and purchase requests, bad and good; code is a
// live checkout code and saleID the current sale.
func inputCases(saleID int64, code string) []inputCase {
	const post, get, ok, created, bad = http.MethodPost, http.MethodGet, http.StatusOK, http.StatusCreated, http.StatusBadRequest
	const jsonCT, invalid = "application/json", "invalid_request"
	big := `{"user_id":"big","id":1,"pad":"` + strings.Repeat("x", 17<<10) + `"}`
	long := strings.Repeat("a", sale.MaxUserIDBytes+1)
	return []inputCase{
		{name: "checkout user_id missing", method: post, path: "/checkout?id=1", status: bad, code: invalid},
		{name: "checkout user_id empty", method: post, path: "/checkout?user_id=&id=1", status: bad, code: invalid},
		{name: "checkout user_id one byte too long", method: post, path: "/checkout?id=1&user_id=" + long, status: bad, code: invalid},
		{name: "checkout user_id at the limit", method: post, path: "/checkout?id=1&user_id=" + long[1:], status: created},
		{name: "checkout user_id NUL", method: post, path: "/checkout?id=1&user_id=a%00b", status: bad, code: invalid},
		{name: "checkout user_id newline", method: post, path: "/checkout?id=1&user_id=a%0Ab", status: bad, code: invalid},
		{name: "checkout user_id DEL", method: post, path: "/checkout?id=1&user_id=a%7Fb", status: bad, code: invalid},
		{name: "checkout user_id invalid UTF-8", method: post, path: "/checkout?id=1&user_id=a%ffb", status: bad, code: invalid},
		{name: "checkout id missing", method: post, path: "/checkout?user_id=u", status: bad, code: invalid},
		{name: "checkout id 0", method: post, path: "/checkout?user_id=u&id=0", status: bad, code: invalid},
		{name: "checkout id -1", method: post, path: "/checkout?user_id=u&id=-1", status: bad, code: invalid},
		{name: "checkout id abc", method: post, path: "/checkout?user_id=u&id=abc", status: bad, code: invalid},
		{name: "checkout id 1.5", method: post, path: "/checkout?user_id=u&id=1.5", status: bad, code: invalid},
		{name: "checkout id overflow", method: post, path: "/checkout?user_id=u&id=99999999999999999999", status: bad, code: invalid},
		{name: "checkout item_id", method: post, path: "/checkout?user_id=item-id&item_id=2", status: created},
		{name: "checkout id past the items", method: post, path: "/checkout?user_id=u&id=31", status: http.StatusNotFound, code: "item_not_found"},
		{name: "checkout id past int32", method: post, path: "/checkout?user_id=u&id=2147483648", status: http.StatusNotFound, code: "item_not_found"},
		{name: "checkout JSON number id", method: post, path: "/checkout", ctype: jsonCT, body: `{"user_id":"json-num","id":3}`, status: created},
		{name: "checkout JSON string item_id", method: post, path: "/checkout", ctype: jsonCT, body: `{"user_id":"json-str","item_id":"3"}`, status: created},
		{name: "checkout JSON fractional id", method: post, path: "/checkout", ctype: jsonCT, body: `{"user_id":"u","id":3.5}`, status: bad, code: invalid},
		{name: "checkout JSON object id", method: post, path: "/checkout", ctype: jsonCT, body: `{"user_id":"u","id":{}}`, status: bad, code: invalid},
		{name: "checkout JSON user_id NUL", method: post, path: "/checkout", ctype: jsonCT, body: `{"user_id":"a\u0000b","id":1}`, status: bad, code: invalid},
		{name: "checkout malformed JSON", method: post, path: "/checkout", ctype: jsonCT, body: `{"user_id":`, status: bad, code: invalid},
		{name: "checkout JSON array", method: post, path: "/checkout", ctype: jsonCT, body: `[{"user_id":"u","id":1}]`, status: bad, code: invalid},
		{name: "checkout JSON null", method: post, path: "/checkout?user_id=u&id=1", ctype: jsonCT, body: `null`, status: bad, code: invalid},
		// The query string wins over the body, aliases included: item 99 is
		// not in the sale, so answering 404 shows the query's id was used.
		{name: "checkout query item_id beats body id", method: post, path: "/checkout?user_id=u&item_id=99", ctype: jsonCT, body: `{"id":1}`, status: http.StatusNotFound, code: "item_not_found"},
		{name: "checkout text/plain body", method: post, path: "/checkout", ctype: "text/plain", body: "user_id=u&id=1", status: bad, code: invalid},
		{name: "checkout body over the limit", method: post, path: "/checkout", ctype: jsonCT, body: big, status: http.StatusRequestEntityTooLarge, code: "request_too_large"},
		// A chunked body is refused whatever its size (refuseTransferEncoding).
		{name: "checkout chunked body", method: post, path: "/checkout", ctype: jsonCT, body: `{"user_id":"u","id":1}`, chunked: true, status: bad, code: invalid},
		{name: "checkout chunked body over the limit", method: post, path: "/checkout", ctype: jsonCT, body: big, chunked: true, status: bad, code: invalid},
		{name: "purchase code missing", method: post, path: "/purchase", status: bad, code: invalid},
		{name: "purchase code empty", method: post, path: "/purchase?code=", status: bad, code: invalid},
		{name: "purchase code 200 bytes", method: post, path: "/purchase?code=" + strings.Repeat("c", 200), status: bad, code: invalid},
		{name: "purchase code control char", method: post, path: "/purchase?code=ab%01cd", status: bad, code: invalid},
		{name: "purchase code invalid UTF-8", method: post, path: "/purchase?code=ab%ffcd", status: bad, code: invalid},
		{name: "purchase code unknown", method: post, path: "/purchase?code=nosuchcode", status: http.StatusNotFound, code: "code_not_found"},
		{name: "purchase JSON number code", method: post, path: "/purchase", ctype: jsonCT, body: `{"code":123}`, status: bad, code: invalid},
		{name: "checkout JSON user_id lone surrogate", method: post, path: "/checkout", ctype: jsonCT, body: `{"user_id":"a\ud800b","id":1}`, status: bad, code: invalid},
		{name: "checkout JSON user_id escaped U+FFFD", method: post, path: "/checkout", ctype: jsonCT, body: `{"user_id":"a\ufffdb","id":4}`, status: created},
		{name: "purchase checkout_code", method: post, path: "/purchase", ctype: jsonCT, body: `{"checkout_code":"` + code + `"}`, status: ok},
		{name: "sale id abc", method: get, path: "/sales/abc", status: bad, code: invalid},
		{name: "sale id 0", method: get, path: "/sales/0", status: bad, code: invalid},
		{name: "sale unknown", method: get, path: "/sales/999999", status: http.StatusNotFound, code: "sale_not_found"},
		{name: "items limit 0", method: get, path: "/sales/current/items?limit=0", status: bad, code: invalid},
		{name: "items limit 5000", method: get, path: "/sales/current/items?limit=5000", status: bad, code: invalid},
		{name: "items limit abc", method: get, path: "/sales/current/items?limit=abc", status: bad, code: invalid},
		{name: "items after -1", method: get, path: "/sales/current/items?after=-1", status: bad, code: invalid},
		{name: "items available yes", method: get, path: "/sales/current/items?available=yes", status: bad, code: invalid},
		{name: "items available 1", method: get, path: "/sales/current/items?available=1", status: bad, code: invalid},
		{name: "purchases user one byte too long", method: get, path: "/users/" + long + "/purchases", status: bad, code: invalid},
		{name: "purchases user invalid UTF-8", method: get, path: "/users/a%FFb/purchases", status: bad, code: invalid},
		{name: "purchases user invalid UTF-8 lowercase hex", method: get, path: "/users/a%ffb/purchases", status: bad, code: invalid},
		{name: "purchases sale_id abc", method: get, path: "/users/u/purchases?sale_id=abc", status: bad, code: invalid},
		{name: "image item abc", method: get, path: fmt.Sprintf("/items/%d/abc/image.svg", saleID), status: bad, code: invalid},
		{name: "image item unknown", method: get, path: fmt.Sprintf("/items/%d/999999/image.svg", saleID), status: http.StatusNotFound, code: "item_not_found"},
		{name: "image item past int32", method: get, path: fmt.Sprintf("/items/%d/4294967296/image.svg", saleID), status: http.StatusNotFound, code: "item_not_found"},
		{name: "image sale unknown", method: get, path: "/items/999999/1/image.svg", status: http.StatusNotFound, code: "item_not_found"},
		{name: "unknown route", method: get, path: "/no/such/route", status: http.StatusNotFound, code: "not_found"},
		{name: "GET checkout", method: get, path: "/checkout", status: http.StatusMethodNotAllowed, code: "method_not_allowed"},
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	saleID := apitest.CurrentSaleID(t, srv.URL)
	code := apitest.Held(t, srv.URL, "buyer", 1)["code"].(string)

	for _, c := range inputCases(saleID, code) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			apitest.Check(t, c.name, c.send(t, srv.URL), c.status, c.code)
		})
	}
}

// TestBadCheckoutStoresNoAttempt: checkout_attempts records well-formed
// requests only, so malformed ones must not reach the database while a
// well-formed one for a missing item must.
func TestBadCheckoutStoresNoAttempt(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	attempts := func(where string) int64 {
		t.Helper()
		return pgtest.Scalar(t, srv.Pool, "SELECT count(*) FROM checkout_attempts "+where)
	}

	sent := 0
	for _, c := range inputCases(1, "unused") {
		if strings.HasPrefix(c.path, "/checkout") && c.status == http.StatusBadRequest {
			apitest.Check(t, c.name, c.send(t, srv.URL), http.StatusBadRequest, "invalid_request")
			sent++
		}
	}
	if sent < 10 {
		t.Fatalf("only %d bad checkouts sent", sent)
	}
	if n := attempts(""); n != 0 {
		t.Fatalf("%d bad checkouts stored %d attempts, want 0", sent, n)
	}

	apitest.Check(t, "checkout of a missing item", apitest.Checkout(t, srv.URL, "hope", 31), http.StatusNotFound, "item_not_found")
	if n := attempts("WHERE user_id = 'hope' AND item_id = 31 AND outcome = 'item_not_found'"); n != 1 {
		t.Fatalf("item_not_found checkout stored %d matching attempts, want 1", n)
	}
	if n := attempts(""); n != 1 {
		t.Fatalf("%d attempts in all, want only the item_not_found one", n)
	}
}
