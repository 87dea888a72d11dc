package apitest

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
)

func CheckoutURL(base, user string, item int) string {
	return fmt.Sprintf("%s/checkout?user_id=%s&id=%d", base, url.QueryEscape(user), item)
}

func PurchaseURL(base, code string) string { return base + "/purchase?code=" + url.QueryEscape(code) }

func Checkout(t testing.TB, base, user string, item int) Reply {
	t.Helper()
	return Do(t, http.MethodPost, CheckoutURL(base, user, item), "", nil)
}

// Purchase buys with hold's code, whatever state the hold is in.
func Purchase(t testing.TB, base string, hold map[string]any) Reply {
	t.Helper()
	code, _ := hold["code"].(string)
	return Do(t, http.MethodPost, PurchaseURL(base, code), "", nil)
}

// Held is a checkout that must succeed; it returns the hold.
func Held(t testing.TB, base, user string, item int) map[string]any {
	t.Helper()
	r := Checkout(t, base, user, item)
	Expect(t, fmt.Sprintf("checkout of item %d by %s", item, user), r, http.StatusCreated, "")
	return r.Body
}

// Bought is a purchase that must succeed; it returns the purchase.
func Bought(t testing.TB, base string, hold map[string]any) map[string]any {
	t.Helper()
	r := Purchase(t, base, hold)
	Expect(t, fmt.Sprintf("purchase of %v", hold["code"]), r, http.StatusOK, "")
	return r.Body
}

func CurrentSaleID(t testing.TB, base string) int64 {
	t.Helper()
	return Int(t, GetOK(t, base+"/sales/current"), "id")
}

// WeekLong is the server options for a sale of s in a week-long window, for
// tests that compare answers or counts across requests: in an hourly window
// a request could straddle the boundary and land in the next sale.
func WeekLong(s sale.Settings) Options {
	s.Duration = 7 * 24 * time.Hour
	return Options{Settings: &s}
}
