// Package replica runs a PostgreSQL primary and a streaming standby as real
// local processes for tests of failover: initdb, pg_basebackup -R, a
// synchronous_standby_names naming the standby, on free loopback ports,
// run as the postgres OS user when the test runs as root (initdb refuses
// root). A test can kill the primary as a lost machine dies (SIGKILL of
// every process), stall replication (SIGSTOP of the WAL sender) and
// promote the standby. Missing server binaries fail the test, never skip it.
package replica

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// BinDir holds the PostgreSQL 15 server binaries; REPLICA_PG_BIN_DIR
// overrides it.
var BinDir = func() string {
	if d := os.Getenv("REPLICA_PG_BIN_DIR"); d != "" {
		return d
	}
	return "/usr/lib/postgresql/15/bin"
}()

// Node is one PostgreSQL server process.
type Node struct {
	Name string
	Dir  string // data directory
	Port int
	cmd  *exec.Cmd
	// exited is closed once the postmaster has been waited for.
	exited chan struct{}
	cred   *syscall.Credential
	t      testing.TB
}

// Pair is a primary and its standby.
type Pair struct {
	Primary, Standby *Node
	// Sync: the primary names the standby in synchronous_standby_names.
	Sync bool
}

// Database is the database a Pair's tests use.
const Database = "flashsale"

// URL names db on this node alone.
func (n *Node) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", n.Port, db)
}

// URL lists both hosts, as an operator's DATABASE_URL does: the pool
// connects to whichever of them takes writes.
func (p *Pair) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/%s?sslmode=disable&target_session_attrs=read-write",
		p.Primary.Port, p.Standby.Port, Database)
}

// Start initialises a primary, creates Database on it, takes a base backup
// for the standby and starts both; with sync, the primary waits for the
// standby at every commit. Both are stopped and removed when the test ends.
func Start(t testing.TB, sync bool) *Pair {
	t.Helper()
	cred := Credential(t)
	root, err := os.MkdirTemp("", "flashsale-replica-")
	if err != nil {
		t.Fatalf("replica: %v", err)
	}
	if cred != nil {
		if err := os.Chown(root, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatalf("replica: %v", err)
		}
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })

	p := &Pair{Sync: sync}
	p.Primary = &Node{Name: "primary", Dir: filepath.Join(root, "primary"), Port: FreePort(t), cred: cred, t: t}
	initdb(t, cred, p.Primary.Dir)
	conf := []string{
		"listen_addresses = '127.0.0.1'",
		fmt.Sprintf("port = %d", p.Primary.Port),
		fmt.Sprintf("unix_socket_directories = '%s'", root),
		"max_connections = 60", "shared_buffers = '32MB'", "max_wal_senders = 4",
		// The test loses the primary by killing it, not its disk: the
		// standby is what must hold every answer.
		"fsync = off", "full_page_writes = off",
		"synchronous_commit = on",
	}
	appendConf(t, p.Primary.Dir, conf)
	p.Primary.start()
	p.Primary.waitReady(true)
	p.Primary.exec(t, "postgres", "CREATE DATABASE "+Database+" ENCODING 'UTF8' TEMPLATE template0")

	p.Standby = &Node{Name: "standby", Dir: filepath.Join(root, "standby"), Port: FreePort(t), cred: cred, t: t}
	run(t, cred, filepath.Join(BinDir, "pg_basebackup"), "-h", "127.0.0.1", "-p", strconv.Itoa(p.Primary.Port),
		"-U", "postgres", "-D", p.Standby.Dir, "-R", "-X", "stream", "--checkpoint=fast")
	appendConf(t, p.Standby.Dir, []string{
		fmt.Sprintf("port = %d", p.Standby.Port),
		// Promoted, the standby has no standby of its own to wait for.
		"synchronous_standby_names = ''",
		"fsync = off",
		fmt.Sprintf("primary_conninfo = 'host=127.0.0.1 port=%d user=postgres application_name=standby'", p.Primary.Port),
	})
	p.Standby.start()
	p.Standby.waitReady(false)
	if sync {
		// Only now: with a synchronous standby named and none connected,
		// every commit would wait (CREATE DATABASE above too).
		p.Primary.exec(t, "postgres", "ALTER SYSTEM SET synchronous_standby_names = 'standby'")
		p.Primary.exec(t, "postgres", "SELECT pg_reload_conf()")
	}
	testutil.Poll(t, 30*time.Second, func() error {
		state, err := p.Primary.queryString("postgres",
			"SELECT coalesce((SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'), 'none')")
		if err != nil {
			return err
		}
		if want := map[bool]string{true: "sync", false: "async"}[sync]; state != want {
			return fmt.Errorf("standby's replication is %s, want %s", state, want)
		}
		return nil
	})
	return p
}

// Credential is who runs the servers: the postgres OS user when the test
// runs as root (nil: the test's own user).
func Credential(t testing.TB) *syscall.Credential {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("replica: running as root, PostgreSQL needs another OS user and there is no 'postgres' user (Debian's postgresql package creates it): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// template is an initdb'd data directory that every Pair copies, much
// faster than initdb. It is kept between runs in the temporary directory,
// under a name of the binaries' version and the servers' user, and made in
// a directory of its own renamed into place, so that test binaries running
// at once never see a half-made one.
var template struct {
	once sync.Once
	dir  string
	err  error
}

func initdb(t testing.TB, cred *syscall.Credential, dir string) {
	t.Helper()
	template.once.Do(func() { template.dir, template.err = makeTemplate(cred) })
	if template.err != nil {
		t.Fatalf("replica: %v (PostgreSQL 15 server binaries are expected in %s: Debian's postgresql-15 package)", template.err, BinDir)
	}
	run(t, cred, "cp", "-a", template.dir, dir)
}

func makeTemplate(cred *syscall.Credential) (string, error) {
	version, err := exec.Command(filepath.Join(BinDir, "postgres"), "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", filepath.Join(BinDir, "postgres"), err)
	}
	uid := os.Geteuid()
	if cred != nil {
		uid = int(cred.Uid)
	}
	final := filepath.Join(os.TempDir(), fmt.Sprintf("flashsale-replica-template-%x-%d",
		crc32.ChecksumIEEE(append(version, BinDir...)), uid))
	if _, err := os.Stat(filepath.Join(final, "PG_VERSION")); err == nil {
		return final, nil
	}
	root, err := os.MkdirTemp("", "flashsale-replica-initdb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(root)
	if cred != nil {
		if err := os.Chown(root, int(cred.Uid), int(cred.Gid)); err != nil {
			return "", err
		}
	}
	data := filepath.Join(root, "data")
	cmd := command(cred, filepath.Join(BinDir, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if err := os.Rename(data, final); err != nil {
		if _, statErr := os.Stat(filepath.Join(final, "PG_VERSION")); statErr == nil {
			return final, nil // another test binary made it first
		}
		return "", fmt.Errorf("keep the initdb template: %w", err)
	}
	return final, nil
}

func appendConf(t testing.TB, dir string, lines []string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("replica: %v", err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n" + strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatalf("replica: %v", err)
	}
}

func command(cred *syscall.Credential, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

func run(t testing.TB, cred *syscall.Credential, name string, args ...string) {
	t.Helper()
	if out, err := command(cred, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("replica: %s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

// FreePort is a loopback TCP port nobody listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("replica: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs the postmaster as a child of the test, logging to its data
// directory, until the test ends.
func (n *Node) start() {
	t := n.t
	t.Helper()
	logFile, err := os.Create(n.Dir + ".log")
	if err != nil {
		t.Fatalf("replica: %v", err)
	}
	n.cmd = command(n.cred, filepath.Join(BinDir, "postgres"), "-D", n.Dir)
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("replica: start %s: %v", n.Name, err)
	}
	n.exited = make(chan struct{})
	go func() {
		_ = n.cmd.Wait()
		logFile.Close()
		close(n.exited)
	}()
	t.Cleanup(func() { n.Kill() })
}

// waitReady polls until the node answers; a primary must take writes.
func (n *Node) waitReady(primary bool) {
	n.t.Helper()
	testutil.Poll(n.t, 30*time.Second, func() error {
		select {
		case <-n.exited:
			log, _ := os.ReadFile(n.Dir + ".log")
			n.t.Fatalf("replica: %s exited:\n%s", n.Name, log)
		default:
		}
		rec, err := n.queryString("postgres", "SELECT pg_is_in_recovery()::text")
		if err != nil {
			return err
		}
		if primary && rec != "false" {
			return fmt.Errorf("%s is still in recovery", n.Name)
		}
		return nil
	})
}

func (n *Node) queryString(db, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, n.URL(db))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		return "", err
	}
	return s, nil
}

func (n *Node) exec(t testing.TB, db, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, n.URL(db))
	if err != nil {
		t.Fatalf("replica: %s: %v", n.Name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("replica: %s: %s: %v", n.Name, sql, err)
	}
}

// Kill ends every process of the node at once with SIGKILL, as when its
// machine is lost, and waits for the postmaster to be gone.
func (n *Node) Kill() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	KillTree(n.cmd.Process.Pid)
	<-n.exited
}

// Promote makes the standby a primary (pg_ctl promote) and waits until it
// takes writes.
func (n *Node) Promote(t testing.TB) {
	t.Helper()
	run(t, n.cred, filepath.Join(BinDir, "pg_ctl"), "promote", "-D", n.Dir, "-w", "-t", "30")
	n.waitReady(true)
}

// StallReplication stops the primary's WAL sender with SIGSTOP, as a slow
// network or standby would: commits then wait for the standby. The
// returned function resumes it.
func (p *Pair) StallReplication(t testing.TB) (resume func()) {
	t.Helper()
	s, err := p.Primary.queryString("postgres", "SELECT pid::text FROM pg_stat_replication WHERE application_name = 'standby'")
	if err != nil {
		t.Fatalf("replica: find the WAL sender: %v", err)
	}
	pid, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("replica: WAL sender pid %q: %v", s, err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("replica: stop the WAL sender: %v", err)
	}
	return func() {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Errorf("replica: resume the WAL sender: %v", err)
		}
	}
}
