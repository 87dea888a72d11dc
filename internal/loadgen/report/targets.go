package report

import (
	"fmt"
	"math"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen/phase"
)

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
	case c.Units == targetUnits && c.Items == targetItemsDefault && c.Pick == phase.PickRandom:
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
		if time.Duration(tl.WindowS)*time.Second < FirstWindow {
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
