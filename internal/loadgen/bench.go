package loadgen

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/loadgen/deploy"
	"github.com/flashsale/flashsale/internal/loadgen/report"
	"github.com/flashsale/flashsale/internal/loadgen/webhook"
)

// SaleConfig is one configuration of the sale a run measures.
type SaleConfig struct {
	Units int
	Items int
	// Defined: a sale defined through the admin API (with sku, price and
	// currency per item) instead of the generated one.
	Defined bool
}

// Name is how the report and the files name the configuration.
func (c SaleConfig) Name() string {
	if c.Defined {
		return fmt.Sprintf("defined-%dx%d", c.Units, c.Items)
	}
	return fmt.Sprintf("%dx%d", c.Units, c.Items)
}

// DefaultConfigs are what `make bench` measures: the product's default
// sale (10,000 single-unit items, as `make run` creates it), 10,000 units
// over 100 items, and a shop's own sale of 10,000 units over 500 priced
// items defined through the admin API.
var DefaultConfigs = []SaleConfig{{Units: 10000, Items: 10000}, {Units: 10000, Items: 100}, {Units: 10000, Items: 500, Defined: true}}

// BenchConfig is a whole benchmark run.
type BenchConfig struct {
	Options
	// Configs are measured in turn, each on a fresh database and freshly
	// started servers (Spawn); the reads phase runs in the first only.
	// Ignored with URL.
	Configs []SaleConfig
	// URLs aim at running servers (one URL each) instead: one
	// configuration, whatever their sale is.
	URLs []string
	// DBURL is the running servers' database (required with URLs).
	DBURL string
	// ServerPIDs, with URLs, enable the RSS and CPU figures.
	ServerPIDs []int
	// AdminURL is a database on the PostgreSQL server where loadgen creates
	// and drops its databases (the spawned servers' and the baseline's).
	// With URLs it defaults to DBURL's server, database "postgres".
	AdminURL string
	// Spawn says how to start the servers; its AdminURL, Units, Items,
	// Name and Log are filled in per configuration.
	Spawn deploy.Config
	// Ceiling starts the HTTP ceiling (its Bin empty: no HTTP ceiling).
	Ceiling CeilingConfig
	// Webhooks: each configuration's servers POST their webhooks to a
	// receiver in loadgen, started before them, and every purchase's event
	// is checked (an invariant). Needs started servers (no URLs): loadgen
	// sets their WEBHOOK_URL and WEBHOOK_SECRET.
	Webhooks bool
}

// Bench runs the HTTP ceiling, then each configuration (service, reads
// phase in the first, baseline), and returns the finished report.
// Whatever it started it stops, whatever it created it drops, also when
// ctx is cancelled.
func Bench(ctx context.Context, cfg BenchConfig) (_ *report.Report, err error) {
	cfg.Options.setDefaults()
	servers := max(cfg.Spawn.Servers, 1)
	pooler := cfg.Spawn.Pooler
	if pooler == "" {
		pooler = deploy.PoolerNone
	}
	if len(cfg.URLs) > 0 {
		servers, pooler = len(cfg.URLs), ""
	}
	rep := &report.Report{
		StartedAt: time.Now(),
		Setup: report.Setup{
			Spawned: len(cfg.URLs) == 0, Users: cfg.Users, Concurrency: cfg.Concurrency,
			StormConcurrency: cfg.StormConcurrency, StormDurationS: cfg.StormDuration.Seconds(), Pick: cfg.Pick,
			Servers: servers, Pooler: pooler, ReadCurrent: cfg.ReadCurrent, ReadItems: cfg.ReadItems,
			ReadIntervalS: cfg.ReadInterval.Seconds(),
			CPUs:          runtime.NumCPU(), LogDir: cfg.Spawn.LogDir, Webhooks: cfg.Webhooks,
		},
	}
	if cfg.Baseline {
		rep.Setup.BaselineConns = cfg.BaselineConns
	}
	if pooler == deploy.PoolerPgBouncer {
		rep.Setup.PoolerSize = cfg.Spawn.PoolerSize
	}
	if len(cfg.URLs) > 0 && cfg.AdminURL == "" {
		if cfg.DBURL == "" {
			return nil, errors.New("-url needs -db, the servers' database, for the SQL checks")
		}
		pc, perr := pgx.ParseConfig(cfg.DBURL)
		if perr != nil {
			return nil, fmt.Errorf("parse database URL: %w", perr)
		}
		cfg.AdminURL = database.ReplaceDatabase(cfg.DBURL, pc.Database, "postgres")
	}
	if len(cfg.URLs) > 0 && cfg.Webhooks {
		return nil, errors.New("webhooks need servers loadgen starts (it sets their WEBHOOK_URL), not running ones")
	}
	if len(cfg.URLs) == 0 && cfg.AdminURL == "" {
		return nil, errors.New("no server URL and no admin database URL to start servers with")
	}

	if cfg.Ceiling.Bin != "" {
		cc := cfg.Ceiling
		cc.Processes = servers
		for _, c := range cfg.Configs {
			cc.Items = max(cc.Items, c.Items)
		}
		if rep.HTTPCeiling, err = RunHTTPCeiling(ctx, cfg.Options, cc); err != nil {
			return nil, fmt.Errorf("HTTP ceiling: %w", err)
		}
	}

	if len(cfg.URLs) > 0 {
		c, err := runConfig(ctx, cfg, nil, true)
		if err != nil {
			return nil, err
		}
		rep.Configs = append(rep.Configs, c)
	} else {
		if len(cfg.Configs) == 0 {
			return nil, errors.New("no configuration to run")
		}
		for i, sc := range cfg.Configs {
			c, err := runConfig(ctx, cfg, &sc, i == 0)
			if err != nil {
				return nil, fmt.Errorf("configuration %s: %w", sc.Name(), err)
			}
			rep.Configs = append(rep.Configs, c)
		}
	}
	rep.Finish()
	return rep, nil
}

// runConfig measures one configuration: the service (started fresh for
// sc, or the running one when sc is nil), then the baseline on a sale like
// the service's.
func runConfig(ctx context.Context, cfg BenchConfig, sc *SaleConfig, reads bool) (_ *report.ConfigResult, err error) {
	opts := cfg.Options
	opts.Reads = reads
	c := &report.ConfigResult{Pick: opts.Pick}
	if sc == nil {
		c.Name = "running"
		if c.Service, err = RunService(ctx, opts, Target{URLs: cfg.URLs, DBURL: cfg.DBURL, PIDs: cfg.ServerPIDs}); err != nil {
			return nil, err
		}
	} else {
		c.Name = sc.Name()
		spawn := cfg.Spawn
		spawn.AdminURL, spawn.Units, spawn.Items, spawn.Name, spawn.Log = cfg.AdminURL, sc.Units, sc.Items, c.Name, cfg.Log
		spawn.Defined = sc.Defined
		opts.Pooler = spawn.Pooler == deploy.PoolerPgBouncer
		var rcv *webhook.Receiver
		if cfg.Webhooks {
			if spawn.WebhookSecret, err = webhook.NewSecret(); err != nil {
				return nil, err
			}
			if rcv, err = webhook.Start(spawn.WebhookSecret); err != nil {
				return nil, err
			}
			// Deferred first, so it runs after the servers are stopped:
			// their last deliveries still find it.
			defer func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				err = errors.Join(err, rcv.Close(ctx))
			}()
			spawn.WebhookURL = rcv.URL()
			fmt.Fprintf(cfg.Log, "loadgen: webhook receiver on %s\n", rcv.URL())
		}
		dep, err := deploy.Start(ctx, spawn)
		if err != nil {
			return nil, err
		}
		defer func() {
			if dep != nil {
				err = errors.Join(err, dep.Stop(context.WithoutCancel(ctx)))
			}
		}()
		c.ServerLogs = make([]string, len(dep.Servers))
		for i, p := range dep.Servers {
			c.ServerLogs[i] = p.LogPath
		}
		if c.Service, err = RunService(ctx, opts, Target{URLs: dep.URLs(), DBURL: dep.DBURL, PIDs: dep.PIDs(), Webhooks: rcv}); err != nil {
			return nil, err
		}
		// The baseline runs without the servers, which have nothing more to do.
		fmt.Fprintf(cfg.Log, "loadgen: stopping the servers %v and dropping %s\n", dep.PIDs(), dep.DBName)
		err = dep.Stop(ctx)
		dep = nil
		if err != nil {
			return nil, err
		}
	}
	c.Units, c.Items = c.Service.Sale.Units, c.Service.Sale.Items
	if cfg.Baseline {
		if opts.NewBaselineDB == nil {
			admin, name := cfg.AdminURL, c.Name
			opts.NewBaselineDB = func(ctx context.Context) (string, func(context.Context) error, error) {
				db := fmt.Sprintf("flashsale_bench_%d_%s_baseline", time.Now().Unix(), name)
				url, err := database.CreateDatabase(ctx, admin, db, "")
				if err != nil {
					return "", nil, err
				}
				return url, func(ctx context.Context) error { return database.DropDatabase(ctx, admin, db) }, nil
			}
		}
		if c.Baseline, err = RunBaseline(ctx, opts, c.Service.Sale); err != nil {
			return nil, err
		}
	}
	return c, nil
}
