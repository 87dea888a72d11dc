package main

import (
	"io"
	"slices"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen"
	"github.com/flashsale/flashsale/internal/loadgen/deploy"
	"github.com/flashsale/flashsale/internal/loadgen/phase"
)

func TestParseFlagsDefaults(t *testing.T) {
	t.Setenv("TEST_DATABASE_URL", "")
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b := c.bench
	if len(b.URLs) != 0 || b.AdminURL != defaultAdminURL || b.Spawn.ServerBin != "bin/server" || b.Ceiling.Bin != "bin/httpceiling" ||
		!slices.Equal(b.Configs, loadgen.DefaultConfigs) || b.Users != 20000 || b.Concurrency != 256 || b.StormConcurrency != 128 ||
		b.StormDuration != 20*time.Second || !b.Baseline || b.BaselineConns != 4 || b.Pick != phase.PickRandom ||
		b.ReadCurrent != 16 || b.ReadItems != 4 || b.Spawn.Servers != 1 || b.Spawn.Pooler != deploy.PoolerNone ||
		b.Spawn.LogDir != "bench/results" || c.out != "bench/results/latest.json" || b.Webhooks {
		t.Fatalf("defaults: %+v out=%q", b, c.out)
	}
	// The servers get the environment `make run` gives them: no pool size
	// unless asked for.
	if b.Spawn.DBMaxConns != 0 || len(b.Spawn.ExtraEnv) != 0 {
		t.Fatalf("server environment: DB_MAX_CONNS %d, extra %v", b.Spawn.DBMaxConns, b.Spawn.ExtraEnv)
	}
}

func TestParseFlagsDeployment(t *testing.T) {
	c, err := parseFlags([]string{"-servers", "4", "-pooler", "pgbouncer", "-pooler-size", "8", "-db-conns", "6",
		"-configs", "500x50", "-server-env", "LOG_LEVEL=warn", "-webhooks"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b := c.bench
	if b.Spawn.Servers != 4 || b.Spawn.Pooler != deploy.PoolerPgBouncer || b.Spawn.PoolerSize != 8 || b.Spawn.DBMaxConns != 6 ||
		b.BaselineConns != 6 || !slices.Equal(b.Configs, []loadgen.SaleConfig{{Units: 500, Items: 50}}) ||
		!slices.Equal(b.Ceiling.ExtraEnv, []string{"LOG_LEVEL=warn"}) || !slices.Equal(b.Spawn.ExtraEnv, b.Ceiling.ExtraEnv) || !b.Webhooks {
		t.Fatalf("%+v", b)
	}
}

func TestParseFlagsRunningServer(t *testing.T) {
	if _, err := parseFlags([]string{"-url", "http://127.0.0.1:8080"}, io.Discard); err == nil {
		t.Fatal("-url without -db accepted")
	}
	c, err := parseFlags([]string{"-url", "http://127.0.0.1:8080,http://127.0.0.1:8081", "-db", "postgres://u@h/flashsale",
		"-server-pid", "42,43", "-c", "64", "-storm", "2s", "-pick", "untaken"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.bench.AdminURL != "" || !slices.Equal(c.bench.ServerPIDs, []int{42, 43}) || len(c.bench.URLs) != 2 ||
		c.bench.Concurrency != 64 || c.bench.StormDuration != 2*time.Second || c.bench.Pick != "untaken" {
		t.Fatalf("%+v", c.bench)
	}
	for _, bad := range [][]string{
		{"-pick", "first"}, {"-configs", "10x0"}, {"-configs", "10x11"}, {"-configs", "10000"}, {"extra"},
		{"-server-env", "NOEQUALS"}, {"-pooler", "pgpool"}, {"-servers", "0"}, {"-read-items", "-1"},
		{"-url", "http://127.0.0.1:1", "-db", "postgres://u@h/d", "-server-pid", "x"},
		{"-url", "http://127.0.0.1:1", "-db", "postgres://u@h/d", "-webhooks"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
