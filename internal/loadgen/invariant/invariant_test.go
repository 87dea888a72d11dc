package invariant_test

import (
	"testing"

	"github.com/flashsale/flashsale/internal/loadgen/invariant"
	"github.com/flashsale/flashsale/internal/loadgen/phase"
	"github.com/flashsale/flashsale/internal/loadgen/report"
)

// TestChecksFailOnMismatch feeds the checks states that break each
// invariant: every one must FAIL the report.
func TestChecksFailOnMismatch(t *testing.T) {
	t.Parallel()
	st := invariant.Sale{UnitsTotal: 10, PerUserLimit: 2, UnitsSold: 10, Purchases: 10, DistinctUnits: 10, DistinctCodes: 10, MaxPerUser: 2}
	herd := &phase.Run{Purchases: 10, DistinctIDs: 10}
	ok := invariant.Checks(st, invariant.Seen{Herd: herd, AttemptsStored: 30, AttemptsAnswer: 30,
		Storms: []invariant.Storm{{Name: "storm", Stored: 20, Answered: 20}}})
	for _, c := range ok {
		if !c.Pass {
			t.Fatalf("%s: %s", c.Name, c.Detail)
		}
	}
	bad := []struct {
		name string
		st   invariant.Sale
		in   invariant.Seen
	}{
		{"units sold", func() invariant.Sale { s := st; s.UnitsSold = 9; return s }(), invariant.Seen{Herd: herd}},
		{"cap", func() invariant.Sale { s := st; s.MaxPerUser = 3; return s }(), invariant.Seen{Herd: herd}},
		{"held over cap", func() invariant.Sale { s := st; s.UsersAboveCap = 1; return s }(), invariant.Seen{Herd: herd}},
		{"sold twice", func() invariant.Sale { s := st; s.DistinctUnits = 9; return s }(), invariant.Seen{Herd: herd}},
		{"client saw fewer", st, invariant.Seen{Herd: &phase.Run{Purchases: 10, DistinctIDs: 9}}},
		{"attempts", st, invariant.Seen{Herd: herd, AttemptsStored: 31, AttemptsAnswer: 30}},
		{"storm attempts", st, invariant.Seen{Herd: herd, Storms: []invariant.Storm{{Name: "storm", Stored: 5, Answered: 20}}}},
	}
	for _, b := range bad {
		failed := false
		for _, c := range invariant.Checks(b.st, b.in) {
			failed = failed || !c.Pass
		}
		if !failed {
			t.Errorf("%s: every invariant passed", b.name)
		}
		rep := &report.Report{Configs: []*report.ConfigResult{{Service: &report.SideResult{Invariants: invariant.Checks(b.st, b.in)}}}}
		rep.Finish()
		if rep.Pass {
			t.Errorf("%s: report passes", b.name)
		}
	}
}
