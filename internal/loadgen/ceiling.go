package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// CeilingConfig says how to start the HTTP ceiling: cmd/httpceiling, the
// server's Echo stack answering every checkout 409 sold_out without a
// database.
type CeilingConfig struct {
	Bin string
	// Processes: as many as the service has servers, so both spread the
	// same clients over the same number of processes.
	Processes    int
	ExtraEnv     []string // the servers' extra environment, which it reads the same way
	LogDir       string
	ReadyTimeout time.Duration
	Items        int // item ids the storm names
}

// CeilingRun is the HTTP ceiling's storm.
type CeilingRun struct {
	Processes int         `json:"processes"`
	Storm     PhaseReport `json:"storm"`
	// Checks: the ceiling measured the answer the service gives.
	Checks []Check      `json:"checks"`
	Server *ServerUsage `json:"server,omitempty"`
}

// RunHTTPCeiling starts cfg.Processes HTTP ceilings, storms them as the
// service's storm is run (same driver, clients and duration) and stops them.
func RunHTTPCeiling(ctx context.Context, opts Options, cfg CeilingConfig) (_ *CeilingRun, err error) {
	opts.setDefaults()
	var procs []*Process
	defer func() {
		for _, p := range procs {
			err = errors.Join(err, p.Stop())
		}
	}()
	for i := range max(cfg.Processes, 1) {
		p, err := StartProcess(cfg.Bin, cfg.ExtraEnv, logPath(cfg.LogDir, "httpceiling", "storm", i+1))
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		fmt.Fprintf(opts.Log, "loadgen: started %s (pid %d) on %s\n", cfg.Bin, p.PID(), p.URL)
	}
	var urls []string
	var pids []int
	for _, p := range procs {
		if err := p.WaitReady(ctx, cfg.ReadyTimeout); err != nil {
			return nil, err
		}
		urls, pids = append(urls, p.URL), append(pids, p.PID())
	}
	driver, err := NewHTTPDriver(urls, opts.RequestTimeout)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Log, "loadgen: HTTP ceiling storm: %d clients for %s\n", opts.StormConcurrency, opts.StormDuration)
	cpu := startCPU(pids, "", false)
	st := runStorm(ctx, driver, stormSpec{
		users: makeUsers(opts.Users), concurrency: opts.StormConcurrency, items: max(cfg.Items, 1), duration: opts.StormDuration,
	})
	r := &CeilingRun{Processes: len(procs), Storm: phaseReport(st, opts.StormConcurrency, cpu.stop(st.elapsed))}
	r.Storm.Purchase = nil
	r.Storm.Checkout.Stored = 0 // nothing is stored: no database
	r.Storm.Timeline = timeline(st)
	fmt.Fprintf(opts.Log, "loadgen: HTTP ceiling storm: %d checkouts in %.2fs\n", st.checkout.hist.Count(), st.elapsed.Seconds())
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// 429 is what a sold-out server answers too, to a user over the rate
	// limit: the same middleware and error handler, a body of the same size.
	co := r.Storm.Checkout
	soldOut, limited := co.Outcomes["409 "+outSoldOut], co.Outcomes["429 "+outRateLimited]
	r.Checks = []Check{{
		Name: "every checkout answered 409 sold_out (or 429 rate_limited)",
		Pass: co.Requests > 0 && soldOut+limited == co.Requests && co.TransportErrors == 0,
		Detail: fmt.Sprintf("%d of %d answers 409 sold_out, %d 429 rate_limited, %d transport errors",
			soldOut, co.Requests, limited, co.TransportErrors),
	}}
	if r.Server, err = serverUsage(pids); err != nil {
		return nil, err
	}
	return r, nil
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
