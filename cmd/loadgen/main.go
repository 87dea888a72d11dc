// Command loadgen benchmarks the flash-sale service as it is deployed,
// through its HTTP API, and prints one table (and writes the same as JSON):
//
//   - the HTTP ceiling: a storm against cmd/httpceiling, the server's Echo
//     stack answering 409 sold_out without a database;
//   - for each configuration (-configs; `make bench`: the default sale of
//     10,000 single-unit items, and 10,000 units over 100 items): a fresh
//     database and freshly started servers (bin/server with the environment
//     `make run` gives it, plus HTTP_ADDR and SALE_*), a herd that sells the
//     sale out from the moment /readyz answers, a storm of checkouts against
//     the sold-out sale (its first 10 s against the rest), in the first
//     configuration the storm again beside clients reading the sale (the
//     reads phase), then the same herd and storm driven straight at
//     PostgreSQL in-process (the baseline: the database ceiling);
//   - the combined ceiling of each configuration, the ratios to it, the
//     issue's targets with met/missed, and the invariants.
//
// Nothing is done to the database that the product does not do itself: no
// ANALYZE, no CHECKPOINT, no warm-up. It exits 1 when an invariant fails
// (targets are informational), 2 when it could not run.
//
// With -webhooks each configuration's servers also deliver their webhooks
// to a receiver in loadgen, and every purchase's event is an invariant.
//
// With -url it aims at running servers instead (one configuration, their
// sale); -db is then their database, and -server-pid enables the RSS and
// CPU figures.
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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen"
	"github.com/flashsale/flashsale/internal/loadgen/deploy"
	"github.com/flashsale/flashsale/internal/loadgen/phase"
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
	urls := fs.String("url", "", "base URLs of running servers, comma-separated (default: start them)")
	fs.StringVar(&b.DBURL, "db", "", "with -url: the servers' database URL, for the SQL checks")
	pids := fs.String("server-pid", "", "with -url: the servers' pids, comma-separated, for peak RSS and CPU")
	fs.StringVar(&b.AdminURL, "admin-db", admin, "a database on the PostgreSQL server, used to create and drop loadgen's databases (with -url: defaults to -db's server)")
	fs.StringVar(&b.Spawn.ServerBin, "server-bin", "bin/server", "server binary to start")
	fs.StringVar(&b.Ceiling.Bin, "ceiling-bin", "bin/httpceiling", "HTTP ceiling binary (cmd/httpceiling) to storm; empty: no HTTP ceiling")
	configs := fs.String("configs", "10000x10000,10000x100,defined:10000x500", "configurations to run, UNITSxITEMS (a generated sale) or defined:UNITSxITEMS (a sale defined through the admin API, priced items), comma-separated; the reads phase runs in the first")
	fs.IntVar(&b.Spawn.PerUserLimit, "per-user-limit", 0, "PER_USER_LIMIT of the started servers (0: their default)")
	fs.DurationVar(&b.Spawn.HoldTTL, "hold-ttl", 0, "HOLD_TTL of the started servers (0: their default)")
	fs.DurationVar(&b.Spawn.SaleDuration, "sale-duration", 0, "SALE_DURATION of the started servers (0: whole hours, so the window has 10+ minutes left)")
	dbConns := fs.Int("db-conns", 4, "pool size of the baseline (the server's DB_MAX_CONNS default); given, also the started servers' DB_MAX_CONNS")
	var env envList
	fs.Var(&env, "server-env", "extra KEY=VALUE for the started servers and HTTP ceilings (repeatable)")
	fs.IntVar(&b.Spawn.Servers, "servers", 1, "server processes to start on each configuration's database (and HTTP ceilings); the clients are spread over them in turn")
	fs.StringVar(&b.Spawn.Pooler, "pooler", deploy.PoolerNone, "between the servers and PostgreSQL: none or pgbouncer (transaction pooling; loadgen's own SQL goes direct)")
	fs.IntVar(&b.Spawn.PoolerSize, "pooler-size", 4, "with -pooler pgbouncer: its connections to PostgreSQL (default: as many as one server opens)")
	fs.StringVar(&b.Spawn.LogDir, "log-dir", "bench/results", "directory for the started processes' logs (empty: discard)")
	fs.DurationVar(&b.Spawn.ReadyTimeout, "ready-timeout", 60*time.Second, "how long a started server may take to answer /readyz")
	fs.IntVar(&b.Users, "users", 20000, "herd users")
	fs.IntVar(&b.Concurrency, "c", 256, "herd clients (connections)")
	fs.IntVar(&b.StormConcurrency, "storm-c", 128, "storm clients (connections)")
	fs.DurationVar(&b.StormDuration, "storm", 20*time.Second, "duration of each storm (service, reads phase, baseline, HTTP ceiling); the first 10 s are compared with the rest")
	fs.DurationVar(&b.HerdTimeout, "herd-timeout", 3*time.Minute, "give the herd up after this")
	fs.DurationVar(&b.RequestTimeout, "timeout", 30*time.Second, "per-request timeout")
	fs.IntVar(&b.HotClients, "hot-clients", 0, "more storm clients that send checkouts as one user, hot-user, beside -storm-c (the report's \"others\" row is everyone else)")
	fs.StringVar(&b.Pick, "pick", phase.PickRandom, "herd item choice: random (any item) or untaken (skip items answered item_unavailable)")
	fs.IntVar(&b.ReadCurrent, "read-current", 16, "reads phase: clients looping on GET /sales/current beside the storm")
	fs.DurationVar(&b.ReadInterval, "read-interval", 0, "reads phase: each reader's pause between an answer and its next request (0: none, as the issue measured)")
	fs.IntVar(&b.ReadItems, "read-items", 4, "reads phase: clients looping on GET /sales/current/items?limit=1000 (with -read-current 0: no reads phase)")
	fs.BoolVar(&b.Webhooks, "webhooks", false, "the started servers POST their webhooks (WEBHOOK_URL, WEBHOOK_SECRET) to a receiver in loadgen, which checks every purchase's event (not with -url)")
	fs.BoolVar(&b.Baseline, "baseline", true, "also run herd and storm straight at PostgreSQL (the database ceiling)")
	fs.StringVar(&c.out, "out", "bench/results/latest.json", "JSON report path (empty: none)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write loadgen's own CPU profile here")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	b.Spawn.ExtraEnv = env
	b.Ceiling.ExtraEnv = env
	b.Ceiling.LogDir, b.Ceiling.ReadyTimeout = b.Spawn.LogDir, b.Spawn.ReadyTimeout
	b.BaselineConns = *dbConns
	if flagSet(fs, "db-conns") {
		b.Spawn.DBMaxConns = *dbConns
	}
	var err error
	if b.Configs, err = parseConfigs(*configs); err != nil {
		return c, err
	}
	if *urls != "" {
		if b.Webhooks {
			return c, errors.New("-webhooks needs servers loadgen starts (it sets their WEBHOOK_URL and WEBHOOK_SECRET); it cannot be used with -url")
		}
		b.URLs = strings.Split(*urls, ",")
		if b.DBURL == "" {
			return c, errors.New("-url needs -db (the servers' database URL, for the SQL checks)")
		}
		if !flagSet(fs, "admin-db") {
			b.AdminURL = "" // derived from -db
		}
		if *pids != "" {
			for _, p := range strings.Split(*pids, ",") {
				pid, err := strconv.Atoi(strings.TrimSpace(p))
				if err != nil || pid <= 0 {
					return c, fmt.Errorf("-server-pid: %q is not a pid", p)
				}
				b.ServerPIDs = append(b.ServerPIDs, pid)
			}
		}
	}
	if b.Pick != phase.PickRandom && b.Pick != phase.PickUntaken {
		return c, fmt.Errorf("-pick must be %s or %s", phase.PickRandom, phase.PickUntaken)
	}
	if b.Spawn.Pooler != deploy.PoolerNone && b.Spawn.Pooler != deploy.PoolerPgBouncer {
		return c, fmt.Errorf("-pooler must be %s or %s", deploy.PoolerNone, deploy.PoolerPgBouncer)
	}
	if b.Spawn.Servers < 1 || b.Spawn.PoolerSize < 1 {
		return c, errors.New("-servers and -pooler-size must be at least 1")
	}
	if b.ReadCurrent < 0 || b.ReadItems < 0 {
		return c, errors.New("-read-current and -read-items must not be negative")
	}
	return c, nil
}

// parseConfigs reads "UNITSxITEMS,...".
func parseConfigs(v string) ([]loadgen.SaleConfig, error) {
	var out []loadgen.SaleConfig
	for _, part := range strings.Split(v, ",") {
		spec, defined := strings.CutPrefix(strings.TrimSpace(part), "defined:")
		u, i, ok := strings.Cut(spec, "x")
		units, err1 := strconv.Atoi(u)
		items, err2 := strconv.Atoi(i)
		if !ok || err1 != nil || err2 != nil || items < 1 || items > units {
			return nil, fmt.Errorf("-configs: %q is not UNITSxITEMS or defined:UNITSxITEMS with 1 <= ITEMS <= UNITS", part)
		}
		out = append(out, loadgen.SaleConfig{Units: units, Items: items, Defined: defined})
	}
	return out, nil
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
