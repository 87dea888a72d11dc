// Package deploy starts what the benchmark measures as it is deployed: a
// fresh database, a PgBouncer if asked, and server processes started the
// way `make run` starts one; and stops it all again.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/pgbouncer"
	"github.com/flashsale/flashsale/internal/process"
)

// Config says how to start the servers of one configuration: as
// `make run` starts one (bin/server with DATABASE_URL and the environment
// it was given), plus HTTP_ADDR for a port of its own and the SALE_*
// settings of the configuration. Nothing else is set unless asked for.
type Config struct {
	AdminURL  string // a database on the PostgreSQL server, to create and drop ours
	ServerBin string
	Units     int
	Items     int
	// Defined: the servers generate no sale, and the sale of Units over
	// Items is defined through the admin API once they are ready
	// (defined.go).
	Defined      bool
	PerUserLimit int           // 0: the server's default
	HoldTTL      time.Duration // 0: the server's default
	SaleDuration time.Duration // 0: SafeSaleDuration
	DBMaxConns   int           // 0: the server's default
	ExtraEnv     []string      // KEY=VALUE, last word
	// WebhookURL and WebhookSecret, when set, are every server's
	// WEBHOOK_URL and WEBHOOK_SECRET: where it POSTs its events, signed.
	WebhookURL    string
	WebhookSecret string
	// Servers is how many server processes share the database (default
	// 1), each on its own port.
	Servers int
	// Pooler is PoolerNone ("" too) or PoolerPgBouncer: the servers then
	// reach the database through a PgBouncer of PoolerSize connections.
	Pooler     string
	PoolerSize int
	// Name tells this configuration's database and log files apart.
	Name string
	// LogDir receives each process's output (server-NAME-N.log); "" discards it.
	LogDir       string
	ReadyTimeout time.Duration
	Log          io.Writer
}

// The poolers a deployment may put between its servers and PostgreSQL.
const (
	PoolerNone      = "none"
	PoolerPgBouncer = "pgbouncer"
)

// Deployment is servers we started on a database we created.
type Deployment struct {
	DBURL   string // direct, for loadgen's own SQL
	DBName  string
	Servers []*process.Process
	Pooler  *pgbouncer.Instance
	admin   string // where DBName is dropped from; "" once dropped
}

// URLs are the servers' base URLs.
func (d *Deployment) URLs() []string {
	out := make([]string, len(d.Servers))
	for i, p := range d.Servers {
		out[i] = p.URL
	}
	return out
}

// PIDs are the servers' process ids.
func (d *Deployment) PIDs() []int {
	out := make([]int, len(d.Servers))
	for i, p := range d.Servers {
		out[i] = p.PID()
	}
	return out
}

// Start creates a fresh database, starts the pooler if asked, then the
// servers, all at once as a deployment would (they migrate and create the
// sale under the database's own locks), and returns once every one of them
// answers /readyz with 200.
func Start(ctx context.Context, cfg Config) (_ *Deployment, err error) {
	name := fmt.Sprintf("flashsale_bench_%d_%s", time.Now().Unix(), cfg.Name)
	dbURL, err := database.CreateDatabase(ctx, cfg.AdminURL, name, "")
	if err != nil {
		return nil, err
	}
	d := &Deployment{DBURL: dbURL, DBName: name, admin: cfg.AdminURL}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.Stop(context.WithoutCancel(ctx)))
		}
	}()
	serverDB := dbURL
	var env []string
	switch cfg.Pooler {
	case "", PoolerNone:
	case PoolerPgBouncer:
		if d.Pooler, err = pgbouncer.Start(ctx, dbURL, cfg.PoolerSize, cfg.Log); err != nil {
			return d, fmt.Errorf("start pgbouncer: %w", err)
		}
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "loadgen: pgbouncer (pid %d) on 127.0.0.1:%d, pool_mode=transaction, %d server connections to %s\n",
				d.Pooler.PID(), d.Pooler.Port, cfg.PoolerSize, name)
		}
		serverDB = d.Pooler.URL
		env = append(env, d.Pooler.ServerEnv()...)
	default:
		return d, fmt.Errorf("unknown pooler %q", cfg.Pooler)
	}
	dur := cfg.SaleDuration
	if dur == 0 {
		dur = SafeSaleDuration(time.Now(), 10*time.Minute)
	}
	env = append(env,
		"DATABASE_URL="+serverDB,
		"SALE_UNITS="+strconv.Itoa(cfg.Units),
		"SALE_ITEMS="+strconv.Itoa(cfg.Items),
		"SALE_DURATION="+dur.String(),
	)
	if cfg.PerUserLimit > 0 {
		env = append(env, "PER_USER_LIMIT="+strconv.Itoa(cfg.PerUserLimit))
	}
	if cfg.HoldTTL > 0 {
		env = append(env, "HOLD_TTL="+cfg.HoldTTL.String())
	}
	if cfg.DBMaxConns > 0 {
		env = append(env, "DB_MAX_CONNS="+strconv.Itoa(cfg.DBMaxConns))
	}
	if cfg.WebhookURL != "" {
		env = append(env, "WEBHOOK_URL="+cfg.WebhookURL, "WEBHOOK_SECRET="+cfg.WebhookSecret)
	}
	token := newAdminToken()
	if cfg.Defined {
		env = append(env, definedEnv(token)...)
	}
	env = append(env, cfg.ExtraEnv...)
	via := ""
	if d.Pooler != nil {
		via = " through pgbouncer"
	}
	if cfg.WebhookURL != "" {
		via += ", WEBHOOK_URL=" + cfg.WebhookURL
	}
	for i := range max(cfg.Servers, 1) {
		p, err := process.Start(cfg.ServerBin, env, LogPath(cfg.LogDir, "server", cfg.Name, i+1))
		if err != nil {
			return d, err
		}
		d.Servers = append(d.Servers, p)
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "loadgen: started %s (pid %d) on %s, database %s%s, SALE_UNITS=%d SALE_ITEMS=%d SALE_DURATION=%s\n",
				cfg.ServerBin, p.PID(), p.URL, name, via, cfg.Units, cfg.Items, dur)
		}
	}
	for _, p := range d.Servers {
		if err := p.WaitReady(ctx, cfg.ReadyTimeout); err != nil {
			return d, err
		}
	}
	if cfg.Defined {
		def := DefinedSale(time.Now().Add(definedEditLead+time.Second), dur, cfg.Units, cfg.Items)
		if err := defineSale(ctx, d.Servers[0].URL, token, def); err != nil {
			return d, err
		}
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "loadgen: defined a sale of %d units over %d priced items through POST /admin/sales\n",
				cfg.Units, cfg.Items)
		}
	}
	return d, nil
}

// Stop stops the servers, then the pooler, and drops the database.
func (d *Deployment) Stop(ctx context.Context) error {
	var errs []error
	for _, p := range d.Servers {
		errs = append(errs, p.Stop())
	}
	d.Servers = nil
	if d.Pooler != nil {
		errs = append(errs, d.Pooler.Stop())
		d.Pooler = nil
	}
	if d.admin != "" {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		errs = append(errs, database.DropDatabase(ctx, d.admin, d.DBName))
		d.admin = ""
	}
	return errors.Join(errs...)
}

// LogPath is where the n-th process of a kind ("server", "httpceiling")
// of configuration name logs in dir; "" (discarded) without a dir.
func LogPath(dir, kind, name string, n int) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, fmt.Sprintf("%s-%s-%d.log", kind, name, n))
}
