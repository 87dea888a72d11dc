package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testserver"
)

// post sends a POST and decodes the JSON answer into a generic map.
func post(t *testing.T, url, contentType, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("POST %s: decode: %v", url, err)
	}
	return resp.StatusCode, out
}

func TestCheckoutThenPurchase(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, testserver.Options{})

	status, hold := post(t, srv.URL+"/checkout?user_id=alice&id=7", "", "")
	if status != http.StatusCreated {
		t.Fatalf("checkout: status %d, body %v", status, hold)
	}
	code, _ := hold["code"].(string)
	if len(code) < 22 {
		t.Fatalf("checkout: code %q is shorter than 128 bits of base64", code)
	}
	item, _ := hold["item"].(map[string]any)
	if item["id"] != float64(7) || item["name"] == "" || item["price"] == "" ||
		!strings.HasSuffix(item["image_url"].(string), "/image.svg") {
		t.Fatalf("checkout: item %v", item)
	}
	if hold["user_id"] != "alice" || hold["sale_id"] == nil {
		t.Fatalf("checkout: %v", hold)
	}
	expires, err := time.Parse(time.RFC3339Nano, hold["expires_at"].(string))
	if err != nil || time.Until(expires) < 9*time.Minute {
		t.Fatalf("checkout: expires_at %v (%v)", hold["expires_at"], err)
	}

	status, bought := post(t, srv.URL+"/purchase", "application/json", `{"code":"`+code+`"}`)
	if status != http.StatusOK {
		t.Fatalf("purchase: status %d, body %v", status, bought)
	}
	if bought["purchase_id"] == nil || bought["user_id"] != "alice" || bought["user_purchases"] != float64(1) ||
		bought["sale_id"] != hold["sale_id"] || bought["purchased_at"] == nil {
		t.Fatalf("purchase: %v", bought)
	}
	if got := bought["item"].(map[string]any); got["name"] != item["name"] || got["price"] != item["price"] {
		t.Fatalf("purchase item %v, checkout item %v", got, item)
	}
}
