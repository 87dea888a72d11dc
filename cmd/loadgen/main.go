// Command loadgen benchmarks the flash-sale service through its HTTP API:
// a herd that sells a fresh sale out, a storm of checkouts after sell-out,
// the same transactions driven straight at PostgreSQL as a baseline, and the
// invariants that must hold afterwards. It prints one table, writes the same
// as JSON and exits non-zero when an invariant fails.
//
// By default it starts the server itself (bin/server, on a fresh database
// created through -admin-db) and stops it at the end; `make bench` runs it so.
// With -url it aims at a running server instead; -db is then that server's
// database, and -server-pid enables the RSS and CPU figures.
//
// The logic lives in internal/loadgen; this is flag parsing only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen"
)

const defaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

type cli struct {
	bench      loadgen.BenchConfig
	out        string
	cpuProfile string
}

type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }
func (e *envList) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	*e = append(*e, v)
	return nil
}

func parseFlags(args []string, stderr io.Writer) (cli, error) {
	var c cli
	b := &c.bench
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := defaultAdminURL
	if v := os.Getenv("TEST_DATABASE_URL"); v != "" {
		admin = v
	}
	fs.StringVar(&b.URL, "url", "", "base URL of a running server (default: start one)")
	fs.StringVar(&b.DBURL, "db", "", "with -url: the server's database URL, for the SQL checks")
	fs.IntVar(&b.ServerPID, "server-pid", 0, "with -url: the server's pid, for peak RSS and CPU")
	fs.StringVar(&b.AdminURL, "admin-db", admin, "a database on the PostgreSQL server, used to create and drop loadgen's databases (with -url: defaults to -db's server)")
	fs.StringVar(&b.Spawn.ServerBin, "server-bin", "bin/server", "server binary to start")
	fs.IntVar(&b.Spawn.Units, "units", 10000, "SALE_UNITS of the started server")
	// 100 units per item: with 10,000 single-unit items a random pick
	// turns the herd into a coupon-collector search (~90k checkouts for 10k units).
	fs.IntVar(&b.Spawn.Items, "items", 100, "SALE_ITEMS of the started server")
	fs.IntVar(&b.Spawn.PerUserLimit, "per-user-limit", 0, "PER_USER_LIMIT of the started server (0: its default)")
	fs.DurationVar(&b.Spawn.HoldTTL, "hold-ttl", 0, "HOLD_TTL of the started server (0: its default)")
	fs.DurationVar(&b.Spawn.SaleDuration, "sale-duration", 0, "SALE_DURATION of the started server (0: whole hours, so the window has 10+ minutes left)")
	dbConns := fs.Int("db-conns", 4, "DB_MAX_CONNS of the started server and pool size of the baseline")
	var env envList
	fs.Var(&env, "server-env", "extra KEY=VALUE for the started server (repeatable)")
	fs.StringVar(&b.Spawn.LogPath, "server-log", "bench/results/server.log", "file for the started server's log (empty: discard)")
	fs.DurationVar(&b.Spawn.ReadyTimeout, "ready-timeout", 60*time.Second, "how long the started server may take to answer /readyz")
	fs.IntVar(&b.Users, "users", 20000, "herd users")
	fs.IntVar(&b.Concurrency, "c", 256, "herd clients (connections)")
	fs.IntVar(&b.StormConcurrency, "storm-c", 128, "storm clients (connections)")
	fs.DurationVar(&b.StormDuration, "storm", 20*time.Second, "storm duration")
	fs.DurationVar(&b.HerdTimeout, "herd-timeout", 3*time.Minute, "give the herd up after this")
	fs.DurationVar(&b.RequestTimeout, "timeout", 30*time.Second, "per-request timeout")
	fs.IntVar(&b.HotClients, "hot-clients", 0, "more storm clients that send checkouts as one user, hot-user, beside -storm-c (the report's \"others\" row is everyone else)")
	fs.StringVar(&b.Pick, "pick", loadgen.PickRandom, "herd item choice: random (any item) or untaken (skip items answered item_unavailable)")
	fs.BoolVar(&b.Baseline, "baseline", true, "also run herd and storm straight at PostgreSQL")
	fs.BoolVar(&b.Analyze, "analyze", true, "run ANALYZE before each phase, so service and baseline plan with the same statistics (not whenever autovacuum gets there)")
	fs.BoolVar(&b.Checkpoint, "checkpoint", true, "issue CHECKPOINT before each phase, so no phase gets a timed checkpoint's full-page writes by chance (needs a superuser)")
	fs.StringVar(&c.out, "out", "bench/results/latest.json", "JSON report path (empty: none)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write loadgen's own CPU profile here")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	b.Spawn.ExtraEnv = env
	b.Spawn.DBMaxConns = *dbConns
	b.BaselineConns = *dbConns
	if b.URL != "" {
		if b.DBURL == "" {
			return c, errors.New("-url needs -db (the server's database URL, for the SQL checks)")
		}
		if !flagSet(fs, "admin-db") {
			b.AdminURL = "" // derived from -db
		}
	}
	if b.Pick != loadgen.PickRandom && b.Pick != loadgen.PickUntaken {
		return c, fmt.Errorf("-pick must be %s or %s", loadgen.PickRandom, loadgen.PickUntaken)
	}
	if b.Spawn.Units < 1 || b.Spawn.Items < 1 || b.Spawn.Items > b.Spawn.Units {
		return c, errors.New("need 1 <= -items <= -units")
	}
	return c, nil
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 2
	}
	// Fewer collections: loadgen must leave the CPU to the server.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c.bench.Log = stderr
	rep, err := loadgen.Bench(ctx, c.bench)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 2
	}
	if err := rep.WriteTable(stdout); err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 2
	}
	if c.out != "" {
		if err := rep.WriteJSON(c.out); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 2
		}
		fmt.Fprintf(stderr, "loadgen: wrote %s\n", c.out)
	}
	if !rep.Pass {
		return 1
	}
	return 0
}
