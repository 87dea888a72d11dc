package report

import (
	"time"

	"github.com/flashsale/flashsale/internal/loadgen/phase"
	"github.com/flashsale/flashsale/internal/loadgen/stats"
	"github.com/flashsale/flashsale/internal/loadgen/usage"
)

// PhaseReport is a herd or a storm, as reported.
type PhaseReport struct {
	Concurrency int     `json:"concurrency"`
	ElapsedS    float64 `json:"elapsed_s"`
	// WallS: herd only, from the first request to the purchase that sold
	// the sale out; null when it never came.
	WallS     *float64        `json:"wall_s,omitempty"`
	Purchases int64           `json:"purchases,omitempty"`
	UsersUsed int64           `json:"users_used,omitempty"`
	TimedOut  bool            `json:"timed_out,omitempty"`
	Checkout  EndpointReport  `json:"checkout"`
	Purchase  *EndpointReport `json:"purchase,omitempty"`
	// Others: storm checkouts of every user but the hot one (-hot-clients).
	Others *EndpointReport `json:"others,omitempty"`
	// Storm only: checkout_attempts rows before and after.
	AttemptsBefore *int64     `json:"attempts_before,omitempty"`
	AttemptsAfter  *int64     `json:"attempts_after,omitempty"`
	CPU            usage.CPU  `json:"cpu"`
	WAL            *usage.WAL `json:"wal,omitempty"`
	// Timeline: storm only, its answers per second.
	Timeline *Timeline `json:"timeline,omitempty"`
}

// EndpointReport is one endpoint's requests in a phase.
type EndpointReport struct {
	Requests        int64            `json:"requests"`
	PerSecond       float64          `json:"per_second"`
	P50MS           float64          `json:"p50_ms"`
	P95MS           float64          `json:"p95_ms"`
	P99MS           float64          `json:"p99_ms"`
	MaxMS           float64          `json:"max_ms"`
	MeanMS          float64          `json:"mean_ms"`
	Outcomes        map[string]int64 `json:"outcomes"`
	Stored          int64            `json:"attempts_answered,omitempty"`
	TransportErrors int64            `json:"transport_errors"`
	ServerErrors    int64            `json:"server_errors_5xx"`
	ErrorSamples    []string         `json:"error_samples,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func endpoint(s *stats.Endpoint, elapsed time.Duration, withStored bool) EndpointReport {
	r := EndpointReport{
		Requests: int64(s.Hist.Count()),
		P50MS:    ms(s.Hist.Quantile(0.50)), P95MS: ms(s.Hist.Quantile(0.95)), P99MS: ms(s.Hist.Quantile(0.99)),
		MaxMS: ms(s.Hist.Max()), MeanMS: ms(s.Hist.Mean()),
		Outcomes: map[string]int64{}, TransportErrors: s.Errors, ServerErrors: s.ServerErrors(), ErrorSamples: s.Samples,
	}
	if elapsed > 0 {
		r.PerSecond = float64(r.Requests) / elapsed.Seconds()
	}
	for k, v := range s.Outcomes {
		r.Outcomes[k.Label()] += v
	}
	if withStored {
		r.Stored = s.Stored()
	}
	return r
}

// Phase reports a herd or a storm that concurrency clients ran using cpu.
func Phase(p *phase.Run, concurrency int, cpu usage.CPU) PhaseReport {
	r := PhaseReport{
		Concurrency: concurrency, ElapsedS: p.Elapsed.Seconds(), Purchases: p.Purchases, UsersUsed: p.UsersUsed,
		TimedOut: p.TimedOut, CPU: cpu,
		Checkout: endpoint(p.Checkout, p.Elapsed, true),
	}
	if p.Wall > 0 {
		w := p.Wall.Seconds()
		r.WallS = &w
	}
	pr := endpoint(p.Purchase, p.Elapsed, false)
	r.Purchase = &pr
	if p.Others != nil {
		o := endpoint(p.Others, p.Elapsed, true)
		r.Others = &o
	}
	return r
}

// Mark is checkout_attempts' row count and the WAL position at a point of
// a run.
type Mark struct {
	Attempts int64
	WAL      usage.WALMark
}

// Herd is a herd's report, with the WAL written between before and after.
func Herd(h *phase.Run, concurrency int, cpu usage.CPU, before, after Mark) PhaseReport {
	r := Phase(h, concurrency, cpu)
	r.WAL = usage.WALBetween(before.WAL, after.WAL, r.requests())
	return r
}

// Storm is a storm's report, with the checkout_attempts rows and WAL
// between before and after.
func Storm(st *phase.Run, concurrency int, cpu usage.CPU, before, after Mark) PhaseReport {
	r := Phase(st, concurrency, cpu)
	r.Purchase = nil
	r.WAL = usage.WALBetween(before.WAL, after.WAL, r.Checkout.Requests)
	r.AttemptsBefore, r.AttemptsAfter = &before.Attempts, &after.Attempts
	r.Timeline = NewTimeline(st)
	return r
}
