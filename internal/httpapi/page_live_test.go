package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
)

// tileIs: item id's tile says free (its first line) and held (its note),
// and its button is disabled or not.
func tileIs(id int, free, held string, disabled bool) string {
	return fmt.Sprintf(`(() => { const li = document.querySelector('#items .item[data-id="%d"]');
		return !!li && li.querySelector(".free").textContent === %q && li.querySelector(".held-note").textContent === %q &&
			li.querySelector(".pick").disabled === %t; })()`, id, free, held, disabled)
}

// gridIs: the grid shows exactly these items, in this order.
func gridIs(ids ...int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return fmt.Sprintf(`[...document.querySelectorAll("#items .item")].map(li => li.dataset.id).join(",") === %q`, strings.Join(s, ","))
}

// TestSalePageFollowsOtherShoppers: what other clients buy and hold shows
// on the tiles without a reload, held apart from sold, with the buttons of
// items that have nothing free disabled; the "only available" filter
// leaves those out; a sold-out sale says so, on its tiles too, and
// disables checking out, also after a reload.
func TestSalePageFollowsOtherShoppers(t *testing.T) {
	srv := apitest.Start(t, apitest.WeekLong(sale.Settings{Units: 20, Items: 10, PerUserLimit: 10, HoldTTL: time.Hour}))
	ctx := newBrowser(t, 90*time.Second)
	run(t, ctx, "open the page", chromedp.Navigate(srv.URL+"/"))
	waitFor(t, ctx, "ten tiles of 2 units", gridIs(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)+" && "+tileIs(10, "2 left", "", false))

	// Another shopper buys every unit of items 5, 6 and 9 and holds both
	// of item 3 and one of item 4, through the API.
	for _, item := range []int{5, 5, 6, 6, 9, 9} {
		apitest.Bought(t, srv.URL, apitest.Held(t, srv.URL, "other-buyer", item))
	}
	apitest.Held(t, srv.URL, "other-holder", 3)
	apitest.Held(t, srv.URL, "other-holder", 3)
	apitest.Held(t, srv.URL, "other-holder", 4)
	for _, id := range []int{5, 6, 9} {
		waitFor(t, ctx, fmt.Sprintf("item %d sold out", id), tileIs(id, "Sold out", "", true))
	}
	waitFor(t, ctx, "item 3 all held", tileIs(3, "None free now", "2 held, may return", true))
	waitFor(t, ctx, "item 4 half held", tileIs(4, "1 left", "1 held, may return", false))
	waitFor(t, ctx, "the others untouched", tileIs(1, "2 left", "", false)+" && "+tileIs(10, "2 left", "", false))

	// Checking out an item that is gone: the shopper reads why, the code
	// stays for scripts, the tile says it.
	run(t, ctx, "check out item 9", setValue("item-id", "9"), chromedp.Click(chromedp.ID("checkout")))
	waitFor(t, ctx, "item 9's refusal", messageIs(apiCode(t, http.MethodPost, apitest.CheckoutURL(srv.URL, "x", 9)), "that item is gone"))
	waitFor(t, ctx, "item 9 still sold out", tileIs(9, "Sold out", "", true))

	// Only what is left.
	run(t, ctx, "only available items", chromedp.Click(chromedp.ID("only-available")))
	waitFor(t, ctx, "the available items", gridIs(1, 2, 4, 7, 8, 10))
	screenshot(t, ctx, "sale-page-live-desktop.png")
	run(t, ctx, "a 375px wide phone", chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile))
	waitFor(t, ctx, "the page to fit 375px", `window.innerWidth === 375 && document.documentElement.scrollWidth <= 375`)
	run(t, ctx, "all items", chromedp.Click(chromedp.ID("only-available")))
	waitFor(t, ctx, "every item again", gridIs(1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
	screenshot(t, ctx, "sale-page-live-phone.png")

	// Sold out, by other shoppers: the banner, every tile, no checkout.
	saletest.SellOut(t, srv.Pool, apitest.CurrentSaleID(t, srv.URL))
	soldOut := `!document.getElementById("soldout").hidden && document.getElementById("soldout").textContent.startsWith("Sold out")` +
		` && document.getElementById("checkout").matches(":disabled") && document.getElementById("user-id").matches(":disabled")` +
		` && [...document.querySelectorAll("#items .pick")].every(b => b.disabled && b.textContent === "Sold out")` +
		` && [...document.querySelectorAll("#items .free")].every(f => f.textContent === "Sold out")`
	waitFor(t, ctx, "the sold-out state", soldOut+" && "+gridIs(1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
	screenshot(t, ctx, "sale-page-soldout-phone.png")
	run(t, ctx, "reload at 1280px", chromedp.EmulateViewport(1280, 900), chromedp.Reload())
	waitFor(t, ctx, "the sold-out state after a reload", soldOut+" && "+gridIs(1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
	run(t, ctx, "only available items", chromedp.Click(chromedp.ID("only-available")))
	waitFor(t, ctx, "no item available", gridIs()+` && !document.getElementById("no-items").hidden`)
	screenshot(t, ctx, "sale-page-soldout-desktop.png")
}

// With auth on, the shopper is the subject of the token the shop's
// sign-in hands the page in its fragment: no id to type, and checkouts and
// purchases are theirs.
func TestSalePageSignedIn(t *testing.T) {
	v, err := auth.New(testSecret, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := authServer(t, v)
	alice := token(t, jwt.SigningMethodHS256, []byte(testSecret), "alice", nil)
	ctx := newBrowser(t, 60*time.Second)
	run(t, ctx, "open the page signed in", chromedp.Navigate(srv.URL+"/#token="+alice))
	waitFor(t, ctx, "alice signed in", textIs("who-name", "alice")+
		` && document.getElementById("user-label").hidden && document.getElementById("signin-form").hidden && location.hash === ""`)
	waitFor(t, ctx, "the items", tileIs(1, "10 left", "", false))
	run(t, ctx, "choose item 1 and check out", chromedp.Click(chromedp.CSS(`#items .item[data-id="1"] .pick`)), chromedp.Click(chromedp.ID("checkout")))
	waitFor(t, ctx, "the checkout code", `document.getElementById("code").value.length > 0`)
	run(t, ctx, "purchase", chromedp.Click(chromedp.ID("purchase")))
	waitFor(t, ctx, "the purchase", `document.getElementById("message").textContent.startsWith("You bought")`)
	if n := apitest.Int(t, send(t, http.MethodGet, srv.URL+"/users/alice/purchases", alice).Body, "count"); n != 1 {
		t.Errorf("alice has %d purchases, want 1", n)
	}

	// Signed out, a checkout is refused in words.
	run(t, ctx, "sign out and check out", chromedp.Click(chromedp.ID("signout")), chromedp.Click(chromedp.ID("checkout")))
	waitFor(t, ctx, "the refusal", messageIs("unauthorized", "Please sign in")+` && !document.getElementById("signin-form").hidden`)
}
