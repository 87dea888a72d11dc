package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
)

// smokeOptions is a run of a few seconds: a sale of a few hundred units.
func smokeOptions(t *testing.T) Options {
	return Options{
		Users: 200, Concurrency: 16, StormConcurrency: 8, StormDuration: 700 * time.Millisecond,
		HerdTimeout: time.Minute, RequestTimeout: 10 * time.Second,
		Baseline: true, BaselineConns: 4,
		NewBaselineDB: func(context.Context) (string, func(context.Context) error, error) {
			return pgtest.New(t), func(context.Context) error { return nil }, nil // testdb drops it
		},
	}
}

func smokeSettings() *sale.Settings {
	return &sale.Settings{
		Duration: SafeSaleDuration(time.Now(), 5*time.Minute), Units: 300, Items: 30, PerUserLimit: 10, HoldTTL: 10 * time.Minute,
	}
}

// TestSmoke runs herd, storm, the reads phase, baseline and the invariant
// checks against the real API on a small sale: every invariant must PASS.
func TestSmoke(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{Settings: smokeSettings()})
	ctx := context.Background()
	opts := smokeOptions(t)
	opts.Reads, opts.ReadCurrent, opts.ReadItems = true, 2, 1

	svc, err := RunService(ctx, opts, Target{URLs: []string{srv.URL}, DBURL: srv.DBURL})
	if err != nil {
		t.Fatal(err)
	}
	base, err := RunBaseline(ctx, opts, svc.Sale)
	if err != nil {
		t.Fatal(err)
	}
	rep := &Report{StartedAt: time.Now(), Configs: []*ConfigResult{{Name: "300x30", Units: 300, Items: 30, Pick: PickRandom,
		Service: svc, Baseline: base}}}
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
		if len(side.Invariants) < 5 {
			t.Fatalf("only %d invariants checked", len(side.Invariants))
		}
		h := side.Herd
		if h.Purchases != 300 || h.WallS == nil || h.TimedOut {
			t.Fatalf("herd: %d purchases, wall %v, timed out %v", h.Purchases, h.WallS, h.TimedOut)
		}
		if h.Checkout.TransportErrors != 0 || h.Checkout.ServerErrors != 0 || h.Purchase.TransportErrors != 0 {
			t.Fatalf("herd errors: checkout %+v purchase %+v", h.Checkout, *h.Purchase)
		}
		storms := []PhaseReport{side.Storm}
		if side.Reads != nil {
			storms = append(storms, side.Reads.Storm)
		}
		for _, sp := range storms {
			st := sp.Checkout
			if st.Requests == 0 || st.Requests != st.Outcomes["409 sold_out"]+st.Outcomes["sold_out"] {
				t.Fatalf("storm: %d requests, outcomes %v", st.Requests, st.Outcomes)
			}
			if *sp.AttemptsAfter-*sp.AttemptsBefore != st.Requests {
				t.Fatalf("storm: attempts %d -> %d for %d requests", *sp.AttemptsBefore, *sp.AttemptsAfter, st.Requests)
			}
			if st.P50MS <= 0 || st.P99MS < st.P50MS || st.MaxMS < st.P99MS {
				t.Fatalf("storm latencies: %+v", st)
			}
			// Every checkout is stored by this database's backends.
			if c := sp.CPU; c.Postgres <= 0 || c.MachineBusy < c.Postgres || c.Others < 0 {
				t.Fatalf("storm CPU: %+v", c)
			}
		}
	}
	if base.Reads != nil {
		t.Fatal("the baseline ran a reads phase")
	}
	// The reads phase: both endpoints read, every answer a 200.
	rd := svc.Reads
	if rd == nil || len(rd.Readers) != 2 || rd.WithPerSecond <= 0 || rd.AlonePerSecond <= 0 || rd.Ratio <= 0 ||
		rd.ReaderConns != 3 { // keep-alive: one connection per reader
		t.Fatalf("reads: %+v", rd)
	}
	for _, e := range rd.Readers {
		if e.Requests == 0 || e.Outcomes["200 ok"] != e.Requests || e.P50MS <= 0 {
			t.Fatalf("reads %s: %+v", e.Path, e.EndpointReport)
		}
	}
	c := rep.Configs[0]
	if c.Ratios == nil || c.Ratios.Storm <= 0 || c.Ratios.HerdWall <= 0 || c.Ceilings != nil {
		t.Fatalf("ratios %+v, ceilings %+v (no HTTP ceiling was run)", c.Ratios, c.Ceilings)
	}
	if !strings.Contains(table.String(), "reads: storm beside readers / alone") {
		t.Fatalf("no reads target:\n%s", table.String())
	}

	path := filepath.Join(t.TempDir(), "r", "latest.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	var back Report
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &back); err != nil || !back.Pass || back.Configs[0].Service.Herd.Purchases != 300 ||
		back.Configs[0].Service.Reads == nil {
		t.Fatalf("JSON report: %v, %s", err, b)
	}
}

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
		Server: &ServerUsage{PIDs: []int{1}, PeakRSSBytes: 100 << 20},
		Reads:  &ReadsReport{Ratio: 0.85, Readers: []ReadReport{{Path: readItemsPath, EndpointReport: EndpointReport{ServerErrors: 3}}}},
	}
	base := &SideResult{
		Herd:  PhaseReport{WallS: wall(2), Checkout: EndpointReport{Requests: 30000}, Purchase: &purchases},
		Storm: PhaseReport{Checkout: EndpointReport{PerSecond: 40000}},
	}
	// 20 s storm: 10 s at 900/s, then 10 s at 1,000/s, and a tail.
	st := &phaseRun{elapsed: 20 * time.Second}
	for i := range 20 {
		n := int64(1000)
		if i < 10 {
			n = 900
		}
		st.perSecond = append(st.perSecond, n)
	}
	svc.Storm.Timeline = timeline(st)
	if tl := svc.Storm.Timeline; tl.WindowS != 10 || tl.FirstPerSecond != 900 || tl.RestPerSecond != 1000 || tl.Ratio != 0.9 {
		t.Fatalf("timeline: %+v", tl)
	}
	if tl := timeline(&phaseRun{elapsed: 1500 * time.Millisecond, perSecond: []int64{5, 3}}); tl != nil {
		t.Fatalf("timeline of a 1.5 s storm: %+v", tl)
	}
	if tl := timeline(&phaseRun{elapsed: 4 * time.Second, perSecond: []int64{10, 10, 20, 20}}); tl.WindowS != 2 || tl.Ratio != 0.5 {
		t.Fatalf("timeline of a 4 s storm: %+v", tl)
	}

	http := &CeilingRun{Storm: PhaseReport{Checkout: EndpointReport{PerSecond: 40000}}}
	rep := &Report{
		Setup:       Setup{Users: 20000, Concurrency: 256, StormConcurrency: 128, ReadCurrent: 16, ReadItems: 4, StormDurationS: 20},
		HTTPCeiling: http,
		Configs:     []*ConfigResult{{Name: "10000x100", Units: 10000, Items: 100, Pick: PickRandom, Service: svc, Baseline: base}},
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
	http.Checks = []Check{{Name: "sold out", Pass: false}}
	rep.Finish()
	if rep.Pass {
		t.Fatal("report passes with a failed HTTP ceiling check")
	}
}

// TestInvariantsFailOnMismatch feeds the checks states that break each
// invariant: every one must FAIL the report.
func TestInvariantsFailOnMismatch(t *testing.T) {
	t.Parallel()
	st := saleState{unitsTotal: 10, perUserLimit: 2, unitsSold: 10, purchases: 10, distinctUnits: 10, distinctCodes: 10, maxPerUser: 2}
	herd := &phaseRun{purchases: 10, distinctIDs: 10}
	ok := checkInvariants(st, invariantInput{herd: herd, attemptsStored: 30, attemptsAnswer: 30,
		storms: []stormCount{{name: "storm", stored: 20, answered: 20}}})
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
		{"storm attempts", st, invariantInput{herd: herd, storms: []stormCount{{name: "storm", stored: 5, answered: 20}}}},
	}
	for _, b := range bad {
		failed := false
		for _, c := range checkInvariants(b.st, b.in) {
			failed = failed || !c.Pass
		}
		if !failed {
			t.Errorf("%s: every invariant passed", b.name)
		}
		rep := &Report{Configs: []*ConfigResult{{Service: &SideResult{Invariants: checkInvariants(b.st, b.in)}}}}
		rep.Finish()
		if rep.Pass {
			t.Errorf("%s: report passes", b.name)
		}
	}
}

// TestBenchSpawn runs the whole of Bench the way `make bench` does, with
// the server and HTTP ceiling binaries built here, on two tiny
// configurations, each with two servers on its database.
func TestBenchSpawn(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, cmd := range []string{"server", "httpceiling"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, cmd), "./cmd/"+cmd)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./cmd/%s: %v\n%s", cmd, err, out)
		}
	}
	opts := smokeOptions(t)
	opts.NewBaselineDB = nil // Bench creates and drops them through AdminURL
	// Enough users that the storms stay under the servers' default rate
	// limit of 10 checkouts/s per user; 2 s storms have a timeline.
	opts.Users, opts.StormDuration = 5000, 2*time.Second
	opts.ReadCurrent, opts.ReadItems = 2, 1
	var log bytes.Buffer
	opts.Log = &log
	logs := filepath.Join(dir, "logs")
	rep, err := Bench(context.Background(), BenchConfig{
		Options:  opts,
		Configs:  []SaleConfig{{Units: 200, Items: 20}, {Units: 100, Items: 100}},
		AdminURL: pgtest.AdminURL(),
		Spawn:    SpawnConfig{ServerBin: filepath.Join(dir, "server"), Servers: 2, LogDir: logs, ReadyTimeout: time.Minute},
		Ceiling:  CeilingConfig{Bin: filepath.Join(dir, "httpceiling"), LogDir: logs, ReadyTimeout: time.Minute},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	var table bytes.Buffer
	_ = rep.WriteTable(&table)
	t.Log("\n" + table.String())
	fail := func(what string) { t.Fatalf("%s\nreport:\n%s\n%s", what, table.String(), log.String()) }
	if !rep.Pass || len(rep.Configs) != 2 || rep.HTTPCeiling == nil || rep.HTTPCeiling.Processes != 2 ||
		rep.HTTPCeiling.Storm.Checkout.PerSecond <= 0 {
		fail("not a passing run of two configurations and an HTTP ceiling")
	}
	for i, c := range rep.Configs {
		s := c.Service
		if s.Server == nil || len(s.Server.PIDs) != 2 || s.Server.PeakRSSBytes <= 0 || s.Herd.CPU.Server == nil ||
			c.Baseline == nil || c.Ceilings == nil || c.Ceilings.StormRatio <= 0 || c.Ceilings.HerdRatio <= 0 ||
			s.Storm.Timeline == nil || len(s.Storm.Timeline.Counts) < 2 {
			fail(c.Name + ": missing figures")
		}
		if (s.Reads != nil) != (i == 0) {
			fail(c.Name + ": the reads phase runs in the first configuration only")
		}
		if s.Sale.Units != int64([]int{200, 100}[i]) || s.Sale.SoldBefore != 0 {
			fail(c.Name + ": not a fresh sale of the configuration")
		}
	}
	if !strings.Contains(table.String(), "PASS") || strings.Contains(table.String(), "FAIL") ||
		!strings.Contains(table.String(), "ceilings, storm") {
		fail("table")
	}
	// Every process is stopped and every database dropped.
	for _, want := range []string{"stopping the servers", "200x20", "100x100"} {
		if !strings.Contains(log.String(), want) {
			fail("log lacks " + want)
		}
	}
	admin, err := pgx.Connect(context.Background(), pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	for _, c := range rep.Configs {
		var left int
		if err := admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname LIKE $1",
			"flashsale_bench_%_"+c.Name+"%").Scan(&left); err != nil || left != 0 {
			fail(fmt.Sprintf("%s: %d databases left (%v)", c.Name, left, err))
		}
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
	for title, db := range map[string]string{
		"postgres: 15/main: postgres flashsale_bench_1_100x100 127.0.0.1(34750) idle": "flashsale_bench_1_100x100",
		"postgres: app shop [local] SELECT":                                           "shop",
		"postgres: 15/main: autovacuum worker flashsale":                              "flashsale",
		"postgres: 15/main: walwriter":                                                "",
		"/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main":          "",
	} {
		if got := pgTitleDB(title); got != db {
			t.Errorf("pgTitleDB(%q) = %q, want %q", title, got, db)
		}
	}
	if pid, ok := pgParallelLeader("postgres: 15/main: parallel worker for PID 4321 "); !ok || pid != 4321 {
		t.Errorf("pgParallelLeader: %d %v", pid, ok)
	}
	if _, ok := pgParallelLeader("postgres: 15/main: checkpointer"); ok {
		t.Error("pgParallelLeader: a checkpointer has a leader")
	}
	if machineBusy() <= 0 {
		t.Error("machineBusy: no busy time read from /proc/stat")
	}
	now := time.Date(2026, 5, 1, 13, 55, 0, 0, time.UTC)
	if d := SafeSaleDuration(now, 10*time.Minute); d != 3*time.Hour { // 1h and 2h end at 14:00
		t.Errorf("SafeSaleDuration: %v", d)
	}
	if d := SafeSaleDuration(now.Add(-30*time.Minute), 10*time.Minute); d != time.Hour {
		t.Errorf("SafeSaleDuration: %v", d)
	}
}
