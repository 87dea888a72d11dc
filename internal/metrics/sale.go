package metrics

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/flashsale/flashsale/internal/sale"
)

// saleCollector reports the current sale as GET /sales/current does, from
// a copy at most maxAge old: however many scrapers ask, PostgreSQL is asked
// at most once per maxAge per process.
type saleCollector struct {
	cache *summaryCache
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
)

func newSaleCollector(sales *sale.Service, maxAge time.Duration) *saleCollector {
	return &saleCollector{cache: &summaryCache{maxAge: maxAge, read: func(ctx context.Context) (sale.Summary, error) {
		cur, err := sales.Current(ctx)
		if err != nil {
			return sale.Summary{}, err
		}
		return sales.Summary(ctx, cur.ID)
	}}}
}

func (c *saleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{saleOpen, saleID, saleUnits, saleBuyers, saleSecondsEnd, saleReads, saleReadErrs} {
		ch <- d
	}
}

func (c *saleCollector) Collect(ch chan<- prometheus.Metric) {
	sum, err := c.cache.get(context.Background()) // sale.Service bounds each query by DB_TIMEOUT
	metric := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
	}
	metric(saleReads, prometheus.CounterValue, float64(c.cache.reads.Load()))
	metric(saleReadErrs, prometheus.CounterValue, float64(c.cache.errors.Load()))
	switch {
	case errors.Is(err, sale.ErrNoActiveSale):
		metric(saleOpen, prometheus.GaugeValue, 0)
		return
	case err != nil:
		return // unknown: reported as missing series, and counted above
	}
	metric(saleOpen, prometheus.GaugeValue, 1)
	metric(saleID, prometheus.GaugeValue, float64(sum.ID))
	metric(saleUnits, prometheus.GaugeValue, float64(sum.UnitsSold), "sold")
	metric(saleUnits, prometheus.GaugeValue, float64(sum.UnitsHeld), "held")
	metric(saleUnits, prometheus.GaugeValue, float64(sum.UnitsAvailable), "available")
	metric(saleBuyers, prometheus.GaugeValue, float64(sum.Buyers))
	metric(saleSecondsEnd, prometheus.GaugeValue, max(time.Until(sum.EndsAt).Seconds(), 0))
}

// summaryCache keeps the last read (or its error, so a database that is
// down is not asked more often either) for maxAge. Concurrent callers of a
// stale cache share one read through singleflight.
type summaryCache struct {
	maxAge time.Duration
	read   func(context.Context) (sale.Summary, error)
	flight singleflight.Group

	mu     sync.Mutex
	at     time.Time // when the last read finished; zero before the first
	sum    sale.Summary
	err    error
	reads  atomic.Int64
	errors atomic.Int64
}

func (c *summaryCache) fresh() (sale.Summary, error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sum, c.err, !c.at.IsZero() && time.Since(c.at) < c.maxAge
}

func (c *summaryCache) get(ctx context.Context) (sale.Summary, error) {
	if sum, err, ok := c.fresh(); ok {
		return sum, err
	}
	v, _, _ := c.flight.Do("current", func() (any, error) {
		// A caller that found the cache stale just before the previous
		// read finished arrives here after it: no second read.
		if sum, err, ok := c.fresh(); ok {
			return result{sum, err}, nil
		}
		sum, err := c.read(ctx)
		c.reads.Add(1)
		if err != nil && !errors.Is(err, sale.ErrNoActiveSale) {
			c.errors.Add(1)
		}
		c.mu.Lock()
		c.at, c.sum, c.err = time.Now(), sum, err
		c.mu.Unlock()
		return result{sum, err}, nil
	})
	r := v.(result)
	return r.sum, r.err
}

type result struct {
	sum sale.Summary
	err error
}
