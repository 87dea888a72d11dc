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
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/database"
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

// SpawnConfig says how to start a server of our own.
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
	LogPath      string        // server's stderr; "" discards it
	ReadyTimeout time.Duration
	Log          io.Writer
}

// Spawned is a server we started on a database we created.
type Spawned struct {
	URL    string
	DBURL  string
	DBName string
	cmd    *exec.Cmd
	exited chan struct{}
	logf   *os.File
	drop   func(context.Context) error
}

// PID is the server's process id.
func (s *Spawned) PID() int { return s.cmd.Process.Pid }

// Spawn creates a fresh database, starts the server binary on a free
// loopback port against it and waits until /readyz answers 200.
func Spawn(ctx context.Context, cfg SpawnConfig) (_ *Spawned, err error) {
	name := fmt.Sprintf("flashsale_bench_%d", time.Now().Unix())
	dbURL, drop, err := CreateDatabase(ctx, cfg.AdminURL, name)
	if err != nil {
		return nil, err
	}
	s := &Spawned{DBURL: dbURL, DBName: name, drop: drop, exited: make(chan struct{})}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Stop(context.WithoutCancel(ctx)))
		}
	}()
	port, err := freePort()
	if err != nil {
		return s, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.URL = "http://" + addr
	dur := cfg.SaleDuration
	if dur == 0 {
		dur = SafeSaleDuration(time.Now(), 10*time.Minute)
	}
	env := append(os.Environ(),
		"DATABASE_URL="+dbURL,
		"HTTP_ADDR="+addr,
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

	bin, err := filepath.Abs(cfg.ServerBin)
	if err != nil {
		return s, err
	}
	s.cmd = exec.Command(bin)
	s.cmd.Env = env
	if cfg.LogPath != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.LogPath), 0o755); err != nil {
			return s, err
		}
		if s.logf, err = os.Create(cfg.LogPath); err != nil {
			return s, err
		}
		s.cmd.Stdout, s.cmd.Stderr = s.logf, s.logf
	}
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return s, fmt.Errorf("start server %s: %w", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	if cfg.Log != nil {
		fmt.Fprintf(cfg.Log, "loadgen: started %s (pid %d) on %s, database %s, SALE_DURATION=%s\n",
			cfg.ServerBin, s.PID(), s.URL, name, dur)
	}
	if err := waitReady(ctx, s.URL, cfg.ReadyTimeout, s.exited); err != nil {
		if cfg.LogPath != "" {
			err = fmt.Errorf("%w (server log: %s)", err, cfg.LogPath)
		}
		return s, err
	}
	return s, nil
}

// Stop sends SIGTERM to the server (SIGKILL if it is still running after
// 20 s) and drops its database.
func (s *Spawned) Stop(ctx context.Context) error {
	var errs []error
	if s.cmd != nil && s.cmd.Process != nil {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.exited:
			case <-time.After(20 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.exited
				errs = append(errs, errors.New("server ignored SIGTERM for 20s; killed"))
			}
		}
		s.cmd = nil
	}
	if s.logf != nil {
		_ = s.logf.Close()
		s.logf = nil
	}
	if s.drop != nil {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		errs = append(errs, s.drop(ctx))
		s.drop = nil
	}
	return errors.Join(errs...)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
