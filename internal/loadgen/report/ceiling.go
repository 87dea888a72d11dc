package report

import (
	"github.com/flashsale/flashsale/internal/loadgen/invariant"
	"github.com/flashsale/flashsale/internal/loadgen/usage"
)

// CeilingRun is the HTTP ceiling's storm.
type CeilingRun struct {
	Processes int         `json:"processes"`
	Storm     PhaseReport `json:"storm"`
	// Checks: the ceiling measured the answer the service gives.
	Checks []invariant.Check `json:"checks"`
	Server *usage.Server     `json:"server,omitempty"`
}

// Ceilings are what the service could reach at best on this machine, from
// the two ceilings measured in the same run: the HTTP ceiling (the
// server's HTTP stack with no database) and the database ceiling (the
// baseline: the service's own transactions in-process, no HTTP). Both
// share the same CPUs, so their costs per request add up: the combined
// ceiling is 1 / (1/http + 1/db) requests per second. For the herd the
// same idea is applied to time: the baseline's herd wall plus what its
// requests (checkouts and purchases) cost at the HTTP ceiling's rate.
type Ceilings struct {
	HTTPCheckoutsPerS     float64 `json:"http_checkouts_per_s"`
	DBCheckoutsPerS       float64 `json:"db_checkouts_per_s"`
	CombinedCheckoutsPerS float64 `json:"combined_checkouts_per_s"`
	// StormRatio is the service's storm checkouts/s over the combined ceiling.
	StormRatio float64 `json:"storm_ratio"`

	DBHerdWallS  float64 `json:"db_herd_wall_s"`
	HerdRequests int64   `json:"db_herd_requests"`
	// HTTPHerdS is HerdRequests at the HTTP ceiling's rate.
	HTTPHerdS         float64 `json:"http_herd_s"`
	CombinedHerdWallS float64 `json:"combined_herd_wall_s"`
	// HerdRatio is the combined herd wall over the service's: 1 means the
	// service sold out as fast as the ceilings allow.
	HerdRatio float64 `json:"herd_ratio"`
}

// combinedCeilings computes c's ceilings from the HTTP ceiling's storm;
// nil when a part is missing.
func combinedCeilings(http *CeilingRun, c *ConfigResult) *Ceilings {
	if http == nil || c.Service == nil || c.Baseline == nil {
		return nil
	}
	h, d := http.Storm.Checkout.PerSecond, c.Baseline.Storm.Checkout.PerSecond
	if h <= 0 || d <= 0 {
		return nil
	}
	out := &Ceilings{HTTPCheckoutsPerS: h, DBCheckoutsPerS: d, CombinedCheckoutsPerS: 1 / (1/h + 1/d)}
	out.StormRatio = c.Service.Storm.Checkout.PerSecond / out.CombinedCheckoutsPerS
	bh := c.Baseline.Herd
	if bh.WallS != nil {
		out.DBHerdWallS = *bh.WallS
		out.HerdRequests = bh.requests()
		out.HTTPHerdS = float64(out.HerdRequests) / h
		out.CombinedHerdWallS = out.DBHerdWallS + out.HTTPHerdS
		if w := c.Service.Herd.WallS; w != nil && *w > 0 {
			out.HerdRatio = out.CombinedHerdWallS / *w
		}
	}
	return out
}
