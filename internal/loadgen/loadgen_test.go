package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/loadgen/deploy"
	"github.com/flashsale/flashsale/internal/loadgen/phase"
	"github.com/flashsale/flashsale/internal/loadgen/report"
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
			return pgtest.New(t), func(context.Context) error { return nil }, nil // pgtest drops it
		},
	}
}

func smokeSettings() *sale.Settings {
	return &sale.Settings{
		Duration: deploy.SafeSaleDuration(time.Now(), 5*time.Minute), Units: 300, Items: 30, PerUserLimit: 10, HoldTTL: 10 * time.Minute,
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
	rep := &report.Report{StartedAt: time.Now(), Configs: []*report.ConfigResult{{Name: "300x30", Units: 300, Items: 30, Pick: phase.PickRandom,
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
	for _, side := range []*report.SideResult{svc, base} {
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
		storms := []report.PhaseReport{side.Storm}
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
	var back report.Report
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &back); err != nil || !back.Pass || back.Configs[0].Service.Herd.Purchases != 300 ||
		back.Configs[0].Service.Reads == nil {
		t.Fatalf("JSON report: %v, %s", err, b)
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
		Spawn:    deploy.Config{ServerBin: filepath.Join(dir, "server"), Servers: 2, LogDir: logs, ReadyTimeout: time.Minute},
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
