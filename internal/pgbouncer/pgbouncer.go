// Package pgbouncer runs a real PgBouncer in transaction pooling mode in
// front of one database, for the tests behind a pooler and the benchmark.
package pgbouncer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flashsale/flashsale/internal/process"
)

// Instance is Debian's pgbouncer (1.18) in transaction pooling mode, run
// as a child process between servers and the PostgreSQL of one database.
type Instance struct {
	URL  string // clients' URL to the same database through pgbouncer
	Port int    // on 127.0.0.1

	directURL string
	dir       string
	cmd       *exec.Cmd
	exited    chan struct{}
	log       io.Writer
}

// pgbouncerBin is where Debian's package installs it; root's PATH has
// /usr/sbin, other users' often not.
const pgbouncerBin = "/usr/sbin/pgbouncer"

// maxClientConns bounds pgbouncer's client connections: 4 servers with up
// to 128 pool connections each, and room for the load generator's checks.
const maxClientConns = 600

// safeName is what Start writes into pgbouncer.ini unquoted:
// 1.18's ini parser takes no quoted database names.
var safeName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// Start starts pgbouncer on a free 127.0.0.1 port in front of
// dbURL's database, with at most poolSize PostgreSQL connections shared by
// every client (pool_mode=transaction), and waits until it accepts
// connections. Its log goes to log (nil: discarded). As root it runs as
// user postgres (or nobody): pgbouncer refuses to run as root.
func Start(ctx context.Context, dbURL string, poolSize int, log io.Writer) (_ *Instance, err error) {
	if poolSize < 1 {
		return nil, fmt.Errorf("pgbouncer: pool size must be positive, got %d", poolSize)
	}
	if log == nil {
		log = io.Discard
	}
	bin, err := find()
	if err != nil {
		return nil, err
	}
	target, err := pgconn.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("pgbouncer: %w", err) // pgconn hides the password
	}
	for _, v := range []string{target.Database, target.User, target.Host} {
		if !safeName.MatchString(v) && !strings.HasPrefix(v, "/") {
			return nil, fmt.Errorf("pgbouncer: %q cannot be written into pgbouncer.ini unquoted", v)
		}
	}
	if strings.ContainsAny(target.Password, `'"\ `) {
		return nil, errors.New("pgbouncer: a password with quotes, backslashes or spaces is not supported")
	}
	dir, err := os.MkdirTemp("", "flashsale-pgbouncer-")
	if err != nil {
		return nil, fmt.Errorf("pgbouncer: %w", err)
	}
	p := &Instance{directURL: dbURL, dir: dir, log: log}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Stop())
		}
	}()
	runAs, err := unprivilegedUser(dir)
	if err != nil {
		return nil, err
	}
	// A port found free may be taken before pgbouncer binds it; then it
	// exits at once and another port is tried.
	for attempt := 1; ; attempt++ {
		port, err := process.FreePort()
		if err != nil {
			return nil, err
		}
		if err := p.writeConfig(target, port, poolSize, runAs); err != nil {
			return nil, err
		}
		err = p.start(ctx, bin, runAs)
		if err == nil {
			p.URL, p.Port = clientURL(target, port), port
			return p, nil
		}
		if attempt == 3 || ctx.Err() != nil {
			return nil, err
		}
	}
}

// ServerEnv is what a server needs behind this pgbouncer, beside
// DATABASE_URL=p.URL: the pooler's mode, and a direct connection for
// migrations, whose lock lives as long as a PostgreSQL session.
func (p *Instance) ServerEnv() []string {
	return []string{"DB_POOLER=transaction", "DATABASE_MIGRATION_URL=" + p.directURL}
}

// PID is pgbouncer's process id.
func (p *Instance) PID() int { return p.cmd.Process.Pid }

// Stop ends pgbouncer (SIGTERM: it closes every connection at once) and
// removes its directory.
func (p *Instance) Stop() error {
	var errs []error
	if p.cmd != nil {
		errs = append(errs, process.Terminate(p.cmd, p.exited, 10*time.Second))
		p.cmd = nil
	}
	if p.dir != "" {
		errs = append(errs, os.RemoveAll(p.dir))
		p.dir = ""
	}
	return errors.Join(errs...)
}

func find() (string, error) {
	if bin, err := exec.LookPath("pgbouncer"); err == nil {
		return bin, nil
	}
	if _, err := os.Stat(pgbouncerBin); err == nil {
		return pgbouncerBin, nil
	}
	return "", errors.New("pgbouncer not found on PATH or at " + pgbouncerBin +
		": install Debian's pgbouncer package (`make pgbouncer` does as root)")
}

// runUser is who pgbouncer runs as: name "" for the current user.
type runUser struct {
	name     string
	uid, gid int
}

// unprivilegedUser returns the user pgbouncer must run as (none unless
// root) and hands dir to it, so that a reload could read the files too.
func unprivilegedUser(dir string) (runUser, error) {
	if os.Geteuid() != 0 {
		return runUser{}, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil {
			continue
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			return runUser{}, fmt.Errorf("pgbouncer: hand %s to %s: %w", dir, name, err)
		}
		return runUser{name, uid, gid}, nil
	}
	return runUser{}, errors.New("pgbouncer refuses to run as root, and neither user postgres nor nobody exists to run it as")
}

func (p *Instance) writeConfig(target *pgconn.Config, port, poolSize int, runAs runUser) error {
	server := fmt.Sprintf("host=%s port=%d dbname=%s user=%s", target.Host, target.Port, target.Database, target.User)
	if target.Password != "" {
		server += " password=" + target.Password
	}
	// The server sends no startup parameter pgbouncer does not know, so
	// the pooler sets this on each PostgreSQL connection it opens: a
	// transaction whose client went away is rolled back within a second,
	// even in a lock wait (internal/database). Milliseconds, unquoted.
	server += " connect_query='SET client_connection_check_interval = 1000'"
	ini := fmt.Sprintf(`[databases]
%s = %s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = %d
max_db_connections = %d
reserve_pool_size = 0
max_client_conn = %d
log_connections = 0
log_disconnections = 0
`, target.Database, server, port, filepath.Join(p.dir, "userlist.txt"), poolSize, poolSize, maxClientConns)
	// trust still looks the user up in auth_file.
	users := fmt.Sprintf("%q %q\n", target.User, target.Password)
	for name, content := range map[string]string{"pgbouncer.ini": ini, "userlist.txt": users} {
		path := filepath.Join(p.dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return fmt.Errorf("pgbouncer: %w", err)
		}
		if runAs.name != "" {
			if err := os.Chown(path, runAs.uid, runAs.gid); err != nil {
				return fmt.Errorf("pgbouncer: %w", err)
			}
		}
	}
	return nil
}

// start runs pgbouncer in the foreground and waits for its "process up"
// line, which it logs once it listens; its exit before that is an error
// carrying its last lines.
func (p *Instance) start(ctx context.Context, bin string, runAs runUser) error {
	args := []string{}
	if runAs.name != "" {
		args = append(args, "-u", runAs.name)
	}
	args = append(args, filepath.Join(p.dir, "pgbouncer.ini"))
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("pgbouncer: %w", err)
	}
	cmd.Stdout = p.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	up := make(chan struct{})
	exited := make(chan struct{})
	var tail []string
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.log, "pgbouncer:", line)
			if !signalled {
				tail = append(tail[max(0, len(tail)-4):], line)
				if strings.Contains(line, "process up") {
					signalled = true
					close(up)
				}
			}
		}
		_ = cmd.Wait() // after the pipe is drained, as Wait closes it
		close(exited)
	}()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	select {
	case <-up:
		p.cmd, p.exited = cmd, exited
		return nil
	case <-exited:
		return fmt.Errorf("pgbouncer exited at start (%s): %s", cmd.ProcessState, strings.Join(tail, " | "))
	case <-ctx.Done():
		err = ctx.Err()
	case <-timeout.C:
		err = errors.New("pgbouncer did not come up within 30s")
	}
	_ = cmd.Process.Kill()
	<-exited
	return err
}

func clientURL(target *pgconn.Config, port int) string {
	u := &url.URL{
		Scheme:   "postgres",
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/" + target.Database,
		RawQuery: "sslmode=disable",
	}
	if target.Password != "" {
		u.User = url.UserPassword(target.User, target.Password)
	} else {
		u.User = url.User(target.User)
	}
	return u.String()
}
