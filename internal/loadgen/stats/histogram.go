// Package stats records the benchmark's answers as they come: latencies
// in a histogram, outcomes by status, errors with a few samples. Each
// client records its own; they are merged when a phase ends.
package stats

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records latencies in microseconds in log-linear buckets: exact
// below 32 µs, then 32 buckets per power of two (at most ~3% wide). It is
// not safe for concurrent use: each worker keeps its own and they are merged
// at the end, so recording costs a few instructions and no synchronisation.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sumUS  uint64
	maxUS  uint64
}

const (
	subBits     = 5
	subCount    = 1 << subBits
	maxExp      = 40 // 2^40 µs is 12 days: nothing is longer
	histBuckets = (maxExp-subBits)*subCount + 2*subCount
)

func bucketOf(us uint64) int {
	if us >= 1<<(maxExp+1) {
		us = 1<<(maxExp+1) - 1
	}
	if us < 2*subCount {
		return int(us)
	}
	k := bits.Len64(us) - 1 // us in [2^k, 2^(k+1))
	shift := k - subBits
	return shift*subCount + int(us>>shift)
}

// bucketRange returns the lowest value of bucket i and its width.
func bucketRange(i int) (lo, width uint64) {
	if i < 2*subCount {
		return uint64(i), 1
	}
	shift := i/subCount - 1
	return uint64(i%subCount+subCount) << shift, 1 << shift
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	h.counts[bucketOf(us)]++
	h.n++
	h.sumUS += us
	if us > h.maxUS {
		h.maxUS = us
	}
}

// Merge adds o's records to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sumUS += o.sumUS
	h.maxUS = max(h.maxUS, o.maxUS)
}

// Count is the number of latencies recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest latency recorded, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.maxUS) * time.Microsecond }

// Mean is the average latency.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sumUS/h.n) * time.Microsecond
}

// Quantile returns the latency below which a fraction q of the records
// fall: the middle of the bucket holding that rank, never above Max.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return h.Max()
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, w := bucketRange(i)
			return time.Duration(min(lo+w/2, h.maxUS)) * time.Microsecond
		}
	}
	return h.Max()
}
