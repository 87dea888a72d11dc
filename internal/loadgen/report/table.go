package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

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
	if su.Webhooks {
		b.WriteString("webhooks on: every server POSTs its events to loadgen's receiver (WEBHOOK_URL, WEBHOOK_SECRET), " +
			"which checks each signature and answers 204 at once\n")
	}
	if c := r.HTTPCeiling; c != nil {
		co := c.Storm.Checkout
		fmt.Fprintf(&b, "\nHTTP ceiling (cmd/httpceiling: the server's Echo stack answering 409 sold_out without a database, %d process(es)): "+
			"%.0f checkouts/s, p50 %.2f ms, p99 %.2f ms, %d errors; CPU s: ceiling %s, loadgen %.2f, others %.2f\n",
			c.Processes, co.PerSecond, co.P50MS, co.P99MS, co.TransportErrors+co.ServerErrors, optSeconds(c.Storm.CPU.Server), c.Storm.CPU.Loadgen,
			c.Storm.CPU.Others)
		for _, ch := range c.Checks {
			fmt.Fprintf(&b, "  %s  %s: %s\n", ch.Verdict(), ch.Name, ch.Detail)
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

// orNone names the pooler; a run against running servers does not know
// theirs ("").
func orNone(s string) string {
	if s == "" {
		return "none"
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

	if wh := s.Webhooks; wh != nil {
		wh.writeTable(b)
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
			fmt.Fprintf(b, "  %s  %s: %s\n", ch.Verdict(), ch.Name, ch.Detail)
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

func (wh *WebhookReport) writeTable(b *strings.Builder) {
	types := make([]string, 0, len(wh.ByType))
	for k := range wh.ByType {
		types = append(types, k)
	}
	slices.Sort(types)
	for i, k := range types {
		types[i] = fmt.Sprintf("%s=%d", k, wh.ByType[k])
	}
	fmt.Fprintf(b, "webhooks: %d requests, %d accepted, %d distinct events (%s), %d duplicates, %d bad signatures, %d malformed\n",
		wh.Requests, wh.Accepted, wh.Distinct, strings.Join(types, ", "), wh.Duplicates, wh.BadSignatures, wh.Malformed)
	drain := "no purchase event arrived"
	if d := wh.DrainS; d != nil {
		drain = fmt.Sprintf("the last new purchase event arrived %.3f s after the herd's last answer", *d)
		if *d < 0 {
			drain = fmt.Sprintf("the last new purchase event arrived %.3f s before the herd's last answer", -*d)
		}
	}
	wait := fmt.Sprintf("loadgen waited %.2f s for them after the last phase", wh.WaitS)
	if wh.TimedOut {
		wait = fmt.Sprintf("loadgen gave up waiting for the missing ones after %.2f s", wh.WaitS)
	}
	fmt.Fprintf(b, "webhooks: purchases in the database %d, purchases named by purchase.completed events %d (missing %d); %s; %s\n",
		wh.PurchasesInDB, wh.PurchaseEvents, wh.Missing, drain, wait)
}
