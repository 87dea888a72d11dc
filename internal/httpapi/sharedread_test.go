package httpapi_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/flashsale/flashsale/internal/metrics"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
)

// The metrics gauges, GET /sales/current, the item pages and the event
// stream show the sale from one shared read: a scrape reads it, a checkout
// changes it, and the others still show the scrape's read, at one read of
// the sale in all.
func TestCurrentSaleReadOnceForAllItsUsers(t *testing.T) {
	t.Parallel()
	m := metrics.New("test")
	opts := apitest.WeekLong(apitest.DefaultSettings)
	opts.Metrics = m
	// The polled answers may be an hour old, so GET /sales/current shows a
	// read made before the checkout only if it is the scrape's.
	opts.HTTP.ReadMaxAge = time.Hour
	srv := apitest.Start(t, opts)
	scrapes := httptest.NewServer(m.Handler())
	t.Cleanup(scrapes.Close)

	began := time.Now()
	held := gauge(t, scrapes.URL, "flashsale_current_sale_units", "held")
	apitest.Held(t, srv.URL, "user-1", 1)
	cur := apitest.GetOK(t, srv.URL+"/sales/current")
	items := apitest.GetOK(t, srv.URL+"/sales/current/items?limit=5")
	event, err := mustOpen(t, srv.URL).nextSale()
	if err != nil {
		t.Fatal(err)
	}
	// The stream accepts a read at most a second old.
	streamShares := time.Since(began) < time.Second
	reads := m.SaleReads()
	t.Logf("a scrape, a checkout, GET /sales/current, an item page and an event stream in %v: %d read(s) of the sale",
		time.Since(began), reads)

	if held != 0 {
		t.Fatalf("scrape before any checkout: %v units held", held)
	}
	if got := apitest.Int(t, cur, "units_held"); got != 0 {
		t.Errorf("GET /sales/current shows %d held, want the scrape's read (0)", got)
	}
	id := apitest.Int(t, cur, "id")
	if got := apitest.Int(t, items, "sale_id"); got != id {
		t.Errorf("item page of sale %d, GET /sales/current says %d", got, id)
	}
	if apitest.Int(t, event, "id") != id {
		t.Errorf("event shows sale %v, want %d", event["id"], id)
	}
	if streamShares && (apitest.Int(t, event, "units_held") != 0 || reads != 1) {
		t.Errorf("within a second of the scrape: the stream shows %v held and the sale was read %d times, want the scrape's one read (0 held)",
			event["units_held"], reads)
	}
	if w := srv.API.SaleWatcher().Reads(); w != reads {
		t.Errorf("the event stream counts %d reads, the metrics %d: not one shared read", w, reads)
	}
}

// gauge scrapes url for the gauge name whose one label has value.
func gauge(t *testing.T, url, name, value string) float64 {
	t.Helper()
	r := apitest.Get(t, url)
	if r.Status != http.StatusOK {
		t.Fatalf("scrape: %d %s", r.Status, r.Raw)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(r.Raw))
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	var ms []*dto.Metric
	if f := fams[name]; f != nil {
		ms = f.GetMetric()
	}
	for _, m := range ms {
		if l := m.GetLabel(); len(l) == 1 && l[0].GetValue() == value {
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("scrape has no %s{%s}", name, value)
	return 0
}
