package phase

import (
	"strconv"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen/stats"
)

// Run is what a herd or a storm measured.
type Run struct {
	Checkout *stats.Endpoint
	Purchase *stats.Endpoint
	// Elapsed runs from the first request to the last answer.
	Elapsed time.Duration
	// Wall runs from the first request to the Want-th purchase; 0 when
	// that purchase never came.
	Wall        time.Duration
	Purchases   int64
	DistinctIDs int64 // distinct purchase ids answered
	UsersUsed   int64
	TimedOut    bool
	// Others: storm checkouts of every user but the hot one (nil without).
	Others *stats.Endpoint
	// PerSecond: storm only, answers counted by the second (since the
	// first request) in which they arrived.
	PerSecond []int64
}

// Users names n users; the prefix differs per run, so a run against a
// sale that earlier runs used starts with users who own nothing.
func Users(n int) []string {
	prefix := "lg" + strconv.FormatInt(time.Now().UnixNano()/int64(time.Millisecond)%1e9, 36) + "-"
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i+1)
	}
	return out
}
