package loadgen

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/database"
)

// BenchConfig is a whole benchmark run.
type BenchConfig struct {
	Options
	// URL aims at a running server; empty starts one (Spawn).
	URL string
	// DBURL is the running server's database (required with URL).
	DBURL string
	// ServerPID, with URL, enables the RSS and CPU figures.
	ServerPID int
	// AdminURL is a database on the PostgreSQL server where loadgen creates
	// and drops its databases (the spawned server's and the baseline's).
	// With URL it defaults to DBURL's server, database "postgres".
	AdminURL string
	// Spawn says how to start the server when URL is empty; its AdminURL
	// and Log are filled in from the fields above.
	Spawn SpawnConfig
}

// Bench runs the service (spawned or given), then the baseline, and returns
// the finished report. Whatever it started it stops, whatever it created it
// drops, also when ctx is cancelled.
func Bench(ctx context.Context, cfg BenchConfig) (_ *Report, err error) {
	cfg.Options.setDefaults()
	rep := &Report{
		StartedAt: time.Now(),
		Setup: Setup{
			URL: cfg.URL, Spawned: cfg.URL == "", Users: cfg.Users, Concurrency: cfg.Concurrency,
			StormConcurrency: cfg.StormConcurrency, StormDurationS: cfg.StormDuration.Seconds(), Pick: cfg.Pick,
			CPUs: runtime.NumCPU(), Checkpoint: cfg.Checkpoint, Analyze: cfg.Analyze,
		},
	}
	target := Target{URL: cfg.URL, DBURL: cfg.DBURL, PID: cfg.ServerPID}
	if cfg.URL == "" {
		if cfg.AdminURL == "" {
			return nil, errors.New("no server URL and no admin database URL to start one with")
		}
		sc := cfg.Spawn
		sc.AdminURL, sc.Log = cfg.AdminURL, cfg.Log
		var srv *Spawned
		if srv, err = Spawn(ctx, sc); err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, srv.Stop(context.WithoutCancel(ctx))) }()
		target = Target{URL: srv.URL, DBURL: srv.DBURL, PID: srv.PID()}
		rep.Setup.URL, rep.Setup.ServerLog = srv.URL, sc.LogPath
		rep.Service, err = RunService(ctx, cfg.Options, target)
		if err != nil {
			return nil, err
		}
		// The baseline runs without the server, which has nothing more to do.
		fmt.Fprintf(cfg.Log, "loadgen: stopping the server (pid %d) and dropping %s\n", target.PID, srv.DBName)
		if err = srv.Stop(ctx); err != nil {
			return nil, err
		}
	} else {
		if cfg.DBURL == "" {
			return nil, errors.New("-url needs -db, the server's database, for the SQL checks")
		}
		if cfg.AdminURL == "" {
			pc, perr := pgx.ParseConfig(cfg.DBURL)
			if perr != nil {
				return nil, fmt.Errorf("parse database URL: %w", perr)
			}
			cfg.AdminURL = database.ReplaceDatabase(cfg.DBURL, pc.Database, "postgres")
		}
		rep.Service, err = RunService(ctx, cfg.Options, target)
		if err != nil {
			return nil, err
		}
	}

	if cfg.Baseline {
		opts := cfg.Options
		if opts.NewBaselineDB == nil {
			admin := cfg.AdminURL
			opts.NewBaselineDB = func(ctx context.Context) (string, func(context.Context) error, error) {
				return CreateDatabase(ctx, admin, fmt.Sprintf("flashsale_bench_%d_baseline", time.Now().Unix()))
			}
		}
		rep.Setup.BaselineConns = opts.BaselineConns
		rep.Baseline, err = RunBaseline(ctx, opts, rep.Service.Sale)
		if err != nil {
			return nil, err
		}
	}
	rep.Finish()
	return rep, nil
}
