// Package report turns what the benchmark's phases measured into its
// report: the figures, the combined ceilings, the targets and the
// invariants' verdict, printed as a table and written as JSON.
package report

import "time"

// Report is everything a run measured.
type Report struct {
	StartedAt time.Time `json:"started_at"`
	Setup     Setup     `json:"setup"`
	// HTTPCeiling is the storm against the HTTP stack alone; absent
	// when it was not run.
	HTTPCeiling *CeilingRun     `json:"http_ceiling,omitempty"`
	Configs     []*ConfigResult `json:"configs"`
	Targets     []TargetResult  `json:"targets"`
	// Pass: every invariant held (every configuration's service and
	// baseline), and the HTTP ceiling measured sold-out answers.
	Pass bool `json:"pass"`
}

// Setup records how the run was configured.
type Setup struct {
	Spawned          bool    `json:"spawned"`
	Servers          int     `json:"servers"`
	Pooler           string  `json:"pooler,omitempty"`
	PoolerSize       int     `json:"pooler_pool_size,omitempty"`
	Users            int     `json:"users"`
	Concurrency      int     `json:"concurrency"`
	StormConcurrency int     `json:"storm_concurrency"`
	StormDurationS   float64 `json:"storm_duration_s"`
	Pick             string  `json:"pick"`
	ReadCurrent      int     `json:"read_current_clients"`
	ReadItems        int     `json:"read_items_clients"`
	ReadIntervalS    float64 `json:"read_interval_s"`
	BaselineConns    int     `json:"baseline_db_conns,omitempty"`
	CPUs             int     `json:"cpus"`
	LogDir           string  `json:"log_dir,omitempty"`
	// Webhooks: the servers delivered their webhooks to loadgen's receiver.
	Webhooks bool `json:"webhooks,omitempty"`
}

// ConfigResult is one configuration: the service, its database ceiling
// (the baseline) and the ceilings combined.
type ConfigResult struct {
	Name       string      `json:"name"`
	Units      int64       `json:"units"`
	Items      int64       `json:"items"`
	Pick       string      `json:"pick"`
	ServerLogs []string    `json:"server_logs,omitempty"`
	Service    *SideResult `json:"service"`
	// Baseline is the database ceiling; absent without -baseline.
	Baseline *SideResult `json:"baseline,omitempty"`
	Ceilings *Ceilings   `json:"ceilings,omitempty"`
	// Ratios of the service to the baseline; absent without a baseline.
	Ratios *Ratios `json:"ratios_to_baseline,omitempty"`
}

// Ratios are service / baseline: 1 means the service is as fast as driving
// PostgreSQL directly.
type Ratios struct {
	// HerdWall is baseline wall / service wall: throughput for the same work.
	HerdWall float64 `json:"herd_wall"`
	// HerdRequests compares checkout+purchase requests per second.
	HerdRequests float64 `json:"herd_requests"`
	// Storm compares checkouts per second.
	Storm float64 `json:"storm"`
}

// Finish computes ceilings, ratios, targets and the verdict.
func (r *Report) Finish() {
	r.Pass = len(r.Configs) > 0
	if r.HTTPCeiling != nil {
		for _, c := range r.HTTPCeiling.Checks {
			r.Pass = r.Pass && c.Pass
		}
	}
	r.Targets = nil
	for _, c := range r.Configs {
		for _, side := range []*SideResult{c.Service, c.Baseline} {
			if side == nil {
				continue
			}
			for _, ch := range side.Invariants {
				r.Pass = r.Pass && ch.Pass
			}
		}
		if c.Service == nil {
			r.Pass = false
			continue
		}
		c.Ceilings = combinedCeilings(r.HTTPCeiling, c)
		c.Ratios = baselineRatios(c.Service, c.Baseline)
		r.Targets = append(r.Targets, r.configTargets(c)...)
	}
}

func baselineRatios(s, b *SideResult) *Ratios {
	if b == nil {
		return nil
	}
	out := &Ratios{}
	if s.Herd.WallS != nil && b.Herd.WallS != nil && *s.Herd.WallS > 0 {
		out.HerdWall = *b.Herd.WallS / *s.Herd.WallS
	}
	if rb := herdRate(b.Herd); rb > 0 {
		out.HerdRequests = herdRate(s.Herd) / rb
	}
	if b.Storm.Checkout.PerSecond > 0 {
		out.Storm = s.Storm.Checkout.PerSecond / b.Storm.Checkout.PerSecond
	}
	return out
}

func herdRate(p PhaseReport) float64 {
	if p.ElapsedS <= 0 {
		return 0
	}
	return float64(p.requests()) / p.ElapsedS
}

// requests counts the phase's checkouts and purchases.
func (p PhaseReport) requests() int64 {
	n := p.Checkout.Requests
	if p.Purchase != nil {
		n += p.Purchase.Requests
	}
	return n
}
