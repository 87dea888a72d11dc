package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/flashsale/flashsale/internal/metrics"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// start runs the API with metrics, and the metrics on their own listener
// as cmd/server does; it returns the API's and the metrics' base URLs.
func start(t *testing.T, mopts ...metrics.Option) (*metrics.Metrics, string, string) {
	t.Helper()
	return startSale(t, apitest.DefaultSettings, mopts...)
}

func startSale(t *testing.T, settings sale.Settings, mopts ...metrics.Option) (*metrics.Metrics, string, string) {
	t.Helper()
	m := metrics.New("test", mopts...)
	opts := apitest.WeekLong(settings)
	opts.Metrics = m
	api := apitest.Start(t, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := m.Server(ln.Addr().String())
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return m, api.URL, "http://" + ln.Addr().String() + "/metrics"
}

type families map[string]*dto.MetricFamily

func scrape(url string) (families, error) {
	r, err := apitest.Send(apitest.Client, http.MethodGet, url, "", nil)
	if err != nil {
		return nil, err
	}
	if r.Status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", url, r.Status, r.Raw)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(r.Raw))
	if err != nil {
		return nil, fmt.Errorf("parse scrape: %w", err)
	}
	return fams, nil
}

// find returns the sample of name whose labels include want ("k=v" pairs).
func (f families) find(t *testing.T, name string, want ...string) *dto.Metric {
	t.Helper()
	fam, ok := f[name]
	if !ok {
		t.Fatalf("no %s in the scrape", name)
	}
next:
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			if labels[k] != v {
				continue next
			}
		}
		return m
	}
	t.Fatalf("no %s with %v in the scrape", name, want)
	return nil
}

// value is a counter's or gauge's value.
func (f families) value(t *testing.T, name string, want ...string) float64 {
	t.Helper()
	m := f.find(t, name, want...)
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

func TestScrapeShowsCheckoutsPurchasesPoolAndSale(t *testing.T) {
	t.Parallel()
	_, api, metricsURL := start(t)

	// 5 holds, 3 of them bought; one unknown item, one unknown code.
	for i := range 5 {
		hold := apitest.Held(t, api, fmt.Sprintf("user-%d", i), i+1)
		if i < 3 {
			apitest.Bought(t, api, hold)
		}
	}
	apitest.Expect(t, "unknown item", apitest.Checkout(t, api, "user-9", 99999), http.StatusNotFound, "item_not_found")
	apitest.Expect(t, "unknown code", apitest.Purchase(t, api, map[string]any{"code": "nope"}), http.StatusNotFound, "code_not_found")
	// Paths the client makes up and a method of its own add no series.
	for _, p := range []string{"/no/such/path", "/another/made/up/path"} {
		apitest.Expect(t, p, apitest.Get(t, api+p), http.StatusNotFound, "not_found")
	}
	apitest.Do(t, "BREW", api+"/checkout", "", nil)
	cur := apitest.GetOK(t, api+"/sales/current")

	f, err := scrape(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what string
		got  float64
		want float64
	}{
		{"POST /checkout 201", f.value(t, "flashsale_http_requests_total", "url=/checkout", "code=201", "method=POST"), 5},
		{"POST /checkout 404", f.value(t, "flashsale_http_requests_total", "url=/checkout", "code=404"), 1},
		{"POST /purchase 200", f.value(t, "flashsale_http_requests_total", "url=/purchase", "code=200"), 3},
		{"unmatched paths, one series", f.value(t, "flashsale_http_requests_total", "url=unmatched", "method=GET"), 2},
		{"held", f.value(t, "flashsale_checkout_outcomes_total", "outcome=held"), 5},
		{"item_not_found", f.value(t, "flashsale_checkout_outcomes_total", "outcome=item_not_found"), 1},
		{"sold_out (none yet, present at 0)", f.value(t, "flashsale_checkout_outcomes_total", "outcome=sold_out"), 0},
		{"purchased", f.value(t, "flashsale_purchase_outcomes_total", "outcome=purchased"), 3},
		{"code_not_found", f.value(t, "flashsale_purchase_outcomes_total", "outcome=code_not_found"), 1},
		{"checkout requests in batches", f.find(t, "flashsale_batch_size", "batch=checkout").GetHistogram().GetSampleSum(), 6},
		{"purchase requests in batches", f.find(t, "flashsale_batch_size", "batch=purchase").GetHistogram().GetSampleSum(), 4},
		{"checkout batch failures", f.value(t, "flashsale_batch_failures_total", "batch=checkout"), 0},
		{"write pool max connections", f.value(t, "flashsale_db_pool_max_connections", "pool=write"), 8},
		{"read pool max connections", f.value(t, "flashsale_db_pool_max_connections", "pool=read"), 1},
		{"sale id", f.value(t, "flashsale_current_sale_id"), float64(apitest.Int(t, cur, "id"))},
		{"sale open", f.value(t, "flashsale_current_sale_open"), 1},
		{"units sold", f.value(t, "flashsale_current_sale_units", "state=sold"), float64(apitest.Int(t, cur, "units_sold"))},
		{"units held", f.value(t, "flashsale_current_sale_units", "state=held"), float64(apitest.Int(t, cur, "units_held"))},
		{"units available", f.value(t, "flashsale_current_sale_units", "state=available"), float64(apitest.Int(t, cur, "units_available"))},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	if sold := f.value(t, "flashsale_current_sale_units", "state=sold"); sold != 3 {
		t.Errorf("units sold %v, want the 3 purchases", sold)
	}
	if n := f.find(t, "flashsale_batch_duration_seconds", "batch=checkout").GetHistogram().GetSampleCount(); n == 0 {
		t.Error("no checkout batch timed")
	}
	if n := f.find(t, "flashsale_http_request_duration_seconds", "url=/checkout", "code=201").GetHistogram().GetSampleCount(); n != 5 {
		t.Errorf("checkout latencies observed %d, want 5", n)
	}
	if v := f.value(t, "flashsale_http_requests_total", "method=other"); v != 1 {
		t.Errorf("BREW requests %v, want 1 under method=other", v)
	}
	for _, name := range []string{"flashsale_db_pool_total_connections", "flashsale_db_pool_acquires_total"} {
		for _, pool := range []string{"pool=write", "pool=read"} {
			if v := f.value(t, name, pool); v < 1 {
				t.Errorf("%s{%s} = %v, want at least 1", name, pool, v)
			}
		}
	}
	for _, name := range []string{"flashsale_db_pool_acquired_connections", "flashsale_db_pool_idle_connections",
		"flashsale_db_pool_empty_acquires_total", "flashsale_db_pool_canceled_acquires_total",
		"flashsale_db_pool_acquire_duration_seconds_total"} {
		f.value(t, name) // present
	}
	if left := f.value(t, "flashsale_current_sale_seconds_to_end"); left <= 0 || left > 7*24*3600 {
		t.Errorf("seconds to end %v, want within the week-long window", left)
	}
	for _, fam := range f {
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "url" && strings.Contains(l.GetValue(), "made/up") {
					t.Errorf("%s has a series for the raw path %q", fam.GetName(), l.GetValue())
				}
			}
		}
	}
}

// However many scrapers ask at once, the current sale is read from
// PostgreSQL at most once per second.
func TestConcurrentScrapesShareOneSaleRead(t *testing.T) {
	t.Parallel()
	m, _, metricsURL := start(t)
	const scrapes = 50
	errs := make(chan error, scrapes)
	began := time.Now()
	testutil.Together(scrapes, scrapes, func(int) {
		f, err := scrape(metricsURL)
		if err == nil && f["flashsale_current_sale_units"] == nil {
			err = errors.New("a scrape without flashsale_current_sale_units")
		}
		errs <- err
	})
	took := time.Since(began)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	reads := m.SaleReads()
	if allowed := 1 + int64(took/time.Second); reads < 1 || reads > allowed {
		t.Fatalf("%d concurrent scrapes in %s read the sale %d times, want 1 to %d", scrapes, took, reads, allowed)
	}
	t.Logf("%d concurrent scrapes in %s: %d read(s) of the sale", scrapes, took, reads)
}

// The exposition as Prometheus parses it: every family has help and a
// type, no label is ever empty, the size histograms are off unless asked
// for, and every outcome the documents list is a series from the start.
func TestExposition(t *testing.T) {
	t.Parallel()
	_, api, metricsURL := start(t)
	apitest.Held(t, api, "alice", 1)
	apitest.GetOK(t, api+"/sales/current")
	f, err := scrape(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	for name, fam := range f {
		if fam.GetHelp() == "" {
			t.Errorf("%s has no help", name)
		}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == "" {
					t.Errorf("%s has an empty label %s", name, l.GetName())
				}
				if l.GetName() == "host" {
					t.Errorf("%s has a host label", name)
				}
			}
		}
	}
	for _, name := range []string{"flashsale_http_request_size_bytes", "flashsale_http_response_size_bytes"} {
		if f[name] != nil {
			t.Errorf("%s present without WithHTTPSizes", name)
		}
	}
	// docs/operating.md lists these.
	for _, o := range []string{"held", "sold_out", "item_unavailable", "item_not_found", "user_limit_reached",
		"no_active_sale", "rate_limited", "replayed", "idempotency_key_reused"} {
		f.value(t, "flashsale_checkout_outcomes_total", "outcome="+o)
	}
	for _, o := range []string{"purchased", "code_not_found", "code_expired", "user_limit_reached"} {
		f.value(t, "flashsale_purchase_outcomes_total", "outcome="+o)
	}
	if v := f.value(t, "flashsale_event_streams_open"); v != 0 {
		t.Errorf("event streams open %v, want 0", v)
	}
	if v := f.value(t, "flashsale_current_sale_expired_holds"); v != 0 {
		t.Errorf("expired holds %v, want 0", v)
	}
	if f["flashsale_current_sale_sellout_seconds"] != nil {
		t.Error("a sell-out time before the sale sold out")
	}
}

func TestHTTPSizesWhenAskedFor(t *testing.T) {
	t.Parallel()
	_, api, metricsURL := start(t, metrics.WithHTTPSizes())
	apitest.Held(t, api, "alice", 1)
	f, err := scrape(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.find(t, "flashsale_http_response_size_bytes", "url=/checkout", "code=201").GetHistogram().GetSampleCount(); n != 1 {
		t.Errorf("checkout responses sized %d, want 1", n)
	}
	f.find(t, "flashsale_http_request_size_bytes", "url=/checkout")
}

// An open event stream shows while it is open; a hold that expires shows
// as back in the pool until claimed again; a sale that sells out shows
// how long it took.
func TestStreamsExpiredHoldsAndSellout(t *testing.T) {
	t.Parallel()
	_, api, metricsURL := startSale(t, sale.Settings{Units: 3, Items: 3, PerUserLimit: 10, HoldTTL: 2 * time.Second})
	poll := func(what string, ok func(families) bool) {
		t.Helper()
		testutil.Poll(t, 20*time.Second, func() error {
			f, err := scrape(metricsURL)
			if err != nil {
				return err
			}
			if !ok(f) {
				return errors.New(what)
			}
			return nil
		})
	}
	gauge := func(f families, name string) (float64, bool) {
		fam := f[name]
		if fam == nil || len(fam.GetMetric()) == 0 {
			return 0, false
		}
		return fam.GetMetric()[0].GetGauge().GetValue(), true
	}

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+"/sales/current/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	poll("one event stream open", func(f families) bool { v, _ := gauge(f, "flashsale_event_streams_open"); return v == 1 })
	cancel()
	resp.Body.Close()
	poll("no event stream open", func(f families) bool { v, _ := gauge(f, "flashsale_event_streams_open"); return v == 0 })

	apitest.Held(t, api, "quitter", 1) // never bought
	poll("the hold expired, its unit back in the pool", func(f families) bool {
		v, _ := gauge(f, "flashsale_current_sale_expired_holds")
		return v == 1
	})
	for item := 1; item <= 3; item++ {
		apitest.Bought(t, api, apitest.Held(t, api, fmt.Sprintf("buyer-%d", item), item))
	}
	poll("sold out, the expired hold's unit sold", func(f families) bool {
		expired, _ := gauge(f, "flashsale_current_sale_expired_holds")
		sellout, ok := gauge(f, "flashsale_current_sale_sellout_seconds")
		return expired == 0 && ok && sellout > 0
	})
}
