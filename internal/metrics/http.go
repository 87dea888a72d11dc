package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics counts and times requests with labels whose values the client
// cannot choose freely: the route template instead of the path, a fixed
// set of methods, the status sent. There is no host label: the Host header
// is the client's to choose, and a label that is always empty says nothing.
type httpMetrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	// Nil unless WithHTTPSizes: about half of a scrape's lines for a
	// figure nobody watches during a sale (the bodies are a few hundred
	// bytes).
	requestBytes, responseBytes *prometheus.HistogramVec
}

var httpLabels = []string{"code", "method", "url"}

func newHTTPMetrics(sizes bool) *httpMetrics {
	h := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered, by status, method and route template.",
		}, httpLabels),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help: "Time from the request's arrival at the API's handlers to its answer.",
			// Finer below 5 ms than the default: most answers are there.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, httpLabels),
	}
	if sizes {
		sizeBuckets := prometheus.ExponentialBuckets(64, 4, 8) // 64 B to 1 MiB
		h.requestBytes = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "request_size_bytes",
			Help: "Request body sizes (Content-Length), by status, method and route template.", Buckets: sizeBuckets,
		}, httpLabels)
		h.responseBytes = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "response_size_bytes",
			Help: "Response body sizes, by status, method and route template.", Buckets: sizeBuckets,
		}, httpLabels)
	}
	return h
}

func (h *httpMetrics) collectors() []prometheus.Collector {
	cs := []prometheus.Collector{h.requests, h.seconds}
	if h.requestBytes != nil {
		cs = append(cs, h.requestBytes, h.responseBytes)
	}
	return cs
}

// middleware runs outside the request logger, whose HandleError has
// already written the answer: its status is the one sent.
func (h *httpMetrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		status := c.Response().Status
		if err != nil && !c.Response().Committed {
			status = http.StatusInternalServerError
		}
		url := c.Path()
		if url == "" {
			url = "unmatched"
		}
		labels := prometheus.Labels{"code": strconv.Itoa(status), "method": methodLabel(c.Request().Method), "url": url}
		h.requests.With(labels).Inc()
		h.seconds.With(labels).Observe(time.Since(start).Seconds())
		if h.requestBytes != nil {
			h.requestBytes.With(labels).Observe(float64(max(c.Request().ContentLength, 0)))
			h.responseBytes.With(labels).Observe(float64(c.Response().Size))
		}
		return err
	}
}

// methodLabel keeps a method of the client's own out of the labels.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}
