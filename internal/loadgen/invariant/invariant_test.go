package invariant_test

import (
	"testing"

	"github.com/flashsale/flashsale/internal/loadgen/invariant"
	"github.com/flashsale/flashsale/internal/loadgen/phase"
	"github.com/flashsale/flashsale/internal/loadgen/report"
	"github.com/flashsale/flashsale/internal/loadgen/webhook"
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

// TestWebhookCheck holds receivers' stats against a database of purchases
// 1..3 of sale 7 and 4 of sale 8: every way of losing, inventing or
// misfiling a purchase event, or of a bad delivery, FAILs the check.
func TestWebhookCheck(t *testing.T) {
	t.Parallel()
	db := map[int64]int64{1: 7, 2: 7, 3: 7, 4: 8}
	got := func(purchases map[int64]int64, edit func(*webhook.Stats)) invariant.Deliveries {
		st := webhook.Stats{Purchases: purchases}
		if edit != nil {
			edit(&st)
		}
		return invariant.CompareDeliveries(7, db, st)
	}
	all := map[int64]int64{1: 7, 2: 7, 3: 7}
	ok := got(all, nil)
	if c := invariant.WebhookCheck(ok); !c.Pass || ok.PurchasesInDB != 3 || ok.PurchaseEvents != 3 {
		t.Fatalf("%+v: %s", ok, c.Detail)
	}
	// Another sale's purchase, delivered with its own sale, is no fault.
	if c := invariant.WebhookCheck(got(map[int64]int64{1: 7, 2: 7, 3: 7, 4: 8}, nil)); !c.Pass {
		t.Fatalf("sale 8's purchase: %s", c.Detail)
	}
	bad := []struct {
		name string
		d    invariant.Deliveries
		want invariant.Deliveries
	}{
		{"one lost", got(map[int64]int64{1: 7, 3: 7}, nil), invariant.Deliveries{PurchasesInDB: 3, PurchaseEvents: 2, Missing: 1}},
		{"one invented", got(map[int64]int64{1: 7, 2: 7, 3: 7, 9: 7}, nil), invariant.Deliveries{PurchasesInDB: 3, PurchaseEvents: 4, Unknown: 1}},
		{"wrong sale", got(map[int64]int64{1: 7, 2: 7, 3: 8}, nil), invariant.Deliveries{PurchasesInDB: 3, PurchaseEvents: 3, OtherSale: 1}},
		{"two events for one purchase", got(all, func(s *webhook.Stats) { s.RepeatedPurchases = 1 }),
			invariant.Deliveries{PurchasesInDB: 3, PurchaseEvents: 3, Repeated: 1}},
		{"bad signature", got(all, func(s *webhook.Stats) { s.BadSignatures = 2 }),
			invariant.Deliveries{PurchasesInDB: 3, PurchaseEvents: 3, BadSignatures: 2}},
		{"malformed", got(all, func(s *webhook.Stats) { s.Malformed = 1 }),
			invariant.Deliveries{PurchasesInDB: 3, PurchaseEvents: 3, Malformed: 1}},
	}
	for _, b := range bad {
		if b.d != b.want {
			t.Errorf("%s: %+v, want %+v", b.name, b.d, b.want)
		}
		c := invariant.WebhookCheck(b.d)
		rep := &report.Report{Configs: []*report.ConfigResult{{Service: &report.SideResult{Invariants: []invariant.Check{c}}}}}
		rep.Finish()
		if c.Pass || rep.Pass {
			t.Errorf("%s: passes: %s", b.name, c.Detail)
		}
	}
}
