package stats

import (
	"testing"
	"time"
)

func TestHistogram(t *testing.T) {
	t.Parallel()
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.95, 950 * time.Millisecond}, {0.99, 990 * time.Millisecond}} {
		got := h.Quantile(c.q)
		if d := got - c.want; d < -c.want/25 || d > c.want/25 {
			t.Errorf("q%.2f = %v, want %v ±4%%", c.q, got, c.want)
		}
	}
	if h.Max() != time.Second || h.Quantile(1) != time.Second || h.Count() != 1000 {
		t.Errorf("max %v, q1 %v, count %d", h.Max(), h.Quantile(1), h.Count())
	}
	var small Histogram
	small.Record(3 * time.Microsecond)
	if small.Quantile(0.5) != 3*time.Microsecond {
		t.Errorf("small: %v", small.Quantile(0.5))
	}
	var m Histogram
	m.Merge(&h)
	m.Merge(&small)
	if m.Count() != 1001 || m.Max() != time.Second {
		t.Errorf("merged: %d %v", m.Count(), m.Max())
	}
	for v := uint64(0); v < 1<<20; v = v*2 + 1 {
		lo, w := bucketRange(bucketOf(v))
		if v < lo || v >= lo+w {
			t.Fatalf("value %d in bucket [%d, %d)", v, lo, lo+w)
		}
	}
}
