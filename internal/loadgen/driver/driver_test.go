package driver

import "testing"

func TestParsers(t *testing.T) {
	t.Parallel()
	body := []byte(`{"code":"abc_-XYZ","sale_id":3,"item":{"id":7}}`)
	if got := string(jsonString(body, `"code":"`)); got != "abc_-XYZ" {
		t.Errorf("jsonString: %q", got)
	}
	if got := jsonInt([]byte(`{"purchase_id":12345,"sale_id":1}`), `"purchase_id":`); got != 12345 {
		t.Errorf("jsonInt: %d", got)
	}
	if got := intern([]byte("sold_out")); got != "sold_out" {
		t.Errorf("intern: %q", got)
	}
	if got := ErrorOutcome(409, []byte(`{"error":{"code":"sold_out","message":"x"}}`)); got != SoldOut {
		t.Errorf("ErrorOutcome: %q", got)
	}
	if got := ErrorOutcome(502, []byte("Bad Gateway")); got != "http_502" {
		t.Errorf("ErrorOutcome without a body: %q", got)
	}
	for _, o := range []string{Held, SoldOut, Unavailable, UserLimit, RateLimited, "item_not_found", "no_active_sale"} {
		if !Stored(o) {
			t.Errorf("%s: not stored", o)
		}
	}
	if Stored(Purchased) || Stored("invalid_request") {
		t.Error("a purchase or a validation error counted as a stored checkout")
	}
}
