package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/flashsale/flashsale/internal/testkit/apitest"
)

// browserNames are looked up on PATH in this order; the Makefile's browser
// step installs the first when none is there.
var browserNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// findBrowser fails, never skips: a page nobody tested is not tested.
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range browserNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("make test needs a Chromium or Chrome browser for the sale page test: install Debian's chromium package (apt-get install chromium) or Google Chrome (none of %s is on PATH).",
		strings.Join(browserNames, ", "))
	return ""
}

// newBrowser starts a headless browser that ends with the test, bounded by
// limit as a whole.
func newBrowser(t *testing.T, limit time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	t.Cleanup(cancel)
	browser := findBrowser(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox, // Chromium refuses to run as root with its sandbox
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(bctx); err != nil { // start it now, so a missing library fails here
		t.Fatalf("start %s: %v", browser, err)
	}
	return bctx
}

func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v; the page shows: %s", what, err, shown(ctx))
	}
}

// waitFor polls a JavaScript condition: the page changes on the server's
// schedule (an event each second at most), which a test cannot know.
func waitFor(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		t.Fatalf("waiting for %s (%s): %v; the page shows: %s", what, cond, err, shown(ctx))
	}
}

func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf("document.getElementById(%q).textContent", id)))
	if err != nil {
		t.Fatalf("text of #%s: %v", id, err)
	}
	return s
}

// shown is what a person would read first on the page, for failure messages.
func shown(ctx context.Context) string {
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`["live", "sale-id", "count-sold", "count-held", "count-available", "message"].map(id => id + "=" + JSON.stringify(document.getElementById(id).textContent)).join(" ")`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

func textIs(id, want string) string {
	return fmt.Sprintf("document.getElementById(%q).textContent === %q", id, want)
}

// apiCode is the error code the API answers a request with, which the
// page must keep in its message's data-code (the text is for shoppers).
func apiCode(t *testing.T, method, url string) string {
	t.Helper()
	r := apitest.Do(t, method, url, "", nil)
	if r.Status < 400 {
		t.Fatalf("%s %s: %d, want an error", method, url, r.Status)
	}
	return apitest.ErrorCode(r.Body)
}

// messageIs: the page shows an error whose code is code, in words that
// are not the code.
func messageIs(code, words string) string {
	return fmt.Sprintf(`(() => { const m = document.getElementById("message");
		return m.classList.contains("error") && m.dataset.code === %q && m.textContent.includes(%q) && !m.textContent.includes(%q); })()`,
		code, words, code)
}

// setValue types into a field at once.
func setValue(id, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(document.getElementById(%q).value = %q) !== null`, id, value))(ctx, t)
		return err
	})
}

// timezone makes the browser's local time zone zone.
func timezone(zone string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: zone})
		return err
	})
}

// screenshot writes the page into the git-ignored test-output/ folder at the
// module's root.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir, err := os.Getwd()
	for err == nil {
		if _, statErr := os.Stat(filepath.Join(dir, "go.mod")); statErr == nil {
			break
		}
		if parent := filepath.Dir(dir); parent != dir {
			dir = parent
		} else {
			err = errors.New("no go.mod above the test's directory")
		}
	}
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	out := filepath.Join(dir, "test-output")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(out, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// TestSalePageInBrowser drives the live page in headless Chromium: what it
// shows matches the API, the form checks out and purchases and the counts
// follow, errors show the API's message, and it fits a phone.
func TestSalePageInBrowser(t *testing.T) {
	srv := apitest.Start(t, apitest.WeekLong(apitest.DefaultSettings))
	ctx := newBrowser(t, 60*time.Second)

	cur := apitest.GetOK(t, srv.URL+"/sales/current")
	count := func(key string) string { return strconv.FormatInt(apitest.Int(t, cur, key), 10) }
	run(t, ctx, "open the page in New York", timezone("America/New_York"), chromedp.Navigate(srv.URL+"/"))
	waitFor(t, ctx, "the first event", textIs("sale-id", count("id")))
	for _, c := range []struct{ id, key string }{
		{"count-sold", "units_sold"}, {"count-held", "units_held"}, {"count-available", "units_available"},
		{"count-total", "units_total"}, {"count-buyers", "buyers"}, {"per-user-limit", "per_user_limit"},
	} {
		if got, want := text(t, ctx, c.id), count(c.key); got != want {
			t.Errorf("#%s shows %q, GET /sales/current has %s = %s", c.id, got, c.key, want)
		}
	}
	// A week-long sale: days, hours, minutes and seconds to its end.
	countdown := regexp.MustCompile(`^(\d+d )?\d+:\d\d(:\d\d)?$`)
	if got := text(t, ctx, "ends-in"); !countdown.MatchString(got) {
		t.Errorf("#ends-in shows %q, want a countdown", got)
	}
	// The next generated sale starts as this one ends: said so, not
	// counted down a second time; its time in the shopper's zone.
	waitFor(t, ctx, "the next sale", `!document.getElementById("next-box").hidden`)
	if got := text(t, ctx, "next-in"); got != "as this one ends" {
		t.Errorf("#next-in shows %q, want %q", got, "as this one ends")
	}
	for _, id := range []string{"starts-at", "ends-at", "next-at"} {
		if got := text(t, ctx, id); !strings.Contains(got, "EST") {
			t.Errorf("#%s shows %q, want New York's time zone (EST)", id, got)
		}
	}
	// Without auth the shopper gets an id of their own, kept across visits.
	userID, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("user-id").value`))
	if err != nil || !strings.HasPrefix(userID, "shopper-") {
		t.Errorf("#user-id holds %q (%v), want a generated shopper id", userID, err)
	}
	run(t, ctx, "reload", chromedp.Reload())
	waitFor(t, ctx, "the same shopper id after a reload", fmt.Sprintf(`document.getElementById("user-id").value === %q`, userID))

	items := apitest.Int(t, cur, "items")
	waitFor(t, ctx, "the item grid", fmt.Sprintf(`document.querySelectorAll("#items .item").length === %d`, items))
	waitFor(t, ctx, "the first item's image", `(() => { const i = document.querySelector("#items img"); return i.complete && i.naturalWidth > 0; })()`)
	first := apitest.GetOK(t, srv.URL+"/sales/current/items?limit=1")["items"].([]any)[0].(map[string]any)
	if want := fmt.Sprintf("%v left", first["free_units"]); !strings.Contains(text(t, ctx, "items"), want) {
		t.Errorf("the grid does not show item 1's %q", want)
	}

	// An error: item chosen, no user id.
	run(t, ctx, "choose item 1 and check out with no user id",
		chromedp.Click(chromedp.CSS(`#items .item[data-id="1"] button`)),
		setValue("user-id", ""),
		chromedp.Click(chromedp.ID("checkout")))
	waitFor(t, ctx, "the error in words", messageIs(apiCode(t, http.MethodPost, srv.URL+"/checkout?user_id=&id=1"), "Please check what you entered"))

	// Check out: the code shows with its expiry, the bar moves.
	run(t, ctx, "check out item 1 as browser-user",
		setValue("user-id", "browser-user"),
		chromedp.Click(chromedp.ID("checkout")))
	waitFor(t, ctx, "the checkout code", `document.getElementById("code").value.length > 0`)
	waitFor(t, ctx, "the hold in the counts", textIs("count-held", "1")+` && document.getElementById("bar-held").style.width !== "0%"`)
	if got := text(t, ctx, "code-expires"); !countdown.MatchString(got) {
		t.Errorf("#code-expires shows %q, want a countdown", got)
	}
	cur = apitest.GetOK(t, srv.URL+"/sales/current")
	if got, want := text(t, ctx, "count-available"), count("units_available"); got != want {
		t.Errorf("after the checkout #count-available shows %s, GET /sales/current has %s", got, want)
	}

	// Purchase: the hold becomes a sale.
	run(t, ctx, "purchase", chromedp.Click(chromedp.ID("purchase")))
	waitFor(t, ctx, "the purchase in the counts", textIs("count-sold", "1")+" && "+textIs("count-held", "0"))
	waitFor(t, ctx, "the purchase's message", `document.getElementById("message").textContent.includes("You bought")`)
	if n := apitest.Int(t, apitest.GetOK(t, srv.URL+"/users/browser-user/purchases"), "count"); n != 1 {
		t.Errorf("browser-user has %d purchases, want 1", n)
	}

	// An unknown code.
	run(t, ctx, "purchase with an unknown code",
		chromedp.SetValue(chromedp.ID("code"), "no-such-code"),
		chromedp.Click(chromedp.ID("purchase")))
	waitFor(t, ctx, "the unknown code's message", messageIs(apiCode(t, http.MethodPost, srv.URL+"/purchase?code=no-such-code"), "checkout code is not known"))
	screenshot(t, ctx, "sale-page-desktop.png")

	// A phone: everything fits its width.
	run(t, ctx, "a 375px wide phone", chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile))
	waitFor(t, ctx, "the page to fit 375px", `window.innerWidth === 375 && document.documentElement.scrollWidth <= 375`)
	screenshot(t, ctx, "sale-page-phone.png")
}

// When the sale rolls over, the page shows the new sale and its items.
func TestSalePageRollover(t *testing.T) {
	s := apitest.DefaultSettings
	s.Duration = 2 * time.Second
	srv := apitest.Start(t, apitest.Options{Settings: &s})
	// As in the server: the scheduler creates each next sale in time.
	schedCtx, stop := context.WithCancel(context.Background())
	scheduled := make(chan struct{})
	go func() { defer close(scheduled); srv.Sales.RunScheduler(schedCtx) }()
	t.Cleanup(func() { stop(); <-scheduled }) // before the pool closes
	ctx := newBrowser(t, 30*time.Second)
	run(t, ctx, "open the page", chromedp.Navigate(srv.URL+"/"))
	waitFor(t, ctx, "the first event", `/^\d+$/.test(document.getElementById("sale-id").textContent)`)
	before := text(t, ctx, "sale-id")
	waitFor(t, ctx, "the next sale", fmt.Sprintf(`/^\d+$/.test(document.getElementById("sale-id").textContent) && document.getElementById("sale-id").textContent !== %q`, before))
	after := text(t, ctx, "sale-id")
	waitFor(t, ctx, "the next sale's items", fmt.Sprintf(
		`(() => { const imgs = [...document.querySelectorAll("#items img")]; return imgs.length === %d && imgs.every(i => i.getAttribute("src").startsWith("/items/%s/")); })()`,
		s.Items, after))
}

// GET / is the page for browsers and the JSON index for everyone else.
func TestIndexNegotiation(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{NoSale: true})
	for _, c := range []struct {
		accept string
		html   bool
	}{
		{"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8", true}, // Chromium, Firefox
		{"text/html", true},
		{"application/json;q=0.5, text/html", true},
		{"", false},
		{"*/*", false}, // curl: the API is the default
		{"application/json", false},
		{"text/html, application/json", false},
		{"text/html;q=0, */*", false},
		{"text/*, application/json;q=0.9", true},
		{"text/html;q=oops, application/json", false},
	} {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.accept != "" {
			req.Header.Set("Accept", c.accept)
		}
		resp, err := apitest.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ct := resp.Header.Get("Content-Type")
		if got := strings.HasPrefix(ct, "text/html"); got != c.html || resp.StatusCode != http.StatusOK {
			t.Errorf("Accept %q: %d %s, want HTML %v", c.accept, resp.StatusCode, ct, c.html)
		}
		if v := resp.Header.Get("Vary"); !strings.Contains(v, "Accept") {
			t.Errorf("Accept %q: Vary %q, want Accept: caches must keep both answers apart", c.accept, v)
		}
	}
}

// The page's files come from the binary; anything else under /page/ is the
// API's 404.
func TestPageFiles(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{NoSale: true})
	for path, ct := range map[string]string{"/page/sale.js": "text/javascript", "/page/sale.css": "text/css"} {
		r := apitest.Get(t, srv.URL+path)
		if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), ct) || len(r.Raw) == 0 {
			t.Errorf("GET %s: %d %q, %d bytes, want 200 %s", path, r.Status, r.Header.Get("Content-Type"), len(r.Raw), ct)
		}
	}
	for _, path := range []string{"/page/nope.js", "/page/..%2fpage.go", "/page/.hidden"} {
		apitest.Check(t, "GET "+path, apitest.Get(t, srv.URL+path), http.StatusNotFound, "not_found")
	}
}
