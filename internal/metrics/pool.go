package metrics

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector reads pgxpool's own counters when scraped, for each pool
// by name (the pool label); nothing is counted on the request path.
type poolCollector struct{ pools map[string]*pgxpool.Pool }

func poolDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "db_pool", name), help, []string{"pool"}, nil)
}

var (
	poolAcquired     = poolDesc("acquired_connections", "Connections in use by a request or batch.")
	poolIdle         = poolDesc("idle_connections", "Idle connections in the pool.")
	poolConstructing = poolDesc("constructing_connections", "Connections being opened.")
	poolTotal        = poolDesc("total_connections", "Connections in the pool: acquired, idle and being opened.")
	poolMax          = poolDesc("max_connections", "DB_MAX_CONNS (pool=\"write\") or DB_READ_MAX_CONNS (pool=\"read\").")
	poolAcquires     = poolDesc("acquires_total", "Successful acquires of a connection.")
	poolAcquireWait  = poolDesc("acquire_duration_seconds_total", "Time spent in successful acquires.")
	poolEmpty        = poolDesc("empty_acquires_total", "Acquires that had to wait because no connection was idle.")
	poolCanceled     = poolDesc("canceled_acquires_total", "Acquires given up because their context ended.")
	poolNew          = poolDesc("new_connections_total", "Connections opened.")
)

func (poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolAcquired, poolIdle, poolConstructing, poolTotal, poolMax,
		poolAcquires, poolAcquireWait, poolEmpty, poolCanceled, poolNew} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	for name, pool := range c.pools {
		if pool == nil {
			continue
		}
		s := pool.Stat()
		gauge := func(d *prometheus.Desc, v int32) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), name)
		}
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, name)
		}
		gauge(poolAcquired, s.AcquiredConns())
		gauge(poolIdle, s.IdleConns())
		gauge(poolConstructing, s.ConstructingConns())
		gauge(poolTotal, s.TotalConns())
		gauge(poolMax, s.MaxConns())
		counter(poolAcquires, float64(s.AcquireCount()))
		counter(poolAcquireWait, s.AcquireDuration().Seconds())
		counter(poolEmpty, float64(s.EmptyAcquireCount()))
		counter(poolCanceled, float64(s.CanceledAcquireCount()))
		counter(poolNew, float64(s.NewConnsCount()))
	}
}
