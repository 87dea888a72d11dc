package main

import (
	"io"
	"testing"
	"time"
)

func TestParseFlagsDefaults(t *testing.T) {
	t.Setenv("TEST_DATABASE_URL", "")
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b := c.bench
	if b.URL != "" || b.AdminURL != defaultAdminURL || b.Spawn.ServerBin != "bin/server" || b.Spawn.Units != 10000 ||
		b.Spawn.Items != 100 || b.Users != 20000 || b.Concurrency != 256 || b.StormConcurrency != 128 ||
		b.StormDuration != 20*time.Second || !b.Baseline || b.BaselineConns != 4 || b.Spawn.DBMaxConns != 4 ||
		!b.Analyze || !b.Checkpoint || c.out != "bench/results/latest.json" {
		t.Fatalf("defaults: %+v out=%q", b, c.out)
	}
}

func TestParseFlagsRunningServer(t *testing.T) {
	if _, err := parseFlags([]string{"-url", "http://127.0.0.1:8080"}, io.Discard); err == nil {
		t.Fatal("-url without -db accepted")
	}
	c, err := parseFlags([]string{"-url", "http://127.0.0.1:8080", "-db", "postgres://u@h/flashsale", "-server-pid", "42",
		"-server-env", "LOG_LEVEL=warn", "-c", "64", "-storm", "2s", "-pick", "untaken"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.bench.AdminURL != "" || c.bench.ServerPID != 42 || c.bench.Concurrency != 64 || c.bench.StormDuration != 2*time.Second ||
		len(c.bench.Spawn.ExtraEnv) != 1 || c.bench.Pick != "untaken" {
		t.Fatalf("%+v", c.bench)
	}
	for _, bad := range [][]string{{"-pick", "first"}, {"-items", "0"}, {"-items", "11", "-units", "10"}, {"extra"}, {"-server-env", "NOEQUALS"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
