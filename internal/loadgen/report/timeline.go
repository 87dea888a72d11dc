package report

import (
	"time"

	"github.com/flashsale/flashsale/internal/loadgen/phase"
)

// FirstWindow is the start of a storm compared with the rest of it: a
// fresh server's first seconds must be as fast as its steady state.
const FirstWindow = 10 * time.Second

// Timeline is a storm's answers per second: its first window against the
// rest. The window is FirstWindow, or half a storm shorter than two of
// them (whole seconds); no timeline for a storm under 2 s.
type Timeline struct {
	WindowS        int     `json:"first_window_s"`
	FirstPerSecond float64 `json:"first_per_s"`
	RestPerSecond  float64 `json:"rest_per_s"`
	Ratio          float64 `json:"first_to_rest"` // first / rest
	// Counts are the answers that arrived in each second of the storm; the
	// last holds the few answers of requests in flight at its end.
	Counts []int64 `json:"per_second_counts"`
}

// NewTimeline is st's timeline; nil for a storm under 2 s.
func NewTimeline(st *phase.Run) *Timeline {
	window := min(FirstWindow, st.Elapsed/2).Truncate(time.Second)
	if window < time.Second {
		return nil
	}
	w := int(window / time.Second)
	t := &Timeline{WindowS: w, Counts: st.PerSecond}
	var first, total int64
	for i, n := range st.PerSecond {
		if i < w {
			first += n
		}
		total += n
	}
	t.FirstPerSecond = float64(first) / window.Seconds()
	if rest := st.Elapsed - window; rest > 0 {
		t.RestPerSecond = float64(total-first) / rest.Seconds()
	}
	if t.RestPerSecond > 0 {
		t.Ratio = t.FirstPerSecond / t.RestPerSecond
	}
	return t
}
