package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything a run measured.
type Report struct {
	StartedAt time.Time   `json:"started_at"`
	Setup     Setup       `json:"setup"`
	Service   *SideResult `json:"service"`
	Baseline  *SideResult `json:"baseline,omitempty"`
	// Ratios of the service to the baseline; absent without a baseline.
	Ratios  *Ratios        `json:"ratios,omitempty"`
	Targets []TargetResult `json:"targets"`
	// Pass: every invariant held (the service's and the baseline's).
	Pass bool `json:"pass"`
}

// Setup records how the run was configured.
type Setup struct {
	URL              string  `json:"url"`
	Spawned          bool    `json:"spawned"`
	Users            int     `json:"users"`
	Concurrency      int     `json:"concurrency"`
	StormConcurrency int     `json:"storm_concurrency"`
	StormDurationS   float64 `json:"storm_duration_s"`
	Pick             string  `json:"pick"`
	BaselineConns    int     `json:"baseline_db_conns,omitempty"`
	Checkpoint       bool    `json:"checkpoint_before_each_phase"`
	Analyze          bool    `json:"analyze_before_each_phase"`
	CPUs             int     `json:"cpus"`
	ServerLog        string  `json:"server_log,omitempty"`
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

// TargetResult is one of the performance targets. Targets are
// informational: only invariants fail a run.
type TargetResult struct {
	Name string  `json:"name"`
	Got  float64 `json:"got"`
	Want string  `json:"want"`
	Met  bool    `json:"met"`
	Note string  `json:"note,omitempty"`
}

// Finish computes ratios, targets and the verdict.
func (r *Report) Finish() {
	r.Pass = r.Service != nil
	for _, side := range []*SideResult{r.Service, r.Baseline} {
		if side == nil {
			continue
		}
		for _, c := range side.Invariants {
			r.Pass = r.Pass && c.Pass
		}
	}
	if r.Service == nil {
		return
	}
	s, b := r.Service, r.Baseline
	if b != nil {
		r.Ratios = &Ratios{}
		if s.Herd.WallS != nil && b.Herd.WallS != nil && *s.Herd.WallS > 0 {
			r.Ratios.HerdWall = *b.Herd.WallS / *s.Herd.WallS
		}
		if rb := herdRate(b.Herd); rb > 0 {
			r.Ratios.HerdRequests = herdRate(s.Herd) / rb
		}
		if b.Storm.Checkout.PerSecond > 0 {
			r.Ratios.Storm = s.Storm.Checkout.PerSecond / b.Storm.Checkout.PerSecond
		}
	}
	var t []TargetResult
	wall := -1.0
	if s.Herd.WallS != nil {
		wall = *s.Herd.WallS
	}
	t = append(t, TargetResult{Name: fmt.Sprintf("herd: %d units sold, wall s", s.Sale.Units-s.Sale.SoldBefore),
		Got: wall, Want: "<= 2.5", Met: wall >= 0 && wall <= 2.5})
	note := ""
	if s.Storm.Concurrency != 128 {
		note = fmt.Sprintf("measured at %d connections, the target is stated at 128", s.Storm.Concurrency)
	}
	t = append(t,
		TargetResult{Name: "storm: checkouts/s", Got: s.Storm.Checkout.PerSecond, Want: ">= 15000",
			Met: s.Storm.Checkout.PerSecond >= 15000, Note: note},
		TargetResult{Name: "storm: p99 ms", Got: s.Storm.Checkout.P99MS, Want: "<= 25",
			Met: s.Storm.Checkout.P99MS <= 25, Note: note})
	if r.Ratios != nil {
		t = append(t,
			TargetResult{Name: "herd: ratio to baseline (wall)", Got: r.Ratios.HerdWall, Want: ">= 0.7", Met: r.Ratios.HerdWall >= 0.7},
			TargetResult{Name: "storm: ratio to baseline (checkouts/s)", Got: r.Ratios.Storm, Want: ">= 0.7", Met: r.Ratios.Storm >= 0.7})
	}
	if s.Server != nil {
		mb := float64(s.Server.PeakRSSBytes) / (1 << 20)
		t = append(t, TargetResult{Name: "server peak RSS MiB", Got: mb, Want: "<= 150", Met: mb <= 150})
	}
	r.Targets = t
}

func herdRate(p PhaseReport) float64 {
	if p.ElapsedS <= 0 {
		return 0
	}
	n := p.Checkout.Requests
	if p.Purchase != nil {
		n += p.Purchase.Requests
	}
	return float64(n) / p.ElapsedS
}

// WriteJSON writes the report to path, creating its directory.
func (r *Report) WriteJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteTable prints the report for people.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	s := r.Service
	fmt.Fprintf(&b, "flashsale bench, %s, %d CPUs, service %s\n", r.StartedAt.UTC().Format(time.RFC3339), r.Setup.CPUs, r.Setup.URL)
	if s == nil {
		b.WriteString("no result\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "sale: %d units, %d items, per-user limit %d, hold TTL %s; herd: %d users, %d clients, item pick %s; storm: %d clients for %s",
		s.Sale.Units, s.Sale.Items, s.Sale.PerUserLimit, time.Duration(s.Sale.HoldTTLS*float64(time.Second)),
		r.Setup.Users, r.Setup.Concurrency, r.Setup.Pick, r.Setup.StormConcurrency,
		time.Duration(r.Setup.StormDurationS*float64(time.Second)))
	if r.Baseline != nil {
		fmt.Fprintf(&b, "; baseline: pgxpool of %d conns", r.Baseline.Conns)
	}
	switch {
	case r.Setup.Analyze && r.Setup.Checkpoint:
		b.WriteString("; ANALYZE + CHECKPOINT before each phase")
	case r.Setup.Analyze:
		b.WriteString("; ANALYZE before each phase")
	case r.Setup.Checkpoint:
		b.WriteString("; CHECKPOINT before each phase")
	}
	b.WriteString("\n\n")

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tside\tendpoint\trequests\treq/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\terrors\t5xx\t")
	row := func(phase, side, ep string, e *EndpointReport) {
		if e == nil {
			return
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.1f\t%d\t%d\t\n", phase, side, ep, e.Requests, e.PerSecond,
			e.P50MS, e.P95MS, e.P99MS, e.MaxMS, e.TransportErrors, e.ServerErrors)
	}
	sides := []struct {
		name string
		r    *SideResult
	}{{"service", s}, {"baseline", r.Baseline}}
	for _, sd := range sides {
		if sd.r != nil {
			row("herd", sd.name, "checkout", &sd.r.Herd.Checkout)
			row("herd", sd.name, "purchase", sd.r.Herd.Purchase)
		}
	}
	for _, sd := range sides {
		if sd.r != nil {
			row("storm", sd.name, "checkout", &sd.r.Storm.Checkout)
			if sd.r.Storm.Others != nil {
				row("storm", sd.name, "others", sd.r.Storm.Others)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("\n")

	wall := func(p PhaseReport) string {
		if p.WallS == nil {
			return "never sold out"
		}
		return fmt.Sprintf("%.3f s", *p.WallS)
	}
	fmt.Fprintf(&b, "herd wall (first request to purchase #%d): service %s", s.Sale.Units-s.Sale.SoldBefore, wall(s.Herd))
	if r.Baseline != nil {
		fmt.Fprintf(&b, ", baseline %s", wall(r.Baseline.Herd))
	}
	b.WriteString("\n")
	if r.Ratios != nil {
		fmt.Fprintf(&b, "service / baseline: herd %.2f (wall), %.2f (requests/s); storm %.2f (checkouts/s)\n",
			r.Ratios.HerdWall, r.Ratios.HerdRequests, r.Ratios.Storm)
	}
	b.WriteString("\noutcomes:\n")
	for _, sd := range sides {
		if sd.r == nil {
			continue
		}
		fmt.Fprintf(&b, "  herd  %-8s checkout: %s\n", sd.name, outcomes(sd.r.Herd.Checkout))
		if sd.r.Herd.Purchase != nil {
			fmt.Fprintf(&b, "  herd  %-8s purchase: %s\n", sd.name, outcomes(*sd.r.Herd.Purchase))
		}
		fmt.Fprintf(&b, "  storm %-8s checkout: %s\n", sd.name, outcomes(sd.r.Storm.Checkout))
		fmt.Fprintf(&b, "  storm %-8s checkout_attempts rows: %d before, %d after, +%d; answered %d\n", sd.name,
			*sd.r.Storm.AttemptsBefore, *sd.r.Storm.AttemptsAfter, *sd.r.Storm.AttemptsAfter-*sd.r.Storm.AttemptsBefore,
			sd.r.Storm.Checkout.Stored)
		for _, e := range []*EndpointReport{&sd.r.Herd.Checkout, sd.r.Herd.Purchase, &sd.r.Storm.Checkout} {
			if e != nil {
				for _, m := range e.ErrorSamples {
					fmt.Fprintf(&b, "  %s error sample: %s\n", sd.name, m)
				}
			}
		}
	}

	b.WriteString("\nresources (CPU seconds over the phase; postgres = every local postgres process; WAL = pg_stat_wal, cluster wide):\n")
	if s.Server != nil {
		fmt.Fprintf(&b, "  server pid %d: peak RSS (VmHWM) %.1f MiB, CPU %.2f s since start\n",
			s.Server.PID, float64(s.Server.PeakRSSBytes)/(1<<20), s.Server.CPUTotalS)
	} else {
		b.WriteString("  server: pid unknown (give -server-pid), no RSS or CPU\n")
	}
	cpu := func(name string, p PhaseReport) {
		c := p.CPU
		srv := "n/a"
		if c.Server != nil {
			srv = fmt.Sprintf("%.2f", *c.Server)
		}
		fmt.Fprintf(&b, "  %-15s wall %6.2f s  server %6s  loadgen %6.2f  postgres %6.2f", name, c.Wall, srv, c.Loadgen, c.Postgres)
		if p.WAL != nil {
			fmt.Fprintf(&b, "  WAL %6.1f MiB (%.0f B/request, %d full-page images)", float64(p.WAL.Bytes)/(1<<20), p.WAL.BytesPerRq, p.WAL.FPI)
		}
		b.WriteString("\n")
	}
	cpu("herd service", s.Herd)
	cpu("storm service", s.Storm)
	if r.Baseline != nil {
		cpu("herd baseline", r.Baseline.Herd)
		cpu("storm baseline", r.Baseline.Storm)
	}

	for _, sd := range sides {
		if sd.r == nil {
			continue
		}
		fmt.Fprintf(&b, "\ninvariants (%s, sale %d):\n", sd.name, sd.r.Sale.ID)
		for _, c := range sd.r.Invariants {
			fmt.Fprintf(&b, "  %s  %s: %s\n", c.verdict(), c.Name, c.Detail)
		}
	}
	b.WriteString("\ntargets (informational):\n")
	for _, t := range r.Targets {
		v := "met"
		if !t.Met {
			v = "MISSED"
		}
		fmt.Fprintf(&b, "  %-6s %-40s %10.3f  want %s", v, t.Name, t.Got, t.Want)
		if t.Note != "" {
			fmt.Fprintf(&b, " (%s)", t.Note)
		}
		b.WriteString("\n")
	}
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "\nresult: %s\n", verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

func outcomes(e EndpointReport) string {
	keys := make([]string, 0, len(e.Outcomes))
	for k := range e.Outcomes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys)+1)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, e.Outcomes[k]))
	}
	if e.TransportErrors > 0 {
		parts = append(parts, fmt.Sprintf("transport errors=%d", e.TransportErrors))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
