package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

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

// TargetResult is one of the performance targets for one
// configuration. Targets are informational: only invariants fail a run.
type TargetResult struct {
	Config string  `json:"config"`
	Name   string  `json:"name"`
	Got    float64 `json:"got"`
	Want   string  `json:"want"`
	Met    bool    `json:"met"`
	Note   string  `json:"note,omitempty"`
}

// The targets, on a 2-core machine.
const (
	targetStormPerS    = 30000
	targetStormP99MS   = 25
	targetRSSMiB       = 150
	targetCeilingRatio = 0.85
	targetWithin       = 0.10 // first window vs rest; storm beside readers vs alone
	targetHerdItemsS   = 1.5  // 10,000 units over 100 items
	targetHerdDefaultS = 6    // 10,000 single-unit items, random picks
	targetUsers        = 20000
	targetConcurrency  = 256
	targetStormClients = 128
	targetUnits        = 10000
	targetItemsFew     = 100
	targetItemsDefault = 10000
	targetReadCurrent  = 16
	targetReadItems    = 4
)

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

// configTargets are the targets that apply to c. A target stated
// for another load (clients, users) is still shown, with a note saying so.
func (r *Report) configTargets(c *ConfigResult) []TargetResult {
	s := c.Service
	var t []TargetResult
	add := func(name string, got float64, want string, met bool, note string) {
		t = append(t, TargetResult{Config: c.Name, Name: name, Got: got, Want: want, Met: met, Note: note})
	}
	stormNote := ""
	if r.Setup.StormConcurrency != targetStormClients {
		stormNote = fmt.Sprintf("measured at %d clients, the target is stated at %d", r.Setup.StormConcurrency, targetStormClients)
	}
	st := s.Storm.Checkout
	add("storm: checkouts/s", st.PerSecond, fmt.Sprintf(">= %d", targetStormPerS), st.PerSecond >= targetStormPerS, stormNote)
	add("storm: p99 ms", st.P99MS, fmt.Sprintf("<= %d", targetStormP99MS), st.P99MS <= targetStormP99MS, stormNote)

	herdWant := 0.0
	switch {
	case c.Units == targetUnits && c.Items == targetItemsFew:
		herdWant = targetHerdItemsS
	case c.Units == targetUnits && c.Items == targetItemsDefault && c.Pick == PickRandom:
		herdWant = targetHerdDefaultS
	}
	if herdWant > 0 {
		wall := -1.0
		if s.Herd.WallS != nil {
			wall = *s.Herd.WallS
		}
		note := ""
		if r.Setup.Users != targetUsers || r.Setup.Concurrency != targetConcurrency {
			note = fmt.Sprintf("measured with %d users, %d clients; the target is stated for %d and %d",
				r.Setup.Users, r.Setup.Concurrency, targetUsers, targetConcurrency)
		}
		add(fmt.Sprintf("herd: wall s to sell %d units", s.Sale.Units-s.Sale.SoldBefore), wall,
			fmt.Sprintf("<= %g", herdWant), wall >= 0 && wall <= herdWant, note)
	}
	if tl := s.Storm.Timeline; tl != nil {
		note := ""
		if time.Duration(tl.WindowS)*time.Second < firstWindow {
			note = fmt.Sprintf("a storm of %s: first %d s", time.Duration(r.Setup.StormDurationS*float64(time.Second)), tl.WindowS)
		}
		add("storm: first 10 s / rest (checkouts/s)", tl.Ratio, fmt.Sprintf("%.2f..%.2f", 1-targetWithin, 1+targetWithin),
			math.Abs(tl.Ratio-1) <= targetWithin, note)
	}
	if s.Server != nil {
		mb := float64(s.Server.PeakRSSBytes) / (1 << 20)
		note := ""
		if len(s.Server.PIDs) > 1 {
			note = fmt.Sprintf("the largest of %d servers", len(s.Server.PIDs))
		}
		add("server peak RSS MiB", mb, fmt.Sprintf("<= %d", targetRSSMiB), mb <= targetRSSMiB, note)
	}
	if cl := c.Ceilings; cl != nil {
		add("storm / combined ceiling", cl.StormRatio, fmt.Sprintf(">= %.2f", targetCeilingRatio), cl.StormRatio >= targetCeilingRatio, "")
		if cl.HerdRatio > 0 || s.Herd.WallS == nil {
			add("herd / combined ceiling (wall)", cl.HerdRatio, fmt.Sprintf(">= %.2f", targetCeilingRatio), cl.HerdRatio >= targetCeilingRatio, "")
		}
	}
	if rd := s.Reads; rd != nil {
		note := ""
		if r.Setup.ReadIntervalS > 0 {
			note = fmt.Sprintf("readers pause %gs between requests", r.Setup.ReadIntervalS)
		}
		if r.Setup.ReadCurrent != targetReadCurrent || r.Setup.ReadItems != targetReadItems {
			note = fmt.Sprintf("measured with %d + %d readers, the target is stated for %d + %d",
				r.Setup.ReadCurrent, r.Setup.ReadItems, targetReadCurrent, targetReadItems)
		}
		add("reads: storm beside readers / alone", rd.Ratio, fmt.Sprintf("%.2f..%.2f", 1-targetWithin, 1+targetWithin),
			math.Abs(rd.Ratio-1) <= targetWithin, note)
		var bad int64
		for _, e := range rd.Readers {
			bad += e.ServerErrors + e.TransportErrors
		}
		add("reads: readers' 5xx and transport errors", float64(bad), "0", bad == 0, "")
	}
	return t
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

// WriteTable prints the report for people: the setup, the HTTP ceiling,
// then per configuration its requests, ceilings, storm timeline, reads
// phase, outcomes, resources and invariants, and last every target.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	su := r.Setup
	fmt.Fprintf(&b, "flashsale bench, %s, %d CPUs, %d server(s), pooler %s\n", r.StartedAt.UTC().Format(time.RFC3339), su.CPUs,
		su.Servers, orNone(su.Pooler))
	fmt.Fprintf(&b, "herd: %d users, %d clients, item pick %s; storm: %d clients for %s", su.Users, su.Concurrency, su.Pick,
		su.StormConcurrency, time.Duration(su.StormDurationS*float64(time.Second)))
	if su.BaselineConns > 0 {
		fmt.Fprintf(&b, "; database ceiling (baseline): the service in-process on a pgxpool of %d conns", su.BaselineConns)
	}
	b.WriteString("\n")
	if su.Spawned {
		b.WriteString("as deployed: each configuration on a fresh database and freshly started servers (the `make run` environment), " +
			"the herd right after /readyz; no ANALYZE, CHECKPOINT or warm-up\n")
	}
	if c := r.HTTPCeiling; c != nil {
		co := c.Storm.Checkout
		fmt.Fprintf(&b, "\nHTTP ceiling (cmd/httpceiling: the server's Echo stack answering 409 sold_out without a database, %d process(es)): "+
			"%.0f checkouts/s, p50 %.2f ms, p99 %.2f ms, %d errors; CPU s: ceiling %s, loadgen %.2f, others %.2f\n",
			c.Processes, co.PerSecond, co.P50MS, co.P99MS, co.TransportErrors+co.ServerErrors, optSeconds(c.Storm.CPU.Server), c.Storm.CPU.Loadgen,
			c.Storm.CPU.Others)
		for _, ch := range c.Checks {
			fmt.Fprintf(&b, "  %s  %s: %s\n", ch.verdict(), ch.Name, ch.Detail)
		}
	}
	for _, c := range r.Configs {
		if err := c.writeTable(&b); err != nil {
			return err
		}
	}

	b.WriteString("\ntargets (informational: only invariants fail a run):\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  \tconfig\ttarget\tgot\twant\t")
	for _, t := range r.Targets {
		v := "met"
		if !t.Met {
			v = "MISSED"
		}
		note := ""
		if t.Note != "" {
			note = "(" + t.Note + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%.3f\t%s\t%s\n", v, t.Config, t.Name, t.Got, t.Want, note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "\nresult: %s (invariants of every configuration)\n", verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

func orNone(s string) string {
	if s == "" {
		return PoolerNone
	}
	return s
}

func optSeconds(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", *v)
}

func (c *ConfigResult) writeTable(b *strings.Builder) error {
	s := c.Service
	fmt.Fprintf(b, "\n== configuration %s: %d units over %d items, per-user limit %d, hold TTL %s, pick %s ==\n",
		c.Name, s.Sale.Units, s.Sale.Items, s.Sale.PerUserLimit, time.Duration(s.Sale.HoldTTLS*float64(time.Second)), c.Pick)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
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
	}{{"service", s}, {"baseline", c.Baseline}}
	for _, sd := range sides {
		if sd.r != nil {
			row("herd", sd.name, "checkout", &sd.r.Herd.Checkout)
			row("herd", sd.name, "purchase", sd.r.Herd.Purchase)
		}
	}
	for _, sd := range sides {
		if sd.r != nil {
			row("storm", sd.name, "checkout", &sd.r.Storm.Checkout)
			row("storm", sd.name, "others", sd.r.Storm.Others)
		}
	}
	if rd := s.Reads; rd != nil {
		row("storm+reads", "service", "checkout", &rd.Storm.Checkout)
		for _, e := range rd.Readers {
			row("storm+reads", fmt.Sprintf("%d readers", e.Clients), "GET "+e.Path, &e.EndpointReport)
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
	fmt.Fprintf(b, "herd wall (first request to purchase #%d): service %s", s.Sale.Units-s.Sale.SoldBefore, wall(s.Herd))
	if c.Baseline != nil {
		fmt.Fprintf(b, ", baseline %s", wall(c.Baseline.Herd))
	}
	b.WriteString("\n")
	for _, sd := range sides {
		if sd.r == nil || sd.r.Storm.Timeline == nil {
			continue
		}
		tl := sd.r.Storm.Timeline
		fmt.Fprintf(b, "storm %-8s per second: first %d s %.0f/s, rest %.0f/s, first/rest %.2f; by second: %v\n",
			sd.name, tl.WindowS, tl.FirstPerSecond, tl.RestPerSecond, tl.Ratio, tl.Counts)
	}
	if cl := c.Ceilings; cl != nil {
		fmt.Fprintf(b, "ceilings, storm: HTTP %.0f/s, database %.0f/s, combined 1/(1/http+1/db) %.0f/s; service %.0f/s = %.2f of combined\n",
			cl.HTTPCheckoutsPerS, cl.DBCheckoutsPerS, cl.CombinedCheckoutsPerS, s.Storm.Checkout.PerSecond, cl.StormRatio)
		if cl.CombinedHerdWallS > 0 {
			fmt.Fprintf(b, "ceilings, herd: database %.3f s + %d requests at the HTTP ceiling %.3f s = combined %.3f s; service %s, combined/service %.2f\n",
				cl.DBHerdWallS, cl.HerdRequests, cl.HTTPHerdS, cl.CombinedHerdWallS, wall(s.Herd), cl.HerdRatio)
		}
	}
	if c.Ratios != nil {
		fmt.Fprintf(b, "service / baseline: herd %.2f (wall), %.2f (requests/s); storm %.2f (checkouts/s)\n",
			c.Ratios.HerdWall, c.Ratios.HerdRequests, c.Ratios.Storm)
	}
	if rd := s.Reads; rd != nil {
		fmt.Fprintf(b, "reads: storm alone (steady) %.0f checkouts/s, beside the readers %.0f/s, ratio %.2f; the readers opened %d connections\n",
			rd.AlonePerSecond, rd.WithPerSecond, rd.Ratio, rd.ReaderConns)
	}

	b.WriteString("\noutcomes:\n")
	for _, sd := range sides {
		if sd.r == nil {
			continue
		}
		fmt.Fprintf(b, "  herd  %-8s checkout: %s\n", sd.name, outcomes(sd.r.Herd.Checkout))
		if sd.r.Herd.Purchase != nil {
			fmt.Fprintf(b, "  herd  %-8s purchase: %s\n", sd.name, outcomes(*sd.r.Herd.Purchase))
		}
		storms := []struct {
			name string
			p    *PhaseReport
		}{{"storm", &sd.r.Storm}}
		if sd.r.Reads != nil {
			storms = append(storms, struct {
				name string
				p    *PhaseReport
			}{"storm+reads", &sd.r.Reads.Storm})
		}
		for _, st := range storms {
			fmt.Fprintf(b, "  %s %-8s checkout: %s\n", st.name, sd.name, outcomes(st.p.Checkout))
			if st.p.AttemptsBefore != nil && st.p.AttemptsAfter != nil {
				fmt.Fprintf(b, "  %s %-8s checkout_attempts rows: %d before, %d after, +%d; answered %d\n", st.name, sd.name,
					*st.p.AttemptsBefore, *st.p.AttemptsAfter, *st.p.AttemptsAfter-*st.p.AttemptsBefore, st.p.Checkout.Stored)
			}
		}
		if sd.r.Reads != nil {
			for _, e := range sd.r.Reads.Readers {
				fmt.Fprintf(b, "  storm+reads GET %s: %s\n", e.Path, outcomes(e.EndpointReport))
			}
		}
		eps := []*EndpointReport{&sd.r.Herd.Checkout, sd.r.Herd.Purchase, &sd.r.Storm.Checkout}
		if sd.r.Reads != nil {
			eps = append(eps, &sd.r.Reads.Storm.Checkout)
			for i := range sd.r.Reads.Readers {
				eps = append(eps, &sd.r.Reads.Readers[i].EndpointReport)
			}
		}
		for _, e := range eps {
			if e != nil {
				for _, m := range e.ErrorSamples {
					fmt.Fprintf(b, "  %s error sample: %s\n", sd.name, m)
				}
			}
		}
	}

	b.WriteString("\nresources (CPU seconds over the phase; postgres = this database's backends and the cluster's shared processes; " +
		"others = the rest of the machine's busy time: load that is not this run's; WAL = pg_stat_wal, cluster wide):\n")
	if s.Server != nil {
		fmt.Fprintf(b, "  server pids %v: peak RSS (VmHWM, largest) %.1f MiB, CPU %.2f s since start\n",
			s.Server.PIDs, float64(s.Server.PeakRSSBytes)/(1<<20), s.Server.CPUTotalS)
	} else {
		b.WriteString("  server: pid unknown (give -server-pid), no RSS or CPU\n")
	}
	cpu := func(name string, p PhaseReport) {
		cu := p.CPU
		fmt.Fprintf(b, "  %-20s wall %6.2f s  server %6s  loadgen %6.2f  postgres %6.2f", name, cu.Wall, optSeconds(cu.Server), cu.Loadgen, cu.Postgres)
		if cu.Pooler != nil {
			fmt.Fprintf(b, "  pgbouncer %6.2f", *cu.Pooler)
		}
		fmt.Fprintf(b, "  others %6.2f", cu.Others)
		if p.WAL != nil {
			fmt.Fprintf(b, "  WAL %6.1f MiB (%.0f B/request, %d full-page images)", float64(p.WAL.Bytes)/(1<<20), p.WAL.BytesPerRq, p.WAL.FPI)
		}
		b.WriteString("\n")
	}
	cpu("herd service", s.Herd)
	cpu("storm service", s.Storm)
	if s.Reads != nil {
		cpu("storm+reads service", s.Reads.Storm)
	}
	if c.Baseline != nil {
		cpu("herd baseline", c.Baseline.Herd)
		cpu("storm baseline", c.Baseline.Storm)
	}
	for _, p := range c.ServerLogs {
		if p != "" {
			fmt.Fprintf(b, "  server log: %s\n", p)
		}
	}

	for _, sd := range sides {
		if sd.r == nil {
			continue
		}
		fmt.Fprintf(b, "\ninvariants (%s %s, sale %d):\n", c.Name, sd.name, sd.r.Sale.ID)
		for _, ch := range sd.r.Invariants {
			fmt.Fprintf(b, "  %s  %s: %s\n", ch.verdict(), ch.Name, ch.Detail)
		}
	}
	return nil
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
