package httpapi_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
)

// One id has one spelling, as the document's patterns say; a trailing
// slash is another path; a sale that does not exist is not found, not
// empty.
func TestIdsAndPaths(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	cur := apitest.GetOK(t, srv.URL+"/sales/current")
	id := apitest.Int(t, cur, "id")
	cases := []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, fmt.Sprintf("/sales/%d", id), http.StatusOK, ""},
		{http.MethodGet, fmt.Sprintf("/sales/00%d", id), http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, fmt.Sprintf("/sales/+%d", id), http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, fmt.Sprintf("/items/%d/007/image.svg", id), http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, fmt.Sprintf("/items/%d/+7/image.svg", id), http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/sales/current/items?after=+1", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/sales/current/items?limit=010", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/sales/current/items?after=0&limit=10", http.StatusOK, ""},
		{http.MethodPost, "/checkout?user_id=u&id=007", http.StatusBadRequest, "invalid_request"},
		{http.MethodPost, "/checkout?user_id=u&id=%2B7", http.StatusBadRequest, "invalid_request"},
		{http.MethodPost, "/checkout?user_id=u&id=item07", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, "/users/u/purchases?sale_id=07", http.StatusBadRequest, "invalid_request"},
		{http.MethodGet, fmt.Sprintf("/sales/%d/", id), http.StatusNotFound, "not_found"},
		{http.MethodGet, "/sales/current/", http.StatusNotFound, "not_found"},
		{http.MethodGet, "/sales/current/items/", http.StatusNotFound, "not_found"},
		{http.MethodGet, "/healthz/", http.StatusNotFound, "not_found"},
		{http.MethodGet, "/users/u/purchases/", http.StatusNotFound, "not_found"},
		{http.MethodPost, "/checkout/?user_id=u&id=1", http.StatusNotFound, "not_found"},
		{http.MethodGet, "/users/u/purchases?sale_id=999999", http.StatusNotFound, "sale_not_found"},
		{http.MethodGet, fmt.Sprintf("/users/u/purchases?sale_id=%d", id), http.StatusOK, ""},
	}
	for _, c := range cases {
		r := apitest.Do(t, c.method, srv.URL+c.path, "", nil)
		apitest.Check(t, c.method+" "+c.path, r, c.status, c.code)
	}
}

// A request with both Content-Length and Transfer-Encoding is answered
// 400 in the JSON shape, and nothing after it on the connection is read
// as a request: what a proxy framing by Content-Length would forward as
// part of the body cannot become a second request here.
func TestContentLengthWithTransferEncoding(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"user_id":"smuggler","id":1}`
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	smuggled := "GET /healthz HTTP/1.1\r\nHost: " + u.Host + "\r\n\r\n"
	req := "POST /checkout HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Type: application/json\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n", len(chunked)) + "Transfer-Encoding: chunked\r\n\r\n" + chunked + smuggled
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(first), `"code":"invalid_request"`) ||
		!strings.Contains(string(first), "Transfer-Encoding") {
		t.Fatalf("first answer %d %s", resp.StatusCode, first)
	}
	// The server closes the connection: EOF, never a second answer.
	rest, err := io.ReadAll(rd)
	if err != nil || len(rest) > 0 {
		t.Fatalf("after the refused request the connection gave %q (err %v), want EOF", rest, err)
	}
	// Nothing was stored for the smuggler.
	r := apitest.Get(t, srv.URL+"/users/smuggler/purchases")
	apitest.Check(t, "smuggler's purchases", r, http.StatusOK, "")
	if n := apitest.Int(t, r.Body, "count"); n != 0 {
		t.Fatalf("smuggler has %d purchases", n)
	}
}

// A token's sub is held to what any user id is: not valid UTF-8 (an
// escaped lone surrogate, which encoding/json turns into U+FFFD) is
// refused rather than read as the user "\ufffd"; times are numbers.
func TestTokenClaimsAreStrict(t *testing.T) {
	t.Parallel()
	v, err := auth.New(testSecret, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := authServer(t, v)
	exp := time.Now().Add(time.Hour).Unix()
	sign := func(payload string) string {
		t.Helper()
		head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
		signing := head + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
		sig, err := jwt.SigningMethodHS256.Sign(signing, []byte(testSecret))
		if err != nil {
			t.Fatal(err)
		}
		return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	cases := []struct {
		name, payload string
		status        int
	}{
		{"plain sub", fmt.Sprintf(`{"sub":"alice","exp":%d}`, exp), http.StatusOK},
		{"U+FFFD escaped", fmt.Sprintf(`{"sub":"\ufffd","exp":%d}`, exp), http.StatusOK},
		{"surrogate pair", fmt.Sprintf(`{"sub":"\ud83d\ude00","exp":%d}`, exp), http.StatusOK},
		{"lone high surrogate", fmt.Sprintf(`{"sub":"\ud800","exp":%d}`, exp), http.StatusUnauthorized},
		{"lone low surrogate", fmt.Sprintf(`{"sub":"a\udfff","exp":%d}`, exp), http.StatusUnauthorized},
		{"high surrogate then text", fmt.Sprintf(`{"sub":"\ud800x","exp":%d}`, exp), http.StatusUnauthorized},
		{"invalid UTF-8 bytes", fmt.Sprintf("{\"sub\":\"a\xffb\",\"exp\":%d}", exp), http.StatusUnauthorized},
		{"control character", fmt.Sprintf(`{"sub":"a\u0001b","exp":%d}`, exp), http.StatusUnauthorized},
		{"exp as a string", fmt.Sprintf(`{"sub":"alice","exp":"%d"}`, exp), http.StatusUnauthorized},
		{"nbf as a string", fmt.Sprintf(`{"sub":"alice","exp":%d,"nbf":"0"}`, exp), http.StatusUnauthorized},
		{"iat as a string", fmt.Sprintf(`{"sub":"alice","exp":%d,"iat":"0"}`, exp), http.StatusUnauthorized},
		{"escaped backslash before u", fmt.Sprintf(`{"sub":"a\\ud800","exp":%d}`, exp), http.StatusOK},
	}
	for _, c := range cases {
		tok := sign(c.payload)
		r := send(t, http.MethodGet, srv.URL+"/users/"+url.PathEscape(subOf(t, v, tok))+"/purchases", tok)
		code := ""
		if c.status != http.StatusOK {
			code = "unauthorized"
		}
		apitest.Check(t, c.name, r, c.status, code)
	}
}

// subOf is the user a token would act for, or "x" when it acts for none.
func subOf(t *testing.T, v *auth.Verifier, tok string) string {
	t.Helper()
	sub, err := v.Subject(tok)
	if err != nil || sub == "" {
		return "x"
	}
	return sub
}
