package httpapi_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flashsale/flashsale/internal/testkit/apitest"
)

// productImages serves a shop's product pictures (PNG squares of one
// colour each), as a shop's CDN would, and counts the requests.
func productImages(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var served atomic.Int64
	var b bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for x := range 64 {
		for y := range 64 {
			img.Set(x, y, color.RGBA{R: 200, G: 40, B: 40, A: 255})
		}
	}
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(b.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv, &served
}

// TestSalePageShowsADefinedSale: a sale a shop defined through the admin
// API shows on the page with its own names, descriptions, prices in their
// currencies and pictures, and its tiles follow what other clients buy.
func TestSalePageShowsADefinedSale(t *testing.T) {
	t.Parallel()
	srv := adminServer(t, nil)
	images, served := productImages(t)
	start := soon(t, srv, adminStart)
	def := definition(start)
	items := shopItems()
	items[0]["image_url"] = images.URL + "/mug-red.png"
	def["items"] = items
	defineSale(t, srv, opsBearer, def)
	waitForStart(t, srv, start)

	ctx := newBrowser(t, 90*time.Second)
	run(t, ctx, "open the page", chromedp.Navigate(srv.URL+"/"))
	waitFor(t, ctx, "the shop's two items", gridIs(1, 2)+" && "+tileIs(1, "4 left", "", false)+" && "+tileIs(2, "3 left", "", false))
	tile := func(id int, js string) string {
		return fmt.Sprintf(`(() => { const li = document.querySelector('#items .item[data-id="%d"]'); return !!li && (%s); })()`, id, js)
	}
	waitFor(t, ctx, "the mug's name, description, dollar price and own picture, loaded", tile(1,
		`li.querySelector(".name").textContent === "Red mug" && li.querySelector(".desc").textContent === "Stoneware, 350 ml"`+
			` && li.querySelector(".price").textContent.includes("19.99") && li.querySelector(".price").textContent.includes("$")`+
			fmt.Sprintf(` && li.querySelector("img").src === %q && li.querySelector("img").complete && li.querySelector("img").naturalWidth === 64`,
				items[0]["image_url"])))
	waitFor(t, ctx, "the tea's yen price and drawn picture", tile(2,
		`li.querySelector(".name").textContent === "Sencha 100 g" && li.querySelector(".price").textContent.includes("1,500")`+
			` && li.querySelector(".price").textContent.includes("¥") && li.querySelector("img").src.endsWith("/2/image.svg")`+
			` && li.querySelector("img").naturalWidth > 0`))
	if served.Load() == 0 {
		t.Error("the browser never asked the shop's image server for the mug's picture")
	}

	// Another client buys a mug and holds one: the tile follows.
	apitest.Bought(t, srv.URL, apitest.Held(t, srv.URL, "other-buyer", 1))
	apitest.Held(t, srv.URL, "other-holder", 1)
	waitFor(t, ctx, "the mug's tile after others bought and held", tileIs(1, "2 left", "1 held, may return", false))
	screenshot(t, ctx, "sale-page-defined-desktop.png")
}
