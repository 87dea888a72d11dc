package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testdb"
	"github.com/flashsale/flashsale/internal/testserver"
)

// smokeOptions is a run of a few seconds: a sale of a few hundred units.
func smokeOptions(t *testing.T) Options {
	return Options{
		Users: 200, Concurrency: 16, StormConcurrency: 8, StormDuration: 700 * time.Millisecond,
		HerdTimeout: time.Minute, RequestTimeout: 10 * time.Second,
		Baseline: true, BaselineConns: 4, Analyze: true,
		NewBaselineDB: func(context.Context) (string, func(context.Context) error, error) {
			return testdb.New(t), func(context.Context) error { return nil }, nil // testdb drops it
		},
	}
}

func smokeSettings() *sale.Settings {
	return &sale.Settings{
		Duration: SafeSaleDuration(time.Now(), 5*time.Minute), Units: 300, Items: 30, PerUserLimit: 10, HoldTTL: 10 * time.Minute,
	}
}

// TestSmoke runs herd, storm, baseline and the invariant checks against the
// real API on a small sale: every invariant must PASS.
func TestSmoke(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, testserver.Options{Settings: smokeSettings()})
	ctx := context.Background()
	opts := smokeOptions(t)

	svc, err := RunService(ctx, opts, Target{URL: srv.URL, DBURL: srv.DBURL})
	if err != nil {
		t.Fatal(err)
	}
	base, err := RunBaseline(ctx, opts, svc.Sale)
	if err != nil {
		t.Fatal(err)
	}
	rep := &Report{StartedAt: time.Now(), Service: svc, Baseline: base}
	rep.Finish()
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + table.String())
	if !rep.Pass {
		t.Fatalf("invariants failed:\n%s", table.String())
	}
	for _, side := range []*SideResult{svc, base} {
		if len(side.Invariants) < 4 {
			t.Fatalf("only %d invariants checked", len(side.Invariants))
		}
		h := side.Herd
		if h.Purchases != 300 || h.WallS == nil || h.TimedOut {
			t.Fatalf("herd: %d purchases, wall %v, timed out %v", h.Purchases, h.WallS, h.TimedOut)
		}
		if h.Checkout.TransportErrors != 0 || h.Checkout.ServerErrors != 0 || h.Purchase.TransportErrors != 0 {
			t.Fatalf("herd errors: checkout %+v purchase %+v", h.Checkout, *h.Purchase)
		}
		st := side.Storm.Checkout
		if st.Requests == 0 || st.Requests != st.Outcomes["409 sold_out"]+st.Outcomes["sold_out"] {
			t.Fatalf("storm: %d requests, outcomes %v", st.Requests, st.Outcomes)
		}
		if *side.Storm.AttemptsAfter-*side.Storm.AttemptsBefore != st.Requests {
			t.Fatalf("storm: attempts %d -> %d for %d requests", *side.Storm.AttemptsBefore, *side.Storm.AttemptsAfter, st.Requests)
		}
		if st.P50MS <= 0 || st.P99MS < st.P50MS || st.MaxMS < st.P99MS {
			t.Fatalf("storm latencies: %+v", st)
		}
	}
	if rep.Ratios == nil || rep.Ratios.Storm <= 0 || rep.Ratios.HerdWall <= 0 {
		t.Fatalf("ratios: %+v", rep.Ratios)
	}

	path := filepath.Join(t.TempDir(), "r", "latest.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	var back Report
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &back); err != nil || !back.Pass || back.Service.Herd.Purchases != 300 {
		t.Fatalf("JSON report: %v, %s", err, b)
	}
}

// TestInvariantsFailOnMismatch feeds the checks states that break each
// invariant: every one must FAIL the report.
func TestInvariantsFailOnMismatch(t *testing.T) {
	t.Parallel()
	st := saleState{unitsTotal: 10, perUserLimit: 2, unitsSold: 10, purchases: 10, distinctUnits: 10, distinctCodes: 10, maxPerUser: 2}
	herd := &phaseRun{purchases: 10, distinctIDs: 10}
	ok := checkInvariants(st, invariantInput{herd: herd, attemptsStored: 30, attemptsAnswer: 30})
	for _, c := range ok {
		if !c.Pass {
			t.Fatalf("%s: %s", c.Name, c.Detail)
		}
	}
	bad := []struct {
		name string
		st   saleState
		in   invariantInput
	}{
		{"units sold", func() saleState { s := st; s.unitsSold = 9; return s }(), invariantInput{herd: herd}},
		{"cap", func() saleState { s := st; s.maxPerUser = 3; return s }(), invariantInput{herd: herd}},
		{"held over cap", func() saleState { s := st; s.usersAboveCap = 1; return s }(), invariantInput{herd: herd}},
		{"sold twice", func() saleState { s := st; s.distinctUnits = 9; return s }(), invariantInput{herd: herd}},
		{"client saw fewer", st, invariantInput{herd: &phaseRun{purchases: 10, distinctIDs: 9}}},
		{"attempts", st, invariantInput{herd: herd, attemptsStored: 31, attemptsAnswer: 30}},
	}
	for _, b := range bad {
		failed := false
		for _, c := range checkInvariants(b.st, b.in) {
			failed = failed || !c.Pass
		}
		if !failed {
			t.Errorf("%s: every invariant passed", b.name)
		}
		rep := &Report{Service: &SideResult{Invariants: checkInvariants(b.st, b.in)}}
		rep.Finish()
		if rep.Pass {
			t.Errorf("%s: report passes", b.name)
		}
	}
}

// TestBenchSpawn runs the whole of Bench the way `make bench` does, with a
// server binary built here, on a tiny sale.
func TestBenchSpawn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server binary")
	}
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "server")
	build := exec.Command("go", "build", "-o", bin, "./cmd/server")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/server: %v\n%s", err, out)
	}
	opts := smokeOptions(t)
	opts.StormDuration = 300 * time.Millisecond
	var log bytes.Buffer
	opts.Log = &log
	rep, err := Bench(context.Background(), BenchConfig{
		Options:  opts,
		AdminURL: testdb.AdminURL(),
		Spawn: SpawnConfig{
			ServerBin: bin, Units: 200, Items: 20,
			LogPath: filepath.Join(t.TempDir(), "server.log"), ReadyTimeout: time.Minute,
		},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	var table bytes.Buffer
	_ = rep.WriteTable(&table)
	if !rep.Pass || rep.Service.Server == nil || rep.Service.Server.PeakRSSBytes <= 0 || rep.Service.Herd.CPU.Server == nil {
		t.Fatalf("report:\n%s\n%s", table.String(), log.String())
	}
	if !strings.Contains(table.String(), "PASS") || strings.Contains(table.String(), "FAIL") {
		t.Fatalf("table:\n%s", table.String())
	}
	// The server is stopped and its database dropped.
	if !strings.Contains(log.String(), "stopping the server") {
		t.Fatalf("log:\n%s", log.String())
	}
}

func TestHistogram(t *testing.T) {
	t.Parallel()
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.95, 950 * time.Millisecond}, {0.99, 990 * time.Millisecond}} {
		got := h.Quantile(c.q)
		if d := got - c.want; d < -c.want/25 || d > c.want/25 {
			t.Errorf("q%.2f = %v, want %v ±4%%", c.q, got, c.want)
		}
	}
	if h.Max() != time.Second || h.Quantile(1) != time.Second || h.Count() != 1000 {
		t.Errorf("max %v, q1 %v, count %d", h.Max(), h.Quantile(1), h.Count())
	}
	var small Histogram
	small.Record(3 * time.Microsecond)
	if small.Quantile(0.5) != 3*time.Microsecond {
		t.Errorf("small: %v", small.Quantile(0.5))
	}
	var m Histogram
	m.Merge(&h)
	m.Merge(&small)
	if m.Count() != 1001 || m.Max() != time.Second {
		t.Errorf("merged: %d %v", m.Count(), m.Max())
	}
	for v := uint64(0); v < 1<<20; v = v*2 + 1 {
		lo, w := bucketRange(bucketOf(v))
		if v < lo || v >= lo+w {
			t.Fatalf("value %d in bucket [%d, %d)", v, lo, lo+w)
		}
	}
}

func TestParsers(t *testing.T) {
	t.Parallel()
	body := []byte(`{"code":"abc_-XYZ","sale_id":3,"item":{"id":7}}`)
	if got := string(jsonString(body, `"code":"`)); got != "abc_-XYZ" {
		t.Errorf("jsonString: %q", got)
	}
	if got := jsonInt([]byte(`{"purchase_id":12345,"sale_id":1}`), `"purchase_id":`); got != 12345 {
		t.Errorf("jsonInt: %d", got)
	}
	if got := intern([]byte("sold_out")); got != "sold_out" {
		t.Errorf("intern: %q", got)
	}
	stat := []byte("1234 (my (odd) proc) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 1 0")
	if d, err := parseStatCPU(stat); err != nil || d != 4*time.Second {
		t.Errorf("parseStatCPU: %v %v", d, err)
	}
	if b, err := parseStatusKB([]byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t 1 kB\n"), "VmHWM:"); err != nil || b != 2<<20 {
		t.Errorf("parseStatusKB: %d %v", b, err)
	}
	now := time.Date(2026, 5, 1, 13, 55, 0, 0, time.UTC)
	if d := SafeSaleDuration(now, 10*time.Minute); d != 3*time.Hour { // 1h and 2h end at 14:00
		t.Errorf("SafeSaleDuration: %v", d)
	}
	if d := SafeSaleDuration(now.Add(-30*time.Minute), 10*time.Minute); d != time.Hour {
		t.Errorf("SafeSaleDuration: %v", d)
	}
}
