package metrics

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/salewatch"
)

// saleCollector reports the current sale as GET /sales/current does, from
// the process's shared read at most maxAge old: however many scrapers ask,
// they add at most one read per maxAge to what the API's readers cost.
type saleCollector struct {
	current *salewatch.Current
	sales   *sale.Service
	maxAge  time.Duration

	// history is the last read of the current sale's expired holds and
	// last sale, shared by the scrapes of one maxAge.
	mu      sync.Mutex
	history sale.HoldHistory
	histOf  int64 // sale id
	histAt  time.Time
}

func saleDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "current_sale", name), help, labels, nil)
}

var (
	saleOpen       = saleDesc("open", "1 while a sale is open by the database's clock, 0 when none is (no_active_sale).")
	saleID         = saleDesc("id", "Id of the sale open now.")
	saleUnits      = saleDesc("units", "Units of the current sale by state; they add up to its units_total.", "state")
	saleBuyers     = saleDesc("buyers", "Users who bought in the current sale.")
	saleSecondsEnd = saleDesc("seconds_to_end", "Seconds until the current sale's window closes, by this server's clock.")
	saleReads      = saleDesc("reads_total", "Reads of the current sale from PostgreSQL (at most one per second, whatever the scrape rate).")
	saleReadErrs   = saleDesc("read_errors_total", "Reads of the current sale that failed for another reason than no open sale.")
	saleExpired    = saleDesc("expired_holds", "Units of the current sale whose hold expired without a purchase and that no checkout has claimed again: "+
		"back in the pool (counted in available too).")
	saleSellout = saleDesc("sellout_seconds", "Seconds from the current sale's start to its last unit sold; absent until it sells out.")
)

func (c *saleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{saleOpen, saleID, saleUnits, saleBuyers, saleSecondsEnd, saleReads, saleReadErrs,
		saleExpired, saleSellout} {
		ch <- d
	}
}

func (c *saleCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.current.Get(context.Background(), c.maxAge) // sale.Service bounds each query by DB_TIMEOUT
	metric := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
	}
	metric(saleReads, prometheus.CounterValue, float64(c.current.Reads()))
	metric(saleReadErrs, prometheus.CounterValue, float64(c.current.ReadErrors()))
	switch {
	case errors.Is(snap.Err, sale.ErrNoActiveSale):
		metric(saleOpen, prometheus.GaugeValue, 0)
		return
	case snap.Err != nil:
		return // unknown: reported as missing series, and counted above
	}
	sum := snap.Summary
	metric(saleOpen, prometheus.GaugeValue, 1)
	metric(saleID, prometheus.GaugeValue, float64(sum.ID))
	metric(saleUnits, prometheus.GaugeValue, float64(sum.UnitsSold), "sold")
	metric(saleUnits, prometheus.GaugeValue, float64(sum.UnitsHeld), "held")
	metric(saleUnits, prometheus.GaugeValue, float64(sum.UnitsAvailable), "available")
	metric(saleBuyers, prometheus.GaugeValue, float64(sum.Buyers))
	metric(saleSecondsEnd, prometheus.GaugeValue, max(time.Until(sum.EndsAt).Seconds(), 0))
	h, ok := c.holdHistory(sum.ID)
	if !ok {
		return // unknown: reported as missing series
	}
	metric(saleExpired, prometheus.GaugeValue, float64(h.ExpiredHolds))
	if sum.UnitsSold == int64(sum.UnitsTotal) && !h.LastSold.IsZero() {
		metric(saleSellout, prometheus.GaugeValue, h.LastSold.Sub(sum.StartsAt).Seconds())
	}
}

// holdHistory reads the sale's units at most once per maxAge, whatever
// the number of scrapers.
func (c *saleCollector) holdHistory(saleID int64) (sale.HoldHistory, bool) {
	if c.sales == nil {
		return sale.HoldHistory{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.histOf == saleID && time.Since(c.histAt) < c.maxAge {
		return c.history, true
	}
	h, err := c.sales.HoldHistory(context.Background(), saleID) // bounded by DB_TIMEOUT
	if err != nil {
		return sale.HoldHistory{}, false
	}
	c.history, c.histOf, c.histAt = h, saleID, time.Now()
	return h, true
}
