package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/pgbouncer"
	"github.com/flashsale/flashsale/internal/process"
)

// CreateDatabase creates database name on the server of adminURL and returns
// its URL and a function that drops it (closing whatever is still connected).
func CreateDatabase(ctx context.Context, adminURL, name string) (string, func(context.Context) error, error) {
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("parse admin URL: %w", err)
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect to %s: %w", redact(adminURL), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop := func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	return database.ReplaceDatabase(adminURL, cfg.Database, name), drop, nil
}

// redact hides a password in a URL.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxx")
			return u.String()
		}
	}
	return s
}

// SafeSaleDuration returns the shortest sale window (whole hours, since
// windows are aligned to their duration) whose window containing now has at
// least margin left, so the sale cannot end or roll over during a run.
func SafeSaleDuration(now time.Time, margin time.Duration) time.Duration {
	for h := 1; h <= 48; h++ {
		d := time.Duration(h) * time.Hour
		if now.UTC().Truncate(d).Add(d).Sub(now) >= margin {
			return d
		}
	}
	return 48 * time.Hour
}

// SpawnConfig says how to start the servers of one configuration: as
// `make run` starts one (bin/server with DATABASE_URL and the environment
// it was given), plus HTTP_ADDR for a port of its own and the SALE_*
// settings of the configuration. Nothing else is set unless asked for.
type SpawnConfig struct {
	AdminURL     string // a database on the PostgreSQL server, to create and drop ours
	ServerBin    string
	Units        int
	Items        int
	PerUserLimit int           // 0: the server's default
	HoldTTL      time.Duration // 0: the server's default
	SaleDuration time.Duration // 0: SafeSaleDuration
	DBMaxConns   int           // 0: the server's default
	ExtraEnv     []string      // KEY=VALUE, last word
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
	Servers []*Process
	Pooler  *pgbouncer.Instance
	drop    func(context.Context) error
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

// Deploy creates a fresh database, starts the pooler if asked, then the
// servers, all at once as a deployment would (they migrate and create the
// sale under the database's own locks), and returns once every one of them
// answers /readyz with 200.
func Deploy(ctx context.Context, cfg SpawnConfig) (_ *Deployment, err error) {
	name := fmt.Sprintf("flashsale_bench_%d_%s", time.Now().Unix(), cfg.Name)
	dbURL, drop, err := CreateDatabase(ctx, cfg.AdminURL, name)
	if err != nil {
		return nil, err
	}
	d := &Deployment{DBURL: dbURL, DBName: name, drop: drop}
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
	env = append(env, cfg.ExtraEnv...)
	via := ""
	if d.Pooler != nil {
		via = " through pgbouncer"
	}
	for i := range max(cfg.Servers, 1) {
		p, err := StartProcess(cfg.ServerBin, env, logPath(cfg.LogDir, "server", cfg.Name, i+1))
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
	if d.drop != nil {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		errs = append(errs, d.drop(ctx))
		d.drop = nil
	}
	return errors.Join(errs...)
}

func logPath(dir, kind, name string, n int) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, fmt.Sprintf("%s-%s-%d.log", kind, name, n))
}

// Process is a program we started that serves HTTP on a loopback port.
type Process struct {
	URL     string
	bin     string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	logf    *os.File
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// StartProcess starts bin with this process's environment, then env, then
// HTTP_ADDR on a free loopback port; its output goes to logPath ("":
// discarded).
func StartProcess(bin string, env []string, logPath string) (_ *Process, err error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	port, err := process.FreePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p := &Process{URL: "http://" + addr, bin: bin, logPath: logPath, exited: make(chan struct{})}
	p.cmd = exec.Command(abs)
	p.cmd.Env = append(append(os.Environ(), env...), "HTTP_ADDR="+addr)
	if logPath != "" {
		if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
			return nil, err
		}
		if p.logf, err = os.Create(logPath); err != nil {
			return nil, err
		}
		p.cmd.Stdout, p.cmd.Stderr = p.logf, p.logf
	}
	if err := p.cmd.Start(); err != nil {
		if p.logf != nil {
			p.logf.Close()
		}
		return nil, fmt.Errorf("start %s: %w", abs, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	return p, nil
}

// WaitReady polls /readyz until it answers 200.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration) error {
	if err := waitReady(ctx, p.URL, timeout, p.exited); err != nil {
		if p.logPath != "" {
			err = fmt.Errorf("%s: %w (log: %s)", p.bin, err, p.logPath)
		}
		return err
	}
	return nil
}

// Stop sends SIGTERM (SIGKILL if the process is still running after 20 s)
// and waits for the process to end.
func (p *Process) Stop() error {
	err := process.Terminate(p.cmd, p.exited, 20*time.Second)
	if p.logf != nil {
		_ = p.logf.Close()
		p.logf = nil
	}
	return err
}

// waitReady polls baseURL/readyz until it answers 200.
func waitReady(ctx context.Context, baseURL string, timeout time.Duration, exited <-chan struct{}) error {
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s/readyz not ready within %s: %s", baseURL, timeout, last)
		}
		select {
		case <-exited:
			return fmt.Errorf("server exited before it was ready (last /readyz: %s)", last)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
