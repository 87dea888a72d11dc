package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testkit/apitest"
)

func TestCheckoutThenPurchase(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})

	hold := apitest.Held(t, srv.URL, "alice", 7)
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
	if left := time.Until(apitest.Time(t, hold, "expires_at")); left < 9*time.Minute {
		t.Fatalf("checkout: expires_at %v, %v from now", hold["expires_at"], left)
	}

	// The code in a JSON body, where the other tests send it in the query.
	r := apitest.Do(t, http.MethodPost, srv.URL+"/purchase", "application/json", strings.NewReader(`{"code":"`+code+`"}`))
	apitest.Expect(t, "purchase", r, http.StatusOK, "")
	bought := r.Body
	if bought["purchase_id"] == nil || bought["user_id"] != "alice" || bought["user_purchases"] != float64(1) ||
		bought["sale_id"] != hold["sale_id"] || bought["purchased_at"] == nil {
		t.Fatalf("purchase: %v", bought)
	}
	if got := bought["item"].(map[string]any); got["name"] != item["name"] || got["price"] != item["price"] {
		t.Fatalf("purchase item %v, checkout item %v", got, item)
	}
}
