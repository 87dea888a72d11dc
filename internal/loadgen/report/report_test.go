package report

import (
	"math"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen/invariant"
	"github.com/flashsale/flashsale/internal/loadgen/phase"
	"github.com/flashsale/flashsale/internal/loadgen/usage"
)

// TestCeilingsAndTargets: the combined ceiling, the storm's timeline and
// the targets, from numbers worked out by hand.
func TestCeilingsAndTargets(t *testing.T) {
	t.Parallel()
	wall := func(s float64) *float64 { return &s }
	purchases := EndpointReport{Requests: 10000}
	svc := &SideResult{
		Sale:   SaleInfo{Units: 10000, Items: 100, PerUserLimit: 10},
		Herd:   PhaseReport{WallS: wall(4), Checkout: EndpointReport{Requests: 12000}, Purchase: &purchases},
		Storm:  PhaseReport{Checkout: EndpointReport{PerSecond: 18000, P99MS: 30}},
		Server: &usage.Server{PIDs: []int{1}, PeakRSSBytes: 100 << 20},
		Reads:  &ReadsReport{Ratio: 0.85, Readers: []ReadReport{{Path: phase.ReadItemsPath, EndpointReport: EndpointReport{ServerErrors: 3}}}},
	}
	base := &SideResult{
		Herd:  PhaseReport{WallS: wall(2), Checkout: EndpointReport{Requests: 30000}, Purchase: &purchases},
		Storm: PhaseReport{Checkout: EndpointReport{PerSecond: 40000}},
	}
	// 20 s storm: 10 s at 900/s, then 10 s at 1,000/s, and a tail.
	st := &phase.Run{Elapsed: 20 * time.Second}
	for i := range 20 {
		n := int64(1000)
		if i < 10 {
			n = 900
		}
		st.PerSecond = append(st.PerSecond, n)
	}
	svc.Storm.Timeline = NewTimeline(st)
	if tl := svc.Storm.Timeline; tl.WindowS != 10 || tl.FirstPerSecond != 900 || tl.RestPerSecond != 1000 || tl.Ratio != 0.9 {
		t.Fatalf("timeline: %+v", tl)
	}
	if tl := NewTimeline(&phase.Run{Elapsed: 1500 * time.Millisecond, PerSecond: []int64{5, 3}}); tl != nil {
		t.Fatalf("timeline of a 1.5 s storm: %+v", tl)
	}
	if tl := NewTimeline(&phase.Run{Elapsed: 4 * time.Second, PerSecond: []int64{10, 10, 20, 20}}); tl.WindowS != 2 || tl.Ratio != 0.5 {
		t.Fatalf("timeline of a 4 s storm: %+v", tl)
	}

	http := &CeilingRun{Storm: PhaseReport{Checkout: EndpointReport{PerSecond: 40000}}}
	rep := &Report{
		Setup:       Setup{Users: 20000, Concurrency: 256, StormConcurrency: 128, ReadCurrent: 16, ReadItems: 4, StormDurationS: 20},
		HTTPCeiling: http,
		Configs:     []*ConfigResult{{Name: "10000x100", Units: 10000, Items: 100, Pick: phase.PickRandom, Service: svc, Baseline: base}},
	}
	rep.Finish()
	cl := rep.Configs[0].Ceilings
	// storm: 1/(1/40k + 1/40k) = 20k; 18k / 20k = 0.9. herd: 2 s + 40,000
	// requests at 40k/s = 3 s; 3 s / 4 s = 0.75.
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }
	if cl == nil || !near(cl.CombinedCheckoutsPerS, 20000) || !near(cl.StormRatio, 0.9) || cl.HerdRequests != 40000 ||
		!near(cl.CombinedHerdWallS, 3) || !near(cl.HerdRatio, 0.75) {
		t.Fatalf("ceilings: %+v", cl)
	}
	want := map[string]bool{
		"storm: checkouts/s":                       false,
		"storm: p99 ms":                            false,
		"herd: wall s to sell 10000 units":         false, // 4 s > 1.5 s
		"storm: first 10 s / rest (checkouts/s)":   true,  // 0.9: at the edge
		"server peak RSS MiB":                      true,
		"storm / combined ceiling":                 true,
		"herd / combined ceiling (wall)":           false,
		"reads: storm beside readers / alone":      false,
		"reads: readers' 5xx and transport errors": false,
	}
	if len(rep.Targets) != len(want) {
		t.Fatalf("%d targets, want %d: %+v", len(rep.Targets), len(want), rep.Targets)
	}
	for _, tr := range rep.Targets {
		if met, ok := want[tr.Name]; !ok || met != tr.Met || tr.Config != "10000x100" {
			t.Errorf("target %+v: want met=%v (known: %v)", tr, met, ok)
		}
	}
	// Targets inform; the verdict is the invariants'.
	if !rep.Pass {
		t.Fatal("report fails without a failed invariant")
	}
	http.Checks = []invariant.Check{{Name: "sold out", Pass: false}}
	rep.Finish()
	if rep.Pass {
		t.Fatal("report passes with a failed HTTP ceiling check")
	}
}
